"""The reference: corpus + glossary + index, and the questions the editor and CLI ask of it.

Flow: corpus files -> parse -> glossary tagging -> grouping -> index and entry store (cached
on disk, updated one file at a time; see build.py) -> here. Entries live in the store, not in
memory: a notes folder of 100k sections costs the same memory as the bundled corpus.
Nothing here imports pygls or lsprotocol.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import cache, config, normalize
from .bridge import W_CURATED, Bridge, lemmas
from .build import BuildReport, Config, Slot, full_build, needs_full_rebuild, sync
from .cards import CardInput
from .config import Settings
from .corpus.entry import TEXT_LAYOUTS, Entry, result_json
from .corpus.loader import Problem, Scan, digests, scan
from .glossary import Glossary, Match, term_key
from .index import Clause, Hit, SearchIndex
from .locks import FileLock
from .ranking import about_candidates, about_key, question_kind, tag_entry
from .safe_markdown import resolve_roots
from .store import MAX_ALSO_IN, SnippetRow, Store
from .workers import BuildFailed

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

# re-ranking by coverage (see Reference._rerank)
CARD_ALSO_IN = 5  # "also in" links on a hover card (then "and N more")
RERANK = 30  # how many of the engine's best candidates are re-ranked
COVER_SHARE = 0.7  # how much of the score depends on coverage
COVER_POWER = 1.0
ANSWER_COVER = 0.35  # a word found only in the answer covers this much of its weight
W_COVER_CONCEPT = 1.5  # a concept the query names weighs this much against one plain word
INTENT_BONUS = 0.08  # same kind of question (why / how / difference / what is)
CONCEPT_SHARE = 0.06  # concepts named by more than this share of questions weigh less
GENERIC_CONCEPT = 0.25
CONFIDENT_COVERAGE = 0.5  # SearchResult.confident
SUGGEST_GAIN = 0.2  # did-you-mean: the correction must cover this much more of the query
_PUNCTUATED = re.compile(r"(\W*)(.*?)(\W*)", re.S)  # a word with the punctuation around it


@dataclass
class Result:
    entry: Entry
    score: float
    coverage: float = 0.0  # weighted share of the query's words and concepts the entry holds


@dataclass
class SearchResult:
    query: str
    results: list[Result] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)  # glossary concepts the query names
    suggestion: str | None = None  # did you mean …
    corrected: bool = False  # results are for the suggestion (the query found nothing)
    # the top result holds most of what the query asks (coverage >= CONFIDENT_COVERAGE);
    # False: the corpus may not answer this at all
    confident: bool = False
    degraded: str | None = None  # the index failed: results come from the concept table


@dataclass(frozen=True)
class _Group:
    """One thing the query asks for: a word (with its lemma and translations) or a concept."""

    weight: float
    forms: tuple[tuple[tuple[str, ...], float], ...]  # (index tokens, weight) alternatives
    concept: str | None = None
    cover: bool = True  # counts for coverage (words inside a glossary term do not: the
    # concept's group stands for them)


@dataclass
class _Query:
    text: str
    clauses: list[Clause]
    concepts: list[str]
    groups: list[_Group]
    intents: frozenset[str]


def _has(form: tuple[str, ...], words: set[str]) -> bool:
    return all(t in words for t in form)


# what kind of question: English cue words in the query, Chinese ones in a corpus question
_INTENT_EN = {
    "why": ("why", "reason", "cause", "causes"),
    "how": ("how",),
    "diff": ("difference", "differences", "differ", "differs", "compare", "compared", "versus",
             "vs"),
    "what": ("what",),
}  # fmt: skip
_INTENT_ZH = {
    "why": ("为什么", "为何", "原因", "导致"),
    "how": ("如何", "怎么", "怎样", "方法"),
    "diff": ("区别", "不同", "差异", "相比", "比较"),
    "what": ("什么是", "是什么", "概念", "指什么", "介绍"),
}


def _intents(query: str) -> frozenset[str]:
    words = set(re.findall(r"[a-z]+", query.lower()))
    return frozenset(k for k, cues in _INTENT_EN.items() if words & set(cues))


def _question_intents(question: str) -> frozenset[str]:
    return frozenset(k for k, cues in _INTENT_ZH.items() if any(c in question for c in cues))


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
        self.closed = False
        self._vocab: dict[str, str] | None = None
        self._vocab_by_length: dict[int, list[str]] | None = None
        self.bridge = Bridge()  # English -> Chinese; its tables load on the first search
        self._lock = threading.RLock()  # the Whoosh searcher and swaps of the generation
        self.team: Any = None  # team.client.TeamIndex when a database is configured (open())
        self.last_scan: Scan | None = None  # what the last sync() found (the server's watcher)
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
        strict_cache: bool = False,
    ) -> Reference:
        """Open the index of this configuration, building or updating it as needed.

        ``glossary``: one already loaded from the same files (the language server loads it
        first, for hovers), reused when its files are unchanged. ``waiting(message)`` is
        called when another process holds the index (building it) and we wait.
        ``builder(rebuild, cache_root)``: runs a full build elsewhere (the language server's child
        process, see workers.build_in_child); by default full builds run here."""
        settings = settings or Settings()
        found = scan(settings.roots(), settings.rules())
        glossary_paths = config.glossary_paths(found.glossaries)
        glossary_digests = digests(glossary_paths)
        if glossary is None or glossary.digests != glossary_digests:  # other files, or edited
            glossary = Glossary.load(glossary_paths, cache_dir=config.glossary_cache(settings))
        cfg = Config(settings.roots(), settings.rules(), glossary_paths, glossary.digests)
        problems = list(settings.problems) + list(found.problems)
        opened = None
        last_error: BaseException | None = None
        candidates = [(settings.cache, "")] if strict_cache else _cache_candidates(settings.cache)
        for candidate, note in candidates:
            try:
                root = cache.private_dir(candidate)
                slot = Slot(root, cfg.fingerprint(), cache.install_key(root))
                opened = _open_slot(slot, cfg, glossary, found, rebuild, progress, waiting, builder)
            except (OSError, cache.UnsafeCache, BuildFailed) as exc:
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
        if settings.database:  # the team corpus: connects in the background, never blocks
            from .team.client import TeamIndex

            ref.team = TeamIndex.from_settings(settings)
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
        self.last_scan = found
        if digests(config.glossary_paths(found.glossaries)) != self.config.glossary_digests:
            raise ConfigChanged("a glossary file changed")
        slot = self._opened.slot
        full = False
        slot.write_lock.acquire()
        try:
            with self._lock:
                if slot.current() != self._opened.gen:  # someone published a new build
                    self._swap(_open_current(slot))
                known = self.store.files()
                if needs_full_rebuild(self.store, found, known):
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
                        self.store, self.index, known,
                    )  # fmt: skip
                    if synced is not None:
                        self._reopen_index()
                    return synced
        finally:
            slot.write_lock.release()
        assert full and self.builder is not None
        self.builder(False, slot.root)
        with self._lock:
            self._swap(_open_current(slot))
        return self._opened.report or BuildReport(entries=len(self.store))

    def rebuild(self, progress=None) -> BuildReport:
        """Build a new generation beside the one in use, then switch to it."""
        slot = self._opened.slot
        if self.builder is not None:
            self.builder(True, slot.root)
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
        self.closed = True
        if self.team is not None:
            self.team.close()
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
        if self.team is not None and entry_id.startswith("team:"):
            return self.team.get(entry_id)
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

    def also_in(self, entry: Entry, limit: int | None = None) -> list[Entry]:
        ids = entry.also_in if limit is None else entry.also_in[:limit]
        found = self.store.entries(ids)
        return [found[i] for i in ids if i in found]

    def about(self, concept: str, limit: int = 50) -> list[Entry]:
        """Entries about a concept, best first, one per group of same questions: those whose
        question names it (answered, specific questions first), then those whose answer does."""
        ids = self.store.about(concept, limit)
        found = self.store.entries(ids)
        return [found[i] for i in ids if i in found]

    def best_about(self, concept: str) -> Entry | None:
        """The one entry that best answers what the concept is (cards, citations, definition)."""
        about = self.about(concept, limit=1)
        return about[0] if about else None

    def cited(self, concept: str) -> Entry | None:
        """The entry a card about the concept cites first: ``best_about``, or the team's best
        when it answers better (go-to-definition jumps where the card points)."""
        best = self.best_about(concept)
        c = self.glossary.get(concept)
        if self.team is not None and c is not None:
            best = self.team.card_parts(c, best, [], 0)[0]
        return best

    def card(self, concept: str) -> CardInput | None:
        """What a hover card for the concept shows."""
        c = self.glossary.get(concept)
        if c is None:
            return None
        best = self.best_about(concept)
        # a big corpus's duplicate groups run to hundreds: the card links the first few
        others = self.also_in(best, CARD_ALSO_IN) if best else []
        related = [r for r in (self.glossary.get(x) for x in c.related) if r is not None]
        more = max(self.store.about_count(concept) - 1, 0) if best else 0
        if self.team is not None:  # the team's best, from its local concept map (no query)
            best, others, more = self.team.card_parts(c, best, others, more)
        listed = len(best.also_in) if best is not None and others else 0
        return CardInput(
            c,
            best,
            others,
            related,
            more,
            roots=self.roots,
            others_more=max(listed - len(others), 0),
            others_capped=listed >= MAX_ALSO_IN,  # the store lists a group's first 50
        )

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
        planned = self._prepare(query, concepts)
        return planned.clauses, planned.concepts

    def _prepare(self, query: str, concepts: Sequence[str] | None = None, *, stats=None) -> _Query:
        """Clauses, concepts and word groups of a query.

        Each query word is one group: the word as indexed, its lemma, and (for English words
        outside glossary terms) its Chinese translations from the bridge; the best way a
        field writes the word counts, weighted down for generic words ("model", "use").
        Each concept the query names is a group too (its names, its tag), weighted down when
        many questions name it ("LLM"). ``stats``: whose document frequencies weigh the plan
        (``doc_frequency``, ``doc_count``; the local index by default, the team's for it)."""
        stats = stats if stats is not None else self.index
        toks = list(normalize.tokens(query))
        # parts only (no catenations) in order, for all-of and phrase clauses
        parts = _in_order(toks)
        matches = self.glossary.find(query) if concepts is None else []
        if concepts is None:
            matches += self._lemma_matches(query, [(m.start, m.end) for m in matches])
            concepts = list(dict.fromkeys(m.concept for m in matches))
        groups = self._word_groups(query, toks, [(m.start, m.end) for m in matches])
        clauses: list[Clause] = []
        with self._lock:
            present = self._present(
                [t for g in groups for form, _w in g.forms for t in form], stats
            )
        for group in groups:
            for field_name, boost in (
                ("question", W_QUESTION),
                ("names", W_NAMES),
                ("answer", W_ANSWER),
            ):
                alternatives = tuple(
                    Clause(field_name, terms, "phrase" if len(terms) > 1 else "any", w)
                    for terms, w in group.forms[: 1 if field_name == "names" else None]
                    if all((field_name, t) in present for t in terms)
                )
                if alternatives:
                    clauses.append(
                        Clause(field_name, (), "max", boost * group.weight, 1, alternatives,
                               prune=True)
                    )  # fmt: skip
        if len(parts) > 1:
            clauses += [
                Clause("question", parts, "all", W_QUESTION_ALL),
                Clause("question", parts, "phrase", W_PHRASE),
                Clause("answer", parts, "phrase", W_ANSWER),
            ]
        for cid in concepts:
            concept = self.glossary.get(cid)
            if concept is None:
                continue
            weight = self._concept_weight(cid, stats)
            clauses.append(Clause("concepts", (cid,), "any", W_CONCEPT * weight))
            clauses.append(Clause("answer_concepts", (cid,), "any", W_ANSWER_CONCEPT * weight))
            if concept.related:  # neighbours, weakly: they order what the query alone cannot
                related = tuple(concept.related)
                clauses.append(Clause("concepts", related, "any", W_RELATED * weight))
                clauses.append(Clause("answer_concepts", related, "any", W_RELATED / 2 * weight))
            # the concept's other names: the best-matching one counts (not their sum)
            in_question: list[Clause] = []
            in_answer: list[Clause] = []
            forms: list[tuple[tuple[str, ...], float]] = []
            for form in dict.fromkeys([*concept.names(), *concept.code]):
                form_parts = _parts(form)
                if not form_parts:
                    continue
                forms.append((form_parts, 1.0))
                if form_parts == parts:
                    continue
                mode = "all" if len(form_parts) > 1 else "any"
                in_question.append(Clause("question", form_parts, mode, W_ALIAS_QUESTION))
                phrase = "phrase" if len(form_parts) > 1 else "any"
                in_answer.append(Clause("answer", form_parts, phrase, W_ALIAS_ANSWER))
            for field_name, alts in (("question", in_question), ("answer", in_answer)):
                if alts:
                    clauses.append(Clause(field_name, (), "max", weight, 1, tuple(alts)))
            groups.append(_Group(weight * W_COVER_CONCEPT, tuple(forms), cid))
        return _Query(query, clauses, list(concepts), groups, _intents(query))

    def _present(self, terms: list[str], stats=None) -> set[tuple[str, str]]:
        """(field, term) pairs the index holds, of the word fields (caller holds the lock)."""
        stats = stats if stats is not None else self.index
        out: set[tuple[str, str]] = set()
        for term in dict.fromkeys(terms):
            for field_name in ("question", "names", "answer"):
                if stats.doc_frequency(field_name, term):
                    out.add((field_name, term))
        return out

    def _concept_weight(self, cid: str, stats=None) -> float:
        """1.0 for a specific concept, down to GENERIC_CONCEPT for one that many questions
        name (LLM, Transformer): naming it says little about which question is meant."""
        stats = stats if stats is not None else self.index
        with self._lock:
            total = max(stats.doc_count(), 1)
            share = stats.doc_frequency("concepts", cid) / total
        if share <= CONCEPT_SHARE:
            return 1.0
        return max(GENERIC_CONCEPT, CONCEPT_SHARE / share)

    def _lemma_matches(self, query: str, taken: list[tuple[int, int]]) -> list[Match]:
        """Glossary terms named once English words are lemmatized (pretrained -> pretrain),
        where the query as typed names none; spans are offsets in ``query``."""
        pieces: list[str] = []
        spans: list[tuple[int, int, int, int]] = []  # lemmatized start/end, original start/end
        at = 0
        changed = False
        for m in re.finditer(r"\S+", query):
            lemma = self._lemma(m.group())
            changed = changed or lemma != m.group()
            spans.append((at, at + len(lemma), m.start(), m.end()))
            pieces.append(lemma)
            at += len(lemma) + 1
        if not changed:
            return []
        out: list[Match] = []
        for match in self.glossary.find(" ".join(pieces)):
            inside = [sp for sp in spans if match.start < sp[1] and sp[0] < match.end]
            if not inside:
                continue
            start, end = inside[0][2], inside[-1][3]
            if any(start < e and s < end for s, e in taken):
                continue
            out.append(dataclasses.replace(match, start=start, end=end))
        return out

    def _lemma(self, word: str) -> str:
        """The base form of an English word that the glossary or the bridge knows."""
        if not word.isascii() or not word.isalpha():
            return word
        for form in lemmas(word)[1:]:
            if self.glossary.lookup(form) is not None or self.bridge.known(form):
                return form
        return word

    def _word_groups(
        self, query: str, toks: list[normalize.Tok], covered: list[tuple[int, int]]
    ) -> list[_Group]:
        words = self.bridge.words(query) if _LATIN.search(query) else []
        groups: list[_Group] = []
        grouped: set[int] = set()
        for word in words:
            inside = [k for k, t in enumerate(toks) if word.start <= t.start < word.end]
            grouped.update(inside)
            forms: list[tuple[tuple[str, ...], float]] = [((toks[k].text,), 1.0) for k in inside]
            if word.lemma:
                forms += [((t,), 1.0) for t in normalize.token_texts(word.lemma)]
            # inside a glossary term the concept speaks for the word; a one-word term
            # (reward, bias) keeps the word's curated translations too
            spans = [(s, e) for s, e in covered if s <= word.start and word.end <= e]
            whole_word = all((s, e) == (word.start, word.end) for s, e in spans)
            for zh, weight in word.chinese:
                if spans and not (whole_word and weight >= W_CURATED):
                    continue
                zh_parts = _zh_parts(zh)
                if zh_parts:
                    forms.append((zh_parts, weight))
            if forms:
                groups.append(_Group(word.weight, tuple(dict.fromkeys(forms)), cover=not spans))
        for k, t in enumerate(toks):
            if k not in grouped:
                in_term = any(s <= t.start and t.end <= e for s, e in covered)
                groups.append(_Group(1.0, (((t.text,), 1.0),), cover=not in_term))
        unique: dict[tuple, _Group] = {}
        for g in groups:
            unique.setdefault((g.weight, g.forms, g.cover), g)
        return list(unique.values())

    def search(
        self, query: str, limit: int = 10, *, concepts: Sequence[str] | None = None
    ) -> SearchResult:
        result = self._search(query, limit, concepts)
        if result.query and concepts is None and result.degraded is None:
            result.suggestion, corrected = self._suggest(result.query, result, limit)
            if result.suggestion and corrected is not None and not result.results:
                # nothing for the misspelling: answer for the correction (searched once,
                # to judge it, at this limit)
                result.results, result.concepts = corrected.results, corrected.concepts
                result.confident = corrected.confident
                result.corrected = True
        return result

    def _search(self, query: str, limit: int, concepts: Sequence[str] | None) -> SearchResult:
        query = query.strip()
        result = SearchResult(query)
        if not query:
            return result
        planned: _Query | None = None
        # the team half first: the database searches while the local index does
        pending = self.team.begin(self, query, concepts, limit) if self.team is not None else None
        try:
            planned = self._prepare(query, concepts)
            result.concepts = planned.concepts
            with self._lock:  # one Whoosh searcher, shared
                hits = self.index.search(planned.clauses, limit=max(limit * 3, RERANK), terms=True)
        except Exception as exc:  # a damaged index: say so, answer from the concept table
            if self.closed:  # shutting down: requests still running get nothing
                return result
            self._mark_damaged(exc)
            result.degraded = self.damaged
            if concepts is None:
                concepts = list(dict.fromkeys(m.concept for m in self.glossary.find(query)))
            result.concepts = list(concepts)
            planned = None
            hits = [Hit(i, 1.0) for cid in result.concepts for i in self.store.about(cid, limit)]
        found = self.store.entries([h.id for h in hits])
        # equal scores: corpus order decides (not the engine's internal document order)
        hits = sorted(
            (h for h in hits if h.id in found),
            key=lambda h: (-round(h.score, 6), found[h.id].source, found[h.id].line),
        )
        candidates: list[tuple[Result, frozenset[tuple[str, str]]]] = []
        seen_groups: set[str] = set()
        for hit in hits:
            entry = found[hit.id]
            if entry.group is not None:
                if entry.group in seen_groups:
                    continue
                seen_groups.add(entry.group)
            candidates.append((Result(entry, hit.score), hit.terms))
        if planned is None:
            result.results = [r for r, _ in candidates][:limit]
            return result
        ranked = self._rerank(planned, candidates)
        if pending is not None:  # the team corpus's results, merged by normalized score
            ranked = self.team.merge(self, pending, ranked)
        result.results = ranked[:limit]
        if result.results:
            result.confident = result.results[0].coverage >= CONFIDENT_COVERAGE
        return result

    def _rerank(
        self, planned: _Query, candidates: list[tuple[Result, frozenset[tuple[str, str]]]]
    ) -> list[Result]:
        """Order the engine's best candidates by how much of the query each one covers.

        BM25 alone lets one frequent word (or one generic concept) outrank a question that
        matches every content word of a plain-English query; coverage (question words count
        fully, answer-only words partly) scales the engine's score, and the question's kind
        (why / how / difference) breaks near-ties."""
        counted = [g for g in planned.groups if g.cover]
        total = sum(g.weight for g in counted)
        if total <= 0:
            return [r for r, _ in candidates]
        for r, matched in candidates[:RERANK]:
            q_words = {t for f, t in matched if f == "question"}
            a_words = {t for f, t in matched if f == "answer"}
            covered = 0.0
            for g in counted:
                if g.concept is not None and g.concept in r.entry.question_concepts:
                    covered += g.weight
                elif any(_has(form, q_words) for form, _w in g.forms):
                    covered += g.weight
                elif (g.concept is not None and g.concept in r.entry.concepts) or any(
                    _has(form, a_words) for form, _w in g.forms
                ):
                    covered += g.weight * ANSWER_COVER
            r.coverage = covered / total
            kind = 1.0 + INTENT_BONUS * len(planned.intents & _question_intents(r.entry.question))
            r.score *= (1.0 - COVER_SHARE + COVER_SHARE * r.coverage**COVER_POWER) * kind
        head = sorted((r for r, _ in candidates[:RERANK]), key=lambda r: -r.score)
        return head + [r for r, _ in candidates[RERANK:]]

    def _mark_damaged(self, exc: BaseException) -> None:
        if self.damaged is None:
            log.warning("the index failed (%s: %s); it needs a rebuild", type(exc).__name__, exc)
        self.damaged = f"{type(exc).__name__}: {exc}"

    # --- did you mean ----------------------------------------------------------------------------

    def vocabulary(self) -> dict[str, str]:
        """Did-you-mean candidates: the key of every Latin glossary term (name, alias,
        identifier) and of the bridge's curated English words, mapped to the form to show.

        It comes from the glossary and the bridge only, never from the index's lexicon, so it
        stays small whatever the corpus size (built once, on demand)."""
        if self._vocab is None:
            vocab: dict[str, str] = {}
            for concept in self.glossary.concepts.values():
                for text, kind in concept.forms():
                    key = term_key(text)
                    if kind != "zh" and key.isascii() and len(key) > 2:
                        vocab.setdefault(key, text)
            for concept in self.glossary.concepts.values():
                for text, kind in concept.forms():
                    if kind in ("name", "aliases") and " " in text:  # speculative, decoding
                        for word in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", text):
                            vocab.setdefault(term_key(word), word.lower())
            for word in self.bridge.curated_keys():
                key = term_key(word)
                if key.isascii() and len(key) > 2:
                    vocab.setdefault(key, word)
            self._vocab = vocab
        return self._vocab

    def _known(self, word: str) -> bool:
        """A word needs no correction: a stop word, an English word the bridge knows, a
        glossary term, an identifier made of those, or a word the corpus holds."""

        def plain(w: str) -> bool:
            low = w.lower()
            return (
                low in normalize.STOP_EN or self.bridge.known(low) or bool(self.glossary.lookup(w))
            )

        if plain(word):
            return True
        parts = normalize.split_identifier(word)  # GELUActivation: GELU + activation, known
        if len(parts) > 1 and all(plain(p) for p in parts):
            return True
        toks = normalize.token_texts(word)
        if not toks:
            return True
        if self.team is not None and self.team.holds(toks):  # the team corpus has it
            return True
        with self._lock:
            return all(
                any(self.index.doc_frequency(f, t) for f in ("question", "names", "answer"))
                for t in toks
            )

    def _close_key(self, key: str) -> str | None:
        """The did-you-mean key closest to ``key`` (difflib ratio >= 0.8), looked for only
        among keys of a length that can reach it: 2·min/(a+b) >= 0.8 needs the shorter at
        least 2/3 of the longer (same answer as searching them all, 10x fewer comparisons)."""
        if self._vocab_by_length is None:
            by_length: dict[int, list[str]] = {}
            for k in sorted(self.vocabulary()):
                by_length.setdefault(len(k), []).append(k)
            self._vocab_by_length = by_length
        n = len(key)
        lo, hi = -(-2 * n // 3), (3 * n) // 2
        keys = [k for size in range(lo, hi + 1) for k in self._vocab_by_length.get(size, ())]
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
        return close[0] if close else None

    def _suggest(
        self, query: str, found: SearchResult | None, limit: int
    ) -> tuple[str | None, SearchResult | None]:
        """A corrected query, when a Latin word is unknown, a close glossary term or curated
        English word exists, and the corrected query finds clearly better answers than
        ``found`` (the query's own results, searched when not given); with the corrected
        query's results (searched once, at ``limit``, to judge it)."""
        vocab = self.vocabulary()
        changed = False
        named: set[str] = set()  # concepts the corrected words name exactly
        out: list[str] = []
        for chunk in re.split(r"(\s+)", query):
            # the word without the punctuation around it ("once," is the word once)
            lead, word, trail = _PUNCTUATED.fullmatch(chunk).groups()  # type: ignore[union-attr]
            key = term_key(word)
            if not key.isascii() or len(key) < 4 or key in vocab or self._known(word):
                out.append(chunk)
                continue
            close = self._close_key(key)
            if close is None:
                out.append(chunk)
                continue
            out.append(lead + vocab[close] + trail)
            named.update(self.glossary.matcher.exact(vocab[close]))
            changed = True
        if not changed:
            return None, None
        suggestion = "".join(out)
        if found is None:
            found = self._search(query, limit, None)
        better = self._search(suggestion, limit, None)
        if not better.results:
            return None, None
        if not found.results:
            return suggestion, better  # something rather than nothing
        if not better.confident:
            return None, None
        gain = better.results[0].coverage - found.results[0].coverage
        # a misspelled identifier corrected to a glossary term (LlamaRMSNrom -> LlamaRMSNorm)
        names_term = bool(named) and named <= set(better.concepts)
        if found.confident and gain < SUGGEST_GAIN and not names_term:
            return None, None
        return suggestion, better


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
    builder(rebuild, slot.root)  # another process builds (it takes the lock itself)
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


_LATIN = re.compile(r"[A-Za-z]")


@lru_cache(maxsize=4096)
def _zh_parts(text: str) -> tuple[str, ...]:
    return _in_order(normalize.tokens(text))


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
    "about_candidates",
    "about_key",
    "question_kind",
    "result_json",
    "tag_entries",
]
