"""The reference: corpus + glossary + index, and the questions the editor and CLI ask of it.

Flow: corpus files -> parse -> glossary tagging -> grouping -> index and entry store (cached
on disk, updated one file at a time; see build.py) -> here. Entries live in the store, not in
memory: a notes folder of 100k sections costs the same memory as the bundled corpus.
Nothing here imports pygls or lsprotocol.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, config, normalize
from .build import BuildReport, Config, Slot, full_build, needs_full_rebuild, sync
from .cards import CardInput
from .config import Settings
from .corpus.entry import TEXT_LAYOUTS, Entry, result_json
from .corpus.loader import Problem, Scan, digests, scan
from .glossary import Glossary
from .index import Clause, Hit, SearchIndex
from .locks import FileLock
from .ranking import tag_entry
from .safe_markdown import resolve_roots
from .store import SnippetRow, Store

log = logging.getLogger("llmref.lookup")

# field weights: question > concept names > answer
W_QUESTION = 4.0
W_QUESTION_ALL = 3.0
W_PHRASE = 3.0
W_NAMES = 2.0
W_ANSWER = 1.0
W_CONCEPT = 6.0
W_ALIAS_QUESTION = 3.0
W_ALIAS_ANSWER = 0.6
W_ANSWER_CONCEPT = 1.5
W_RELATED = 0.5


@dataclass
class Result:
    entry: Entry
    score: float


@dataclass
class SearchResult:
    query: str
    results: list[Result] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)  # glossary concepts the query names
    suggestion: str | None = None  # did you mean …
    corrected: bool = False  # results are for the suggestion (the query found nothing)
    degraded: str | None = None  # the index failed: results come from the concept table


def tag_entries(entries: list[Entry], glossary: Glossary) -> None:
    """Concepts named by each entry (question first), then same-question groups (in memory:
    for tests and small lists; the index does this one file at a time)."""
    from .corpus.group import group_duplicates

    for entry in entries:
        tag_entry(entry, glossary)
    questions = [e for e in entries if e.layout not in TEXT_LAYOUTS]
    group_duplicates(questions, [frozenset(e.question_concepts) for e in questions])


class ConfigChanged(Exception):
    """The glossary (part of the index key) changed: reopen the reference."""


class IndexDamaged(Exception):
    """The on-disk index failed while answering (it is rebuilt; see Reference.damaged)."""


class EntryView(Mapping[str, Entry]):
    """``ref.entries``: entries by id, read from the store on demand."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getitem__(self, key: str) -> Entry:
        entry = self._store.entry(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._store.contains(key)

    def __iter__(self) -> Iterator[str]:
        return (e.id for e in self._store.iter_entries(members=False))

    def __len__(self) -> int:
        return len(self._store)


@dataclass
class _Opened:
    slot: Slot
    gen: Path
    store: Store
    index: SearchIndex
    built: bool
    report: BuildReport | None = None


class Reference:
    """Everything the CLI and the language server look things up in."""

    def __init__(
        self,
        opened: _Opened,
        glossary: Glossary,
        cfg: Config,
        settings: Settings,
        problems: list[Problem] | None = None,
    ) -> None:
        self._opened = opened
        self.glossary = glossary
        self.config = cfg
        self.settings = settings
        self.problems = problems or []
        self.damaged: str | None = None
        self.builder = None  # see open()
        self._lock = threading.RLock()  # the Whoosh searcher and swaps of the generation
        # resolved corpus roots: cards link only to files inside them
        self.roots = resolve_roots(path for path, _label in settings.roots())

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        rebuild: bool = False,
        progress=None,
        glossary: Glossary | None = None,
        waiting=None,
        builder=None,
    ) -> Reference:
        """Open the index of this configuration, building or updating it as needed.

        ``glossary``: one already loaded from the same files (the language server loads it
        first, for hovers), reused when its files are unchanged. ``waiting(message)`` is
        called when another process holds the index (building it) and we wait.
        ``builder(rebuild)``: runs a full build elsewhere (the language server's child
        process, see workers.build_in_child); by default full builds run here."""
        settings = settings or Settings()
        found = scan(settings.roots(), settings.rules())
        glossary_paths = config.glossary_paths(found.glossaries)
        glossary_digests = digests(glossary_paths)
        if glossary is None or glossary.digests != glossary_digests:  # other files, or edited
            glossary = Glossary.load(glossary_paths)
        cfg = Config(settings.roots(), settings.rules(), glossary_paths, glossary.digests)
        problems = list(settings.problems) + list(found.problems)
        opened = None
        last_error: BaseException | None = None
        for candidate, note in _cache_candidates(settings.cache):
            try:
                root = cache.private_dir(candidate)
                slot = Slot(root, cfg.fingerprint(), cache.install_key(root))
                opened = _open_slot(slot, cfg, glossary, found, rebuild, progress, waiting, builder)
            except (OSError, cache.UnsafeCache) as exc:
                last_error = exc
                continue
            if note or last_error is not None:
                message = (
                    f"the index cache {settings.cache} is unusable "
                    f"({cache.describe(last_error) if last_error else note}); "
                    f"using {root} instead"
                )
                problems.insert(0, Problem(str(settings.cache), None, message))
            break
        if opened is None:
            raise OSError(f"no usable index cache ({cache.describe(last_error or OSError())})")
        ref = cls(opened, glossary, cfg, settings, problems)
        ref.builder = builder
        ref.problems += [Problem(p, line, m) for p, line, m in opened.store.problems()]
        ref.problems += glossary.problems
        return ref

    @property
    def store(self) -> Store:
        return self._opened.store

    @property
    def index(self) -> SearchIndex:
        return self._opened.index

    @property
    def built(self) -> bool:
        return self._opened.built

    @property
    def report(self) -> BuildReport | None:
        return self._opened.report

    @property
    def entries(self) -> EntryView:
        return EntryView(self.store)

    def sync(self) -> BuildReport | None:
        """Apply changed note files to the index (one file at a time); None if none.
        Raises ConfigChanged when a glossary file changed (the caller reopens)."""
        found = scan(self.settings.roots(), self.settings.rules())
        if digests(config.glossary_paths(found.glossaries)) != self.config.glossary_digests:
            raise ConfigChanged("a glossary file changed")
        slot = self._opened.slot
        full = False
        slot.write_lock.acquire()
        try:
            with self._lock:
                if slot.current() != self._opened.gen:  # someone published a new build
                    self._swap(_open_current(slot))
                if needs_full_rebuild(self.store, found):
                    if self.builder is not None:
                        full = True
                    else:
                        gen, report = full_build(slot, self.config, self.glossary, found)
                        self._swap(_open_gen(slot, gen, built=True, report=report))
                        slot.clean(keep=[gen])
                        return report
                else:
                    synced = sync(
                        slot, self._opened.gen, self.config, self.glossary, found,
                        self.store, self.index,
                    )  # fmt: skip
                    if synced is not None:
                        self._reopen_index()
                    return synced
        finally:
            slot.write_lock.release()
        assert full and self.builder is not None
        self.builder(False)
        with self._lock:
            self._swap(_open_current(slot))
        return self._opened.report or BuildReport(entries=len(self.store))

    def rebuild(self, progress=None) -> BuildReport:
        """Build a new generation beside the one in use, then switch to it."""
        slot = self._opened.slot
        if self.builder is not None:
            self.builder(True)
            with self._lock:
                self._swap(_open_current(slot))
            self.damaged = None
            return BuildReport(entries=len(self.store), files=self.store.file_count())
        found = scan(self.settings.roots(), self.settings.rules())
        slot.write_lock.acquire()
        try:
            gen, report = full_build(slot, self.config, self.glossary, found, progress=progress)
            with self._lock:
                self._swap(_open_gen(slot, gen, built=True, report=report))
            slot.clean(keep=[gen])
            self.damaged = None
            return report
        finally:
            slot.write_lock.release()

    def _swap(self, opened: _Opened) -> None:
        old, self._opened = self._opened, opened
        _close_later(old)

    def _reopen_index(self) -> None:
        read_lock = FileLock(self._opened.slot.read_lock_path)
        read_lock.acquire(exclusive=False)
        try:
            index = SearchIndex.open(self._opened.gen / "whoosh", self._opened.slot.key)
        finally:
            read_lock.release()
        old = self._opened.index
        self._opened.index = index
        _close_later_index(old)

    def close(self) -> None:
        self._opened.index.close()
        self._opened.store.close()

    # --- entries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.store)

    def all(self) -> list[Entry]:
        return list(self.store.iter_entries())

    def iter_entries(self) -> Iterator[Entry]:
        return self.store.iter_entries()

    def get(self, entry_id: str) -> Entry | None:
        """An entry by id, or by what ``find_ids`` takes when that names one entry only."""
        entry = self.store.entry(entry_id)
        if entry is not None:
            return entry
        matches = self.find_ids(entry_id, limit=2)
        return self.store.entry(matches[0]) if len(matches) == 1 else None

    def find_ids(self, prefix: str, limit: int = 20) -> list[str]:
        """The ids ``prefix`` names: the id itself, else every id that starts with it or whose
        hash part (after the ":") does (``5f1901f5`` for
        ``llm-interview-104-questions:5f1901f5``). More than one: ambiguous."""
        if not prefix:
            return []
        if self.store.contains(prefix):
            return [prefix]
        return self.store.ids_with_prefix(prefix, limit)

    def also_in(self, entry: Entry) -> list[Entry]:
        found = self.store.entries(entry.also_in)
        return [found[i] for i in entry.also_in if i in found]

    def about(self, concept: str, limit: int = 50) -> list[Entry]:
        """Entries about a concept, best first, one per group of same questions: those whose
        question names it (answered, specific questions first), then those whose answer does."""
        ids = self.store.about(concept, limit)
        found = self.store.entries(ids)
        return [found[i] for i in ids if i in found]

    def card(self, concept: str) -> CardInput | None:
        """What a hover card for the concept shows."""
        c = self.glossary.get(concept)
        if c is None:
            return None
        about = self.about(concept, limit=1)
        best = about[0] if about else None
        others = self.also_in(best) if best else []
        related = [r for r in (self.glossary.get(x) for x in c.related) if r is not None]
        more = max(self.store.about_count(concept) - 1, 0) if best else 0
        return CardInput(c, best, others, related, more, roots=self.roots)

    @property
    def snippets(self) -> list[SnippetRow]:
        """Every code snippet of the corpus (small corpora, tests: see ``snippets_for``)."""
        return self.store.snippets()

    def snippets_for(self, key_prefix: str, concepts: Sequence[str]) -> list[SnippetRow]:
        """Snippets named like ``key_prefix``, and those of the best entries about ``concepts``."""
        ids: list[str] = []
        for cid in concepts[:10]:
            ids.extend(self.store.about(cid, 5))
        return self.store.snippets(key_prefix, ids)

    # --- search ----------------------------------------------------------------------------------

    def plan(
        self, query: str, concepts: Sequence[str] | None = None
    ) -> tuple[list[Clause], list[str]]:
        """Engine-neutral clauses for a query, and the glossary concepts it names."""
        toks = list(normalize.tokens(query))
        words = tuple(dict.fromkeys(t.text for t in toks))
        # parts only (no catenations) in order, for all-of and phrase clauses
        parts = _in_order(toks)
        clauses: list[Clause] = []
        if words:
            clauses += [
                Clause("question", words, "any", W_QUESTION),
                Clause("names", words, "any", W_NAMES),
                Clause("answer", words, "any", W_ANSWER),
            ]
        if len(parts) > 1:
            clauses += [
                Clause("question", parts, "all", W_QUESTION_ALL),
                Clause("question", parts, "phrase", W_PHRASE),
                Clause("answer", parts, "phrase", W_ANSWER),
            ]
        if concepts is None:
            concepts = list(dict.fromkeys(m.concept for m in self.glossary.find(query)))
        for cid in concepts:
            concept = self.glossary.get(cid)
            if concept is None:
                continue
            clauses.append(Clause("concepts", (cid,), "any", W_CONCEPT))
            clauses.append(Clause("answer_concepts", (cid,), "any", W_ANSWER_CONCEPT))
            if concept.related:  # neighbours, weakly: they order what the query alone cannot
                related = tuple(concept.related)
                clauses.append(Clause("concepts", related, "any", W_RELATED))
                clauses.append(Clause("answer_concepts", related, "any", W_RELATED / 2))
            for form in dict.fromkeys([*concept.names(), *concept.code]):
                form_parts = _parts(form)
                if not form_parts or form_parts == parts:
                    continue
                mode = "all" if len(form_parts) > 1 else "any"
                clauses.append(Clause("question", form_parts, mode, W_ALIAS_QUESTION))
                clauses.append(
                    Clause(
                        "answer",
                        form_parts,
                        "phrase" if len(form_parts) > 1 else "any",
                        W_ALIAS_ANSWER,
                    )
                )
        return clauses, list(concepts)

    def search(
        self, query: str, limit: int = 10, *, concepts: Sequence[str] | None = None
    ) -> SearchResult:
        query = query.strip()
        result = SearchResult(query)
        if not query:
            return result
        clauses, result.concepts = self.plan(query, concepts)
        try:
            with self._lock:  # one Whoosh searcher, shared
                hits = self.index.search(clauses, limit=max(limit * 3, 30))
        except Exception as exc:  # a damaged index: say so, answer from the concept table
            self._mark_damaged(exc)
            result.degraded = self.damaged
            hits = []
            for cid in result.concepts:
                hits.extend(Hit(i, 0.0) for i in self.store.about(cid, limit))
        found = self.store.entries([h.id for h in hits])
        # equal scores: corpus order decides (not the engine's internal document order)
        hits = sorted(
            (h for h in hits if h.id in found),
            key=lambda h: (-round(h.score, 6), found[h.id].source, found[h.id].line),
        )
        seen_groups: set[str] = set()
        for hit in hits:
            entry = found[hit.id]
            if entry.group is not None:
                if entry.group in seen_groups:
                    continue
                seen_groups.add(entry.group)
            result.results.append(Result(entry, hit.score))
            if len(result.results) >= limit:
                break
        if not result.concepts and result.degraded is None:
            result.suggestion = self.suggest(query)
            if result.suggestion and not result.results:
                # nothing for the misspelling: answer for the correction
                corrected = self.search(result.suggestion, limit, concepts=concepts)
                result.results, result.concepts = corrected.results, corrected.concepts
                result.corrected = True
        return result

    def _mark_damaged(self, exc: BaseException) -> None:
        if self.damaged is None:
            log.warning("the index failed (%s: %s); it needs a rebuild", type(exc).__name__, exc)
        self.damaged = f"{type(exc).__name__}: {exc}"

    # --- did you mean ----------------------------------------------------------------------------

    def vocabulary(self) -> list[str]:
        """Latin words of the corpus and keys of the glossary."""
        words = set(self.store.vocabulary())
        for key in self.glossary.matcher.keys:
            if key.isascii():
                words.add(key)
        return sorted(words)

    def suggest(self, query: str) -> str | None:
        """A corrected query when some Latin word is unknown and a close one exists."""
        vocab = self.vocabulary()
        known = set(vocab)
        changed = False
        out: list[str] = []
        for word in query.split():
            key = "".join(normalize.split_identifier(word))
            if not key.isascii() or len(key) < 4 or key in known or self.glossary.lookup(word):
                out.append(word)
                continue
            close = difflib.get_close_matches(key, vocab, n=1, cutoff=0.8)
            if not close:
                out.append(word)
                continue
            concept = self.glossary.lookup(close[0])
            out.append(concept.name if concept else close[0])
            changed = True
        return " ".join(out) if changed else None


