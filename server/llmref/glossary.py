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
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .corpus.loader import Problem, decode
from .normalize import IS_CJK, singular, split_identifier, width_fold

log = logging.getLogger("llmref.glossary")

# libyaml's composer is ~14x faster than the pure-Python one on the bundled glossary
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

LIST_FIELDS = ("zh", "aliases", "code", "related", "covered_by", "context_code", "context")
KNOWN_FIELDS = frozenset({"id", "name", "definition", "common_word", *LIST_FIELDS})
MAX_UNITS = 10

# abbreviations that identifiers use for words terms spell out (rotary_emb, flash_attn)
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "attn": ("attention",),
    "emb": ("embedding",),
    "embed": ("embedding",),
    "embd": ("embedding",),
    "pos": ("position", "positional"),
    "seq": ("sequence",),
    "len": ("length",),
    "proj": ("projection",),
    "ctx": ("context",),
    "tok": ("token",),
    "lr": ("learning rate",),
    "ckpt": ("checkpoint",),
    "grad": ("gradient",),
    "accum": ("accumulation",),
    "quant": ("quantization",),
    "norm": ("normalization",),
    "param": ("parameter",),
    "params": ("parameter",),
    "kv": ("key value",),
}


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

    @property
    def zh_name(self) -> str | None:
        return self.zh[0] if self.zh else None

    def forms(self) -> Iterator[tuple[str, str]]:
        """(text, kind) of every way to write the concept."""
        yield self.name, "name"
        for kind in ("aliases", "zh", "code"):
            for text in getattr(self, kind):
                yield text, kind

    def names(self) -> list[str]:
        """Name, Chinese names and aliases (what the index's names field holds)."""
        return [self.name, *self.zh, *self.aliases]


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # character offsets in the matched text
    end: int
    concept: str  # concept id
    kind: str  # name / aliases / zh / code
    units: int  # how many units (identifier parts, Chinese characters) it spans
    key: str = ""  # the term key that matched
    expanded: bool = False  # an abbreviation was expanded to match (emb -> embedding)


def concept_id(name: str) -> str:
    slug = re.sub(r"[^0-9a-z\u3400-\u9fff]+", "-", width_fold(name).casefold()).strip("-")
    return slug or "concept"


# --- units: the one tokenization that terms and texts are matched on ------------------------

