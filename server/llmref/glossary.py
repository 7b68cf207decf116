"""The bilingual glossary: YAML concepts -> Concept records, and a matcher that finds
glossary terms in any text (identifiers split, separators ignored, Chinese without spaces).

A glossary file is a YAML list, one concept per item::

    - name: KV cache
      zh: [键值缓存]
      aliases: [KVCache, key-value cache]
      code: [past_key_values, DynamicCache]
      definition: One line, in our own words.
      related: [PagedAttention]
      covered_by: [Repetition problem]  # optional: concepts whose Q&As answer this one too
      context_code: [top_k]  # optional: identifiers meaning this concept only in context
      context: [expert, router]  # optional: words (identifier parts) that show the context

Broken input never stops the rest: bad YAML is salvaged item by item, and an item with no
name, or a field of the wrong type, becomes a Problem with file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import __version__
from .corpus.loader import Problem, decode
from .glossary_yaml import simple_items
from .matching import (
    ABBREVIATIONS as ABBREVIATIONS,
)
from .matching import (
    KIND_RANK as KIND_RANK,
)
from .matching import (
    MAX_UNITS as MAX_UNITS,
)
from .matching import (
    Match as Match,
)
from .matching import (
    TermMatcher as TermMatcher,
)
from .matching import (
    term_key as term_key,
)
from .normalize import ANALYZER_VERSION, width_fold

log = logging.getLogger("llmref.glossary")

# libyaml's composer is ~14x faster than the pure-Python one on the bundled glossary
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

LIST_FIELDS = ("zh", "aliases", "code", "related", "covered_by", "context_code", "context")
KNOWN_FIELDS = frozenset({"id", "name", "definition", "common_word", *LIST_FIELDS})

# Limits for hostile or accidental input (a glossary is a hand-written file):
MAX_CONCEPTS = 200_000  # concepts over all glossary files; the rest is refused, with a warning
MAX_FILE_BYTES = 64 << 20  # a larger glossary file is refused, with a warning

_CACHE_FORMAT = "llmref-glossary"
_CACHE_VERSION = 2  # bump when the cached form (or what it is computed from) changes
_CACHE_FILES = 4  # compiled glossaries kept in a cache dir (several corpus configurations)


@dataclass
class Concept:
    id: str
    name: str
    definition: str = ""
    zh: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)  # concept ids once resolved
    # concepts whose Q&As answer this one when no Q&A names it (a remedy and its problem:
    # Repetition penalty -> Repetition problem); concept ids once resolved
    covered_by: list[str] = field(default_factory=list)
    # identifiers that mean this concept only where the code is about it (an MoE router's
    # top_k, DPO's beta, LoRA's scaling), and the words that show it is (expert, router, moe)
    context_code: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    common_word: bool = False
    file: str = ""
    line: int = 0

    def forms(self) -> Iterator[tuple[str, str]]:
        """(text, kind) of every way to write the concept."""
        yield self.name, "name"
        for kind in ("aliases", "zh", "code"):
            for text in getattr(self, kind):
                yield text, kind

    def names(self) -> list[str]:
        """Name, Chinese names and aliases (what the index's names field holds)."""
        return [self.name, *self.zh, *self.aliases]


def concept_id(name: str) -> str:
    slug = re.sub(r"[^0-9a-z\u3400-\u9fff]+", "-", width_fold(name).casefold()).strip("-")
    return slug or "concept"


# --- loading -------------------------------------------------------------------------------


def _salvage(text: str, path: str, problems: list[Problem]) -> list[tuple[int, object]]:
    """Parse a broken file item by item (items start with "- " at column 0)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("- ") or line.rstrip() == "-"]
    items: list[tuple[int, object]] = []
    for k, begin in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        chunk = "".join(lines[begin:end])
        try:
            data = yaml.safe_load(chunk)
        except yaml.YAMLError as exc:
            problems.append(Problem(path, begin + 1, f"invalid YAML, item skipped: {_reason(exc)}"))
            continue
        if isinstance(data, list):
            items.extend((begin + 1, item) for item in data)
    return items


def _reason(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc).strip()


def _items(text: str, path: str, problems: list[Problem]) -> list[tuple[int, object]]:
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problems.append(
            Problem(path, line, f"invalid YAML: {_reason(exc)}; loading the other items")
        )
        return _salvage(text, path, problems)
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        problems.append(
            Problem(path, root.start_mark.line + 1, "a glossary is a YAML list of concepts")
        )
        return []
    constructor = yaml.constructor.SafeConstructor()
    items: list[tuple[int, object]] = []
    for node in root.value:
        try:
            items.append((node.start_mark.line + 1, constructor.construct_object(node, deep=True)))
        except yaml.YAMLError as exc:
            problems.append(
                Problem(path, node.start_mark.line + 1, f"invalid item: {_reason(exc)}")
            )
    return items


def _str_list(value: object) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            if type(v) is not str:
                if not isinstance(v, (str, int, float)):
                    return None
                v = str(v)
            v = v.strip()
            if v:
                out.append(v)
        return out
    return None


def _concept(item: object, path: str, line: int, problems: list[Problem]) -> Concept | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, line, "item is not a mapping (name: …), skipped"))
        return None
    name = item.get("name")
    if not isinstance(name, (str, int, float)) or not str(name).strip():
        problems.append(Problem(path, line, "item has no name, skipped"))
        return None
    name = str(name).strip()
    concept = Concept(id=concept_id(str(item.get("id") or name)), name=name, file=path, line=line)
    definition = item.get("definition", "")
    if isinstance(definition, str):
        concept.definition = " ".join(definition.split())
    else:
        problems.append(Problem(path, line, f"{name}: definition must be text, ignored"))
    for key in LIST_FIELDS:
        values = _str_list(item.get(key))
        if values is None:
            problems.append(Problem(path, line, f"{name}: {key} must be a list of text, ignored"))
            values = []
        setattr(concept, key, values)
    concept.common_word = bool(item.get("common_word", False))
    extra = item.keys() - KNOWN_FIELDS
    unknown = sorted(set(map(str, extra)) - KNOWN_FIELDS) if extra else []
    if unknown:
        problems.append(Problem(path, line, f"{name}: unknown field(s) {', '.join(unknown)}"))
    return concept


def _merge(base: Concept, extra: Concept, known: dict[str, set[str]]) -> None:
    """A later definition of a concept (e.g. a user's glossary) extends the earlier one.
    ``known``: the values each list of ``base`` holds (a set: merging stays linear)."""
    if extra.definition:
        base.definition = extra.definition
    for key in LIST_FIELDS:
        values: list[str] = getattr(base, key)
        have = known.get(key)
        if have is None:
            have = known[key] = set(values)
        for v in getattr(extra, key):
            if v not in have:
                have.add(v)
                values.append(v)
    base.common_word = base.common_word or extra.common_word


class Glossary:
    def __init__(self, concepts: Iterable[Concept] = (), problems: Iterable[Problem] = ()):
        table: dict[str, Concept] = {}
        self.concepts: Mapping[str, Concept] = table  # by id
        self.problems: list[Problem] = list(problems)
        self.paths: list[str] = []  # the files it was loaded from
        self.digests: list[tuple[str, str]] = []  # and their contents' hashes, when loaded
        merged: dict[str, dict[str, set[str]]] = {}
        for concept in concepts:
            self._add(table, concept, merged)
        # the term key of every form, once (related names and the matcher both need them)
        form_keys = {cid: [term_key(text) for text, _kind in c.forms()] for cid, c in table.items()}
        self._resolve_related(form_keys)
        self._covering: dict[str, list[str]] | None = None
        self.matcher = TermMatcher(table.values(), form_keys)

    def _add(
        self, table: dict[str, Concept], concept: Concept, merged: dict[str, dict[str, set[str]]]
    ) -> None:
        existing = table.get(concept.id)
        if existing is None:
            table[concept.id] = concept
            return
        if existing.file == concept.file:
            self.problems.append(
                Problem(
                    concept.file,
                    concept.line,
                    f"{concept.name}: defined again (first at line {existing.line}); merged",
                )
            )
        _merge(existing, concept, merged.setdefault(concept.id, {}))

    def _resolve_related(self, form_keys: dict[str, list[str]]) -> None:
        by_key: dict[str, str] = {}
        for cid in self.concepts:
            for key in form_keys[cid]:
                by_key.setdefault(key, cid)
            by_key.setdefault(term_key(cid), cid)
        for concept in self.concepts.values():
            for list_field in ("related", "covered_by"):
                resolved: list[str] = []
                have: set[str] = set()
                for ref in getattr(concept, list_field):
                    target = by_key.get(term_key(ref))
                    if target is None:
                        self.problems.append(
                            Problem(
                                concept.file,
                                concept.line,
                                f"{concept.name}: unknown {list_field} concept {ref!r}",
                            )
                        )
                    elif target != concept.id and target not in have:
                        have.add(target)
                        resolved.append(target)
                setattr(concept, list_field, resolved)

    @classmethod
    def load(
        cls,
        paths: Iterable[Path],
        *,
        cache_dir: Path | None = None,
        max_concepts: int = MAX_CONCEPTS,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> Glossary:
        """Load glossary files (later ones extend earlier ones).

        ``cache_dir``: where a compiled form is kept (plain JSON, keyed by the files' digests
        and these limits; never code): a big glossary loads from it in a fraction of the time
        of parsing it. None: no disk cache. ``max_concepts`` (over all files) and
        ``max_file_bytes`` (per file) bound what a glossary may cost; beyond them the rest is
        refused with one problem naming the file.
        """
        paths = list(paths)
        texts: list[tuple[Path, bytes | None]] = []
        problems: list[Problem] = []
        seen: list[tuple[str, str]] = []  # (path, sha256) of exactly the bytes parsed
        for path in paths:
            try:
                size = path.stat().st_size
                if size > max_file_bytes:
                    problems.append(
                        Problem(
                            str(path),
                            None,
                            f"glossary file of {size / 2**20:.1f} MB is over the limit of "
                            f"{max_file_bytes / 2**20:.0f} MB, skipped",
                        )
                    )
                    seen.append((str(path), f"too-large:{size}"))
                    texts.append((path, None))
                    continue
                data = path.read_bytes()
            except OSError as exc:
                problems.append(Problem(str(path), None, f"cannot read: {exc.strerror or exc}"))
                seen.append((str(path), f"unreadable:{exc.errno}"))
                texts.append((path, None))
                continue
            seen.append((str(path), hashlib.sha256(data).hexdigest()))
            texts.append((path, data))
        key = _cache_key(seen, max_concepts, max_file_bytes)
        glossary = _read_cache(cache_dir, key) if cache_dir is not None else None
        if glossary is None:
            concepts: list[Concept] = []
            for path, content in texts:
                if content is not None:
                    room = max_concepts - len(concepts)
                    concepts.extend(_parse_file(path, content, problems, room, max_concepts))
            glossary = cls(concepts, problems)
            if cache_dir is not None:
                _write_cache(cache_dir, key, glossary)
        glossary.paths = [str(p) for p in paths]
        glossary.digests = seen
        return glossary

    def __len__(self) -> int:
        return len(self.concepts)

    def get(self, concept: str) -> Concept | None:
        return self.concepts.get(concept)

    def covering(self, concept: str) -> list[str]:
        """Concepts that name ``concept`` in their ``covered_by`` (built once)."""
        if self._covering is None:
            covering: dict[str, list[str]] = {}
            for c in self.concepts.values():
                for target in c.covered_by:
                    covering.setdefault(target, []).append(c.id)
            self._covering = covering
        return self._covering.get(concept, [])

    def lookup(self, term: str) -> Concept | None:
        """The concept a term names exactly (any form, any separators), if one."""
        ids = self.matcher.exact(term)
        return self.concepts[ids[0]] if ids else None

    def find(self, text: str) -> list[Match]:
        return self.matcher.find(text)

    def concepts_in(self, text: str) -> list[str]:
        """Concept ids named in text, most mentioned first (ties: first mention)."""
        return self.matcher.concepts_in(text)


def _parse_file(
    path: Path, data: bytes, problems: list[Problem], room: int, limit: int
) -> list[Concept]:
    """The concepts of one file, at most ``room`` of them (then one problem says so)."""
    text, problem = decode(data, path)
    if text is None:
        problems.append(problem or Problem(str(path), None, "unreadable"))
        return []
    fast = simple_items(text)
    items = fast if fast is not None else _items(text, str(path), problems)
    concepts: list[Concept] = []
    for n, (line, item) in enumerate(items):
        if len(concepts) >= room:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"over the limit of {limit} glossary concepts: "
                    f"this item and the {len(items) - n - 1} after it are ignored",
                )
            )
            break
        concept = _concept(item, str(path), line, problems)
        if concept is not None:
            concepts.append(concept)
    return concepts


# --- the compiled form on disk: JSON, never code -----------------------------------------------


def _cache_key(seen: list[tuple[str, str]], max_concepts: int, max_file_bytes: int) -> str:
    basis = [
        _CACHE_FORMAT,
        _CACHE_VERSION,
        __version__,
        ANALYZER_VERSION,
        max_concepts,
        max_file_bytes,
        seen,
    ]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"glossary-{key[:40]}.json"


def _read_cache(cache_dir: Path, key: str) -> Glossary | None:
    path = _cache_file(cache_dir, key)
    try:
        with path.open("rb") as f:
            data = json.loads(f.read())
        if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
            return None
        if data.get("key") != key:
            return None
        glossary = Glossary.__new__(Glossary)
        glossary.concepts = _ConceptTable(dict(zip(data["ids"], data["concepts"], strict=True)))
        glossary.problems = [Problem(p, line, msg) for p, line, msg in data["problems"]]
        glossary.matcher = TermMatcher.from_state(data["matcher"])
        glossary.paths, glossary.digests = [], []
        glossary._covering = None
    except FileNotFoundError:
        return None
    except (OSError, ValueError, LookupError, TypeError, AttributeError) as exc:  # damaged
        log.warning("ignoring the glossary cache %s: %s", path, exc)
        return None
    try:
        os.utime(path)  # recently used: kept when old ones are pruned
    except OSError:
        pass
    return glossary


def _concept_row(c: Concept) -> str:
    """A concept as a JSON text of its own: decoded when first used (a 100k-concept glossary
    loads without building 100k objects nobody looks at)."""
    row = {
        "name": c.name,
        "definition": c.definition,
        **{key: getattr(c, key) for key in LIST_FIELDS},
        "common_word": c.common_word,
        "file": c.file,
        "line": c.line,
    }
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


class _ConceptTable(Mapping[str, Concept]):
    """Concepts by id, each made from its JSON row when first asked for."""

    def __init__(self, rows: dict[str, str]) -> None:
        self._rows = rows
        self._made: dict[str, Concept] = {}

    def __getitem__(self, cid: str) -> Concept:
        concept = self._made.get(cid)
        if concept is None:
            row = self._rows[cid]
            try:
                fields = json.loads(row)
                concept = Concept(
                    id=cid,
                    name=str(fields["name"]),
                    definition=str(fields["definition"]),
                    **{key: list(fields[key]) for key in LIST_FIELDS},
                    common_word=bool(fields["common_word"]),
                    file=str(fields["file"]),
                    line=int(fields["line"]),
                )
            except (ValueError, TypeError, KeyError) as exc:  # a damaged cache: a bare concept
                log.warning("glossary cache: concept %s unreadable: %s", cid, exc)
                concept = Concept(cid, cid)
            self._made[cid] = concept
        return concept

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, cid: object) -> bool:
        return cid in self._rows


def _write_cache(cache_dir: Path, key: str, glossary: Glossary) -> None:
    data = {
        "format": _CACHE_FORMAT,
        "key": key,
        "ids": list(glossary.concepts),
        "concepts": [_concept_row(c) for c in glossary.concepts.values()],
        "problems": [[p.path, p.line, p.message] for p in glossary.problems],
        "matcher": glossary.matcher.to_state(),
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".glossary-", suffix=".tmp", dir=cache_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                # dumps, not dump: only dumps has the C encoder (~10x faster)
                f.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
            os.replace(tmp, _cache_file(cache_dir, key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        old = sorted(
            cache_dir.glob("glossary-*.json"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for stale in old[_CACHE_FILES:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:  # a read-only or full disk: the glossary works without it
        log.warning("cannot write the glossary cache in %s: %s", cache_dir, exc)