def _cache_candidates(configured: Path) -> Iterator[tuple[Path, str]]:
    """Where an index may live: the configured cache, else the default one, else a private
    temporary folder in memory (/dev/shm) or on disk (rebuilt each time)."""
    yield configured, ""
    default = config.default_cache_dir()
    if default != configured:
        yield default, ""
    shm = Path("/dev/shm")
    for base in ([shm] if shm.is_dir() and os.access(shm, os.W_OK) else []) + [None]:
        try:
            import tempfile

            yield Path(tempfile.mkdtemp(prefix="llmref-", dir=base)), "a temporary index"
        except OSError:
            continue


def _open_gen(slot: Slot, gen: Path, *, built: bool = False, report=None) -> _Opened:
    read_lock = FileLock(slot.read_lock_path)
    read_lock.acquire(exclusive=False)
    try:
        cache.check_tree(gen)
        index = SearchIndex.open(gen / "whoosh", slot.key)
        try:
            store = Store(gen / "state.sqlite")
        except Exception:
            index.close()
            raise
    finally:
        read_lock.release()
    return _Opened(slot, gen, store, index, built, report)


def _open_current(slot: Slot) -> _Opened:
    gen = slot.current()
    if gen is None:
        raise FileNotFoundError("no index has been built")
    return _open_gen(slot, gen)