_UNIT_RUN = re.compile(r"[A-Za-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_JOIN_GAP = re.compile(r"[\s_\-/.]*")  # what may separate the units of one term


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    start: int
    end: int
    joinable: bool  # may follow the previous unit inside one term


def _units(text: str) -> list[_Unit]:
    text = width_fold(text)
    out: list[_Unit] = []
    prev_end = 0
    for m in _UNIT_RUN.finditer(text):
        gap = text[prev_end : m.start()]
        joinable = bool(out) and _JOIN_GAP.fullmatch(gap) is not None
        run = m.group()
        if IS_CJK.match(run):
            out.append(_Unit(run, m.start(), m.end(), joinable))
        else:
            # camel parts: their own spans (a run has no separators, so the parts tile it)
            offset = m.start()
            for k, part in enumerate(split_identifier(run)):
                out.append(_Unit(part, offset, offset + len(part), joinable if k == 0 else True))
                offset += len(part)
        prev_end = m.end()
    return out


@lru_cache(maxsize=65536)
def term_key(text: str) -> str:
    """The matching key of a term: its units, singular, concatenated."""
    return "".join(singular(u.text) for u in _units(text))


def _matchable(key: str) -> bool:
    """Keys too short to mean anything (``<s>`` -> ``s``) are never matched."""
    return len(key) >= 2 or (bool(key) and not key.isascii())


def _alternatives(unit: str) -> tuple[str, ...]:
    alts = [unit]
    s = singular(unit)
    if s != unit:
        alts.append(s)
    for expansion in ABBREVIATIONS.get(unit, ()):
        alts.append(term_key(expansion))
    return tuple(alts)


class TermMatcher:
    """Finds glossary terms in text; longest terms first."""

    def __init__(self, concepts: Iterable[Concept]) -> None:
        self.keys: dict[str, list[tuple[str, str]]] = {}
        concepts_list = list(concepts)
        for concept in concepts_list:
            for text, kind in concept.forms():
                key = term_key(text)
                if not _matchable(key):
                    continue
                bucket = self.keys.setdefault(key, [])
                if (concept.id, kind) not in bucket:
                    bucket.append((concept.id, kind))
        # (key, concept) pairs whose written form is an acronym or brand (RoPE, LoRA, GQA):
        # distinctive even as one part of a longer identifier (rope_theta, lora_alpha)
        self.acronyms: set[tuple[str, str]] = set()
        for concept in concepts_list:
            for text, _kind in concept.forms():
                if " " not in text and sum(ch.isupper() for ch in text) >= 2 and text.isascii():
                    self.acronyms.add((term_key(text), concept.id))
        self.prefixes: set[str] = set()
        for key in self.keys:
            for i in range(1, len(key) + 1):
                self.prefixes.add(key[:i])

    def all_matches(self, text: str) -> list[Match]:
        """Every (possibly overlapping) occurrence of a term in ``text``."""
        units = _units(text)
        found: list[Match] = []
        for i in range(len(units)):
            self._extend(units, i, i, "", found)
        return found

    def _extend(
        self,
        units: list[_Unit],
        first: int,
        j: int,
        acc: str,
        found: list[Match],
        expanded: bool = False,
    ) -> None:
        if j >= len(units) or j - first >= MAX_UNITS:
            return
        if j > first and not units[j].joinable:
            return
        for n, alt in enumerate(_alternatives(units[j].text)):
            key = acc + alt
            if key not in self.prefixes:
                continue
            exp = expanded or (n > 0 and singular(units[j].text) != alt)
            for concept, kind in self.keys.get(key, ()):
                found.append(
                    Match(units[first].start, units[j].end, concept, kind, j - first + 1, key, exp)
                )
            self._extend(units, first, j + 1, key, found, exp)

    def find(self, text: str) -> list[Match]:
        """Non-overlapping matches, longest first, in text order."""
        chosen: list[Match] = []
        taken: list[tuple[int, int]] = []
        best = sorted(self.all_matches(text), key=lambda m: (-(m.end - m.start), -m.units, m.start))
        for m in best:
            if any(m.start < e and s < m.end for s, e in taken):
                # the same span may name several concepts (an ambiguous alias): keep them all
                if not any(c.start == m.start and c.end == m.end for c in chosen):
                    continue
            chosen.append(m)
            taken.append((m.start, m.end))
        return sorted(chosen, key=lambda m: (m.start, m.end))

    def exact(self, text: str) -> list[str]:
        """Concept ids whose term is exactly ``text`` (separators and case ignored)."""
        return [c for c, _ in self.keys.get(term_key(text), ())]


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
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
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
    unknown = sorted(set(map(str, item)) - KNOWN_FIELDS)
    if unknown:
        problems.append(Problem(path, line, f"{name}: unknown field(s) {', '.join(unknown)}"))
    return concept


def _merge(base: Concept, extra: Concept) -> None:
    """A later definition of a concept (e.g. a user's glossary) extends the earlier one."""
    if extra.definition:
        base.definition = extra.definition
    for key in LIST_FIELDS:
        values = getattr(base, key)
        values.extend(v for v in getattr(extra, key) if v not in values)
    base.common_word = base.common_word or extra.common_word


class Glossary:
    def __init__(self, concepts: Iterable[Concept] = (), problems: Iterable[Problem] = ()):
        self.concepts: dict[str, Concept] = {}
        self.problems: list[Problem] = list(problems)
        self.paths: list[str] = []  # the files it was loaded from
        self.digests: list[tuple[str, str]] = []  # and their contents' hashes, when loaded
        for concept in concepts:
            self._add(concept)
        self._resolve_related()
        self._covering: dict[str, list[str]] | None = None
        self.matcher = TermMatcher(self.concepts.values())

    def _add(self, concept: Concept) -> None:
        existing = self.concepts.get(concept.id)
        if existing is None:
            self.concepts[concept.id] = concept
            return
        if existing.file == concept.file:
            self.problems.append(
                Problem(
                    concept.file,
                    concept.line,
                    f"{concept.name}: defined again (first at line {existing.line}); merged",
                )
            )
        _merge(existing, concept)

    def _resolve_related(self) -> None:
        by_key: dict[str, str] = {}
        for concept in self.concepts.values():
            for text, _kind in concept.forms():
                by_key.setdefault(term_key(text), concept.id)
            by_key.setdefault(term_key(concept.id), concept.id)
        for concept in self.concepts.values():
            for list_field in ("related", "covered_by"):
                resolved: list[str] = []
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
                    elif target != concept.id and target not in resolved:
                        resolved.append(target)
                setattr(concept, list_field, resolved)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Glossary:
        paths = list(paths)
        concepts: list[Concept] = []
        problems: list[Problem] = []
        seen: list[tuple[str, str]] = []  # (path, sha256) of exactly the bytes parsed
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(Problem(str(path), None, f"cannot read: {exc.strerror or exc}"))
                seen.append((str(path), f"unreadable:{exc.errno}"))
                continue
            seen.append((str(path), hashlib.sha256(data).hexdigest()))
            text, problem = decode(data, path)
            if text is None:
                problems.append(problem or Problem(str(path), None, "unreadable"))
                continue
            for line, item in _items(text, str(path), problems):
                concept = _concept(item, str(path), line, problems)
                if concept is not None:
                    concepts.append(concept)
        glossary = cls(concepts, problems)
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
        counts: dict[str, int] = {}
        for m in self.find(text):
            counts[m.concept] = counts.get(m.concept, 0) + 1
        return sorted(counts, key=lambda c: -counts[c])
