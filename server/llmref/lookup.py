"""The reference: corpus + glossary + index, and the questions the editor and CLI ask of it.

Flow: corpus files -> parse -> glossary tagging -> grouping -> index (cached) -> here.
Nothing here imports pygls or lsprotocol.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import config, normalize
from .cards import CardInput
from .config import Settings
from .corpus.entry import TEXT_LAYOUTS, Entry, result_json
from .corpus.group import group_duplicates
from .corpus.loader import Problem, digests, discover, load_notes
from .glossary import Glossary
from .index import SCHEMA_VERSION, Clause, Progress, SearchIndex
from .snippets import extract as extract_snippets

log = logging.getLogger("llmref.lookup")

PIPELINE_VERSION = "3"  # parse/tag/group behaviour: part of the index key

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


def tag_entries(entries: list[Entry], glossary: Glossary) -> None:
    """Concepts named by each entry (question first), then same-question groups: among
    questions only (a note's sections are named by heading paths that share prefixes, and
    the parts of a split section are near-identical; none of them is "the same question")."""
    for entry in entries:
        in_question = glossary.concepts_in(entry.question)
        in_answer = glossary.concepts_in(f"{entry.detail}\n{entry.answer}")
        entry.question_concepts = in_question
        entry.concepts = in_question + [c for c in in_answer if c not in in_question]
    questions = [e for e in entries if e.layout not in TEXT_LAYOUTS]
    group_duplicates(questions, [frozenset(e.question_concepts) for e in questions])


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
        self._vocab: list[str] | None = None
        self._lock = threading.Lock()
        self._about = _rank_by_concept(entries)
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
        with self._lock:  # one Whoosh searcher, shared
            hits = self.index.search(clauses, limit=max(limit * 3, 30))
        seen_groups: set[str] = set()
        for hit in hits:
            entry = self.entries.get(hit.id)
            if entry is None:
                continue
            if entry.group is not None:
                if entry.group in seen_groups:
                    continue
                seen_groups.add(entry.group)
            result.results.append(Result(entry, hit.score))
            if len(result.results) >= limit:
                break
        if not result.concepts:
            result.suggestion = self.suggest(query)
            if result.suggestion and not result.results:
                # nothing for the misspelling: answer for the correction
                corrected = self.search(result.suggestion, limit, concepts=concepts)
                result.results, result.concepts = corrected.results, corrected.concepts
                result.corrected = True
        return result

    # --- did you mean ----------------------------------------------------------------------------

    def vocabulary(self) -> list[str]:
        """Latin words of the corpus and keys of the glossary (built once, on demand)."""
        if self._vocab is None:
            with self._lock:
                words = {w for w in self.index.vocabulary() if w.isascii() and len(w) > 2}
            for key in self.glossary.matcher.keys:
                if key.isascii():
                    words.add(key)
            self._vocab = sorted(words)
        return self._vocab

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


def _rank_by_concept(entries: list[Entry]) -> dict[str, list[str]]:
    in_question: dict[str, list[tuple[tuple, Entry]]] = {}
    in_answer: dict[str, list[tuple[tuple, Entry]]] = {}
    for n, e in enumerate(entries):
        quality = (not e.has_answer, e.external)
        for c in e.question_concepts:
            in_question.setdefault(c, []).append(((*quality, len(e.question_concepts), n), e))
        for k, c in enumerate(x for x in e.concepts if x not in e.question_concepts):
            in_answer.setdefault(c, []).append(((*quality, k, n), e))
    ranked: dict[str, list[str]] = {}
    for c in set(in_question) | set(in_answer):
        seen: set[str] = set()
        ids: list[str] = []
        for table in (in_question, in_answer):
            for _key, e in sorted(table.get(c, []), key=lambda x: x[0]):
                key = e.group or e.id
                if key not in seen:
                    seen.add(key)
                    ids.append(e.id)
        ranked[c] = ids
    return ranked


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


__all__ = ["Reference", "Result", "SearchResult", "result_json", "tag_entries"]