def _open_slot(
    slot: Slot,
    cfg: Config,
    glossary: Glossary,
    found: Scan,
    rebuild: bool,
    progress,
    waiting,
    builder=None,
) -> _Opened:
    """The slot's current generation, synced with the files; built when missing or damaged."""
    if not rebuild:
        try:
            opened = _open_current(slot)
        except Exception as exc:
            if slot.current() is not None:
                log.warning("the index at %s is unusable (%s); rebuilding", slot.path, exc)
            opened = None
        if opened is not None and not _stale(opened.store, found):
            return opened
        if opened is not None:
            opened.index.close()
            opened.store.close()
    if not slot.write_lock.acquire(timeout=0):
        if waiting is not None:
            waiting("another llmref process is indexing this corpus; waiting for it")
        slot.write_lock.acquire()
    try:
        gen = slot.current()
        opened = None
        if gen is not None and not rebuild:
            try:
                opened = _open_gen(slot, gen)
            except Exception as exc:
                log.warning("the index at %s is unusable (%s); rebuilding", gen, exc)
        if opened is not None:
            if needs_full_rebuild(opened.store, found):
                opened.index.close()
                opened.store.close()
                opened = None
            else:
                report = sync(slot, opened.gen, cfg, glossary, found, opened.store, opened.index)
                if report is not None:
                    opened.index.close()
                    opened = _open_gen(slot, opened.gen, report=report)
                slot.clean(keep=[opened.gen])
                return opened
        if builder is None:
            new_gen, report = full_build(slot, cfg, glossary, found, progress=progress)
            slot.clean(keep=[new_gen])
            log.info(
                "built the index: %d entries from %d files in %.1fs%s",
                report.entries, report.files, report.seconds,
                f" ({report.workers} worker processes)" if report.workers else "",
            )  # fmt: skip
            return _open_gen(slot, new_gen, built=True, report=report)
    finally:
        slot.write_lock.release()
    builder(rebuild)  # another process builds (it takes the lock itself)
    opened = _open_current(slot)
    opened.built = True
    return opened


