"""The reference: corpus + glossary + index, and the questions the editor and CLI ask of it.

Flow: corpus files -> parse -> glossary tagging -> grouping -> index (cached) -> here.
Nothing here imports pygls or lsprotocol.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from . import config, normalize
from .bridge import W_CURATED, Bridge, lemmas
from .cards import CardInput
from .config import Settings
from .corpus.entry import Entry, result_json
from .corpus.group import group_duplicates
from .corpus.loader import Problem, digests, discover, load_notes
from .glossary import Concept, Glossary, Match, term_key
from .index import SCHEMA_VERSION, Clause, Progress, SearchIndex
from .snippets import extract as extract_snippets

log = logging.getLogger("llmref.lookup")

PIPELINE_VERSION = "2"  # parse/tag/group behaviour: part of the index key

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
    """Concepts named by each entry (question first), then same-question groups."""
    for entry in entries:
        in_question = glossary.concepts_in(entry.question)
        in_answer = glossary.concepts_in(f"{entry.detail}\n{entry.answer}")
        entry.question_concepts = in_question
        entry.concepts = in_question + [c for c in in_answer if c not in in_question]
    group_duplicates(entries, [frozenset(e.question_concepts) for e in entries])


def fingerprint(
    note_digests: Sequence[tuple[str, str]], glossary_digests: Sequence[tuple[str, str]]
) -> str:
    h = hashlib.sha256()
    h.update(
        f"schema={SCHEMA_VERSION};analyzer={normalize.ANALYZER_VERSION};"
        f"pipeline={PIPELINE_VERSION};segmenter={normalize.segmenter_version()}\n".encode()
    )
    for kind, items in (("note", note_digests), ("glossary", glossary_digests)):
        for name, digest in items:
            h.update(f"{kind}\0{name}\0{digest}\n".encode())
    return h.hexdigest()


class Reference:
    """Everything the CLI and the language server look things up in."""

    def __init__(
        self,
        entries: list[Entry],
        glossary: Glossary,
        index: SearchIndex,
        problems: list[Problem] | None = None,
        built: bool = False,
    ) -> None:
        self.entries = {e.id: e for e in entries}
        self.order = [e.id for e in entries]
        self.glossary = glossary
        self.index = index
        self.problems = problems or []
        self.built = built
        self._vocab: dict[str, str] | None = None
        self._lock = threading.Lock()
        self.bridge = Bridge()  # English -> Chinese; its tables load on the first search
        self._about = _rank_by_concept(entries, glossary)
        self.snippets = [s for e in entries for s in extract_snippets(e)]

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        rebuild: bool = False,
        progress: Progress | None = None,
        glossary: Glossary | None = None,
    ) -> Reference:
        """Load (or build) the reference. ``glossary``: one already loaded from the same
        files (the language server loads it first, for hovers), to avoid loading it twice."""
        settings = settings or Settings()
        notes, glossary_files, problems = discover(settings.roots())
        glossary_paths = config.glossary_paths(glossary_files)
        glossary_digests = digests(glossary_paths)
        if glossary is None or glossary.digests != glossary_digests:  # other files, or edited
            glossary = Glossary.load(glossary_paths)
        note_digests = [
            (display, digest)
            for (_path, display), (_p, digest) in zip(
                notes, digests(p for p, _ in notes), strict=True
            )
        ]
        key = fingerprint(note_digests, glossary.digests)

        def build() -> tuple[list[Entry], dict]:
            entries, _files, found = load_notes(notes)
            tag_entries(entries, glossary)
            return entries, {"problems": [[p.path, p.line, p.message] for p in found]}

        index, entries, built = SearchIndex.open_or_build(
            settings.cache,
            key,
            build,
            lambda e: _names_text(e, glossary),
            rebuild=rebuild,
            progress=progress,
        )
        file_problems = [Problem(*p) for p in index.meta.get("extra", {}).get("problems", [])]
        all_problems = settings.problems + problems + file_problems + glossary.problems
        return cls(entries, glossary, index, all_problems, built)

    def close(self) -> None:
        self.index.close()

    # --- entries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def all(self) -> list[Entry]:
        return [self.entries[i] for i in self.order]

    def get(self, entry_id: str) -> Entry | None:
        """An entry by id, or by a unique id prefix."""
        if entry_id in self.entries:
            return self.entries[entry_id]
        matches = [i for i in self.order if i.startswith(entry_id)]
        return self.entries[matches[0]] if len(matches) == 1 else None

    def about(self, concept: str) -> list[Entry]:
        """Entries about a concept, best first, one per group of same questions: those whose
        question names it (answered, specific questions first), then those whose answer does."""
        return [self.entries[i] for i in self._about.get(concept, ())]

    def card(self, concept: str) -> CardInput | None:
        """What a hover card for the concept shows."""
        c = self.glossary.get(concept)
        if c is None:
            return None
        about = self.about(concept)
        best = about[0] if about else None
        others = [self.entries[i] for i in best.also_in if i in self.entries] if best else []
        related = [r for r in (self.glossary.get(x) for x in c.related) if r is not None]
        return CardInput(c, best, others, related, max(len(about) - 1, 0))

    # --- search ----------------------------------------------------------------------------------

    def plan(
        self, query: str, concepts: Sequence[str] | None = None
    ) -> tuple[list[Clause], list[str]]:
        """Engine-neutral clauses for a query, and the glossary concepts it names."""
        planned = self._prepare(query, concepts)
        return planned.clauses, planned.concepts

    def _prepare(self, query: str, concepts: Sequence[str] | None = None) -> _Query:
        """Clauses, concepts and word groups of a query.

        Each query word is one group: the word as indexed, its lemma, and (for English words
        outside glossary terms) its Chinese translations from the bridge; the best way a
        field writes the word counts, weighted down for generic words ("model", "use").
        Each concept the query names is a group too (its names, its tag), weighted down when
        many questions name it ("LLM")."""
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
            present = self._present([t for g in groups for form, _w in g.forms for t in form])
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
                        Clause(field_name, (), "max", boost * group.weight, 1, alternatives)
                    )
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
            weight = self._concept_weight(cid)
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

    def _present(self, terms: list[str]) -> set[tuple[str, str]]:
        """(field, term) pairs the index holds, of the word fields (caller holds the lock)."""
        out: set[tuple[str, str]] = set()
        for term in dict.fromkeys(terms):
            for field_name in ("question", "names", "answer"):
                if self.index.doc_frequency(field_name, term):
                    out.add((field_name, term))
        return out

    def _concept_weight(self, cid: str) -> float:
        """1.0 for a specific concept, down to GENERIC_CONCEPT for one that many questions
        name (LLM, Transformer): naming it says little about which question is meant."""
        with self._lock:
            total = max(self.index.doc_count(), 1)
            share = self.index.doc_frequency("concepts", cid) / total
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
        if result.query and concepts is None:
            result.suggestion = self.suggest(result.query, result)
            if result.suggestion and not result.results:
                # nothing for the misspelling: answer for the correction
                corrected = self._search(result.suggestion, limit, concepts)
                result.results, result.concepts = corrected.results, corrected.concepts
                result.confident = corrected.confident
                result.corrected = True
        return result

    def _search(self, query: str, limit: int, concepts: Sequence[str] | None) -> SearchResult:
        query = query.strip()
        result = SearchResult(query)
        if not query:
            return result
        planned = self._prepare(query, concepts)
        result.concepts = planned.concepts
        with self._lock:  # one Whoosh searcher, shared
            hits = self.index.search(planned.clauses, limit=max(limit * 3, RERANK), terms=True)
        candidates: list[tuple[Result, frozenset[tuple[str, str]]]] = []
        seen_groups: set[str] = set()
        for hit in hits:
            entry = self.entries.get(hit.id)
            if entry is None:
                continue
            if entry.group is not None:
                if entry.group in seen_groups:
                    continue
                seen_groups.add(entry.group)
            candidates.append((Result(entry, hit.score), hit.terms))
        result.results = self._rerank(planned, candidates)[:limit]
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
        glossary term, or a word the corpus holds."""
        low = word.lower()
        if low in normalize.STOP_EN or self.bridge.known(low) or self.glossary.lookup(word):
            return True
        toks = normalize.token_texts(word)
        if not toks:
            return True
        with self._lock:
            return all(
                any(self.index.doc_frequency(f, t) for f in ("question", "names", "answer"))
                for t in toks
            )

    def suggest(self, query: str, found: SearchResult | None = None) -> str | None:
        """A corrected query, when a Latin word is unknown, a close glossary term or curated
        English word exists, and the corrected query finds clearly better answers than
        ``found`` (the query's own results, searched when not given)."""
        vocab = self.vocabulary()
        keys = sorted(vocab)
        changed = False
        named: set[str] = set()  # concepts the corrected words name exactly
        out: list[str] = []
        for word in re.split(r"(\s+)", query):
            key = term_key(word) if word.strip() else ""
            if not key.isascii() or len(key) < 4 or key in vocab or self._known(word):
                out.append(word)
                continue
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
            if not close:
                out.append(word)
                continue
            out.append(vocab[close[0]])
            named.update(self.glossary.matcher.exact(vocab[close[0]]))
            changed = True
        if not changed:
            return None
        suggestion = "".join(out)
        if found is None:
            found = self._search(query, 3, None)
        better = self._search(suggestion, 3, None)
        if not better.results:
            return None
        if not found.results:
            return suggestion  # something rather than nothing
        if not better.confident:
            return None
        gain = better.results[0].coverage - found.results[0].coverage
        # a misspelled identifier corrected to a glossary term (LlamaRMSNrom -> LlamaRMSNorm)
        names_term = bool(named) and named <= set(better.concepts)
        if found.confident and gain < SUGGEST_GAIN and not names_term:
            return None
        return suggestion