def _stale(store: Store, found: Scan) -> bool:
    """Whether any note file differs (by stat) from what the store indexed."""
    known = store.files()
    if len(known) != len(found.notes):
        return True
    for note in found.notes:
        row = known.get(str(note.path))
        if row is None or (row.mtime_ns, row.size, row.display, row.sort) != (
            note.mtime_ns,
            note.size,
            note.display,
            note.sort,
        ):
            return True
    return False


def _close_later(opened: _Opened, delay: float = 30.0) -> None:
    """Requests already running may still read the old generation: close it later."""

    def close() -> None:
        opened.index.close()
        opened.store.close()

    timer = threading.Timer(delay, close)
    timer.daemon = True
    timer.start()


def _close_later_index(index: SearchIndex, delay: float = 30.0) -> None:
    timer = threading.Timer(delay, index.close)
    timer.daemon = True
    timer.start()


def _parts(text: str) -> tuple[str, ...]:
    return _in_order(normalize.tokens(text))


def _in_order(toks) -> tuple[str, ...]:
    """The identifier parts in position order (catenations share a part's position)."""
    positions: dict[int, str] = {}
    for t in toks:
        positions.setdefault(t.pos, t.text)
    return tuple(positions[p] for p in sorted(positions))


__all__ = [
    "ConfigChanged",
    "IndexDamaged",
    "Reference",
    "Result",
    "SearchResult",
    "result_json",
    "tag_entries",
]