# What kind of question an entry asks, for choosing the Q&A that best *defines* a concept:
# "what is / how does it work" first, then why / pros and cons / how to, then comparisons,
# then the rest; a question hedged with conditions ("如果…", "在…情况下") is an edge case.
_DEFINES = re.compile(
    r"什么是|是啥|概念|原理|思路|机理|介绍|简述|简单说|解释|讲讲|讲一下|讲解|公式|具体流程|"
    r"工作方式|是如何|是怎么|如何工作|如何实现|怎么实现|如何进行|如何演进|"
    r"what is|what are|how does|how do|explain",
    re.I,
)
_ASPECT = re.compile(
    r"为什么|为何|原因|优点|优势|缺点|不足|局限|作用|好处|用处|影响|问题|如何|怎么|怎样|方法|"
    r"有哪些|哪些|吗|么|是否|能否|可以"
)
_DEFINES_WEAK = re.compile(r"是什么|指什么")
_COMPARES = re.compile(r"区别|不同|差异|相比|比较|对比|关系|vs|versus", re.I)
_EDGE = re.compile(r"如果|假设|情况下|时候|exactly|下列|下面哪")


def question_kind(question: str) -> int:
    """0: defines (what is / how it works), 1: an aspect (why, pros, effects, how to),
    2: compares, 3: anything else; +1 when hedged with conditions (an edge case)."""
    if _COMPARES.search(question):
        kind = 2
    elif _DEFINES.search(question):
        kind = 0
    elif _ASPECT.search(question):
        kind = 1
    elif _DEFINES_WEAK.search(question):
        kind = 0
    else:
        kind = 3
    return kind + (1 if _EDGE.search(question) else 0)


def _closeness(concept: Concept, named: Sequence[str]) -> float:
    """How much of the concept's neighbourhood ``named`` holds: its ``related`` concepts,
    the first (closest) weighing most; the concepts it is covered by do not count."""
    rank = {c: k for k, c in enumerate(x for x in concept.related if x not in concept.covered_by)}
    return sum(1.0 / (rank[c] + 1) for c in set(named) if c in rank)


def about_key(entry: Entry, concept: Concept) -> tuple | None:
    """Where ``entry`` ranks among the Q&As about ``concept`` (smaller is better), or None
    when it is not about it. Pure: it reads the entry's tags and the concept only, never other
    entries, so an index can keep the ranking up to date entry by entry.

    Tiers: the question names the concept (0); the question names a concept it is
    ``covered_by`` (1); only the answer names it (2); only the answer names a covering
    concept (3). Within a tier: answered before unanswered or link-only; for tier 0 the
    question that defines the concept before edge cases and comparisons, the concept first
    among few named; for the others the question closest to the concept's neighbourhood
    (``related``); then source and line."""
    cid = concept.id
    answered = (not entry.has_answer, entry.external)
    kind = question_kind(entry.question)
    where = (entry.source, entry.line)
    if cid in entry.question_concepts:
        place = min(entry.question_concepts.index(cid), 2)
        named = len(entry.question_concepts)
        return (0, *answered, kind, place, named, -_closeness(concept, entry.concepts), *where)
    near = -_closeness(concept, entry.question_concepts)
    covering = [concept.covered_by.index(c) for c in entry.question_concepts
                if c in concept.covered_by]  # fmt: skip
    if covering:
        return (1, *answered, near, min(covering), -_closeness(concept, entry.concepts), kind,
                *where)  # fmt: skip
    if cid in entry.concepts:
        return (2, *answered, near, kind, entry.concepts.index(cid), *where)
    covering = [concept.covered_by.index(c) for c in entry.concepts if c in concept.covered_by]
    if covering:
        return (3, *answered, min(covering), near, -_closeness(concept, entry.concepts), kind,
                *where)  # fmt: skip
    return None


def about_candidates(entry: Entry, glossary: Glossary) -> set[str]:
    """The concepts whose Q&A lists ``entry`` may appear in (for incremental upkeep): those
    it names, and those ``covered_by`` a concept it names."""
    out = set(entry.concepts)
    for cid in entry.concepts:
        out.update(glossary.covering(cid))
    return out


def _rank_by_concept(entries: list[Entry], glossary: Glossary) -> dict[str, list[str]]:
    """Concept -> entry ids, best first, one per group of same questions (see ``about_key``);
    entries of a covering concept stand in only where no question names the concept."""
    keyed: dict[str, list[tuple[tuple, Entry]]] = {}
    for entry in entries:
        for cid in about_candidates(entry, glossary):
            concept = glossary.get(cid)
            key = about_key(entry, concept) if concept is not None else None
            if key is not None:
                keyed.setdefault(cid, []).append((key, entry))
    ranked: dict[str, list[str]] = {}
    for cid, items in keyed.items():
        items.sort(key=lambda x: x[0])
        if items[0][0][0] == 0:  # a question names it: no stand-ins
            items = [x for x in items if x[0][0] in (0, 2)]
        elif items[0][0][0] == 1:  # stand-ins whose question names a covering concept
            items = [x for x in items if x[0][0] in (1, 2)]
        seen: set[str] = set()
        ids: list[str] = []
        for _key, e in items:
            group = e.group or e.id
            if group not in seen:
                seen.add(group)
                ids.append(e.id)
        ranked[cid] = ids
    return ranked


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


def _names_text(entry: Entry, glossary: Glossary) -> str:
    """The names of the concepts the question names (indexed in the names field)."""
    lines: list[str] = []
    for cid in entry.question_concepts:
        concept = glossary.get(cid)
        if concept is not None:
            lines.append(" ; ".join(concept.names()))
    return "\n".join(lines)


__all__ = [
    "Reference",
    "Result",
    "SearchResult",
    "about_candidates",
    "about_key",
    "result_json",
    "tag_entries",
]
