"""The on-disk full-text index (Whoosh), behind a small interface of our own.

``SearchIndex.open_or_build`` keeps one index per *fingerprint* (corpus contents + glossary +
schema/analyzer/segmenter versions) under the user's cache dir. An index is built in a
temporary directory and renamed into place, so a crash mid-build never leaves a half index;
an index that fails to open or disagrees with its own metadata is removed and rebuilt.
Whoosh keeps its schema as a pickle: we only ever open directories we built, in our cache.

Queries arrive as engine-neutral ``Clause`` lists (see lookup.py), so another engine could
sit behind ``SearchIndex`` later.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import ID, KEYWORD, TEXT, Schema
from whoosh.scoring import BM25F

from . import normalize
from .corpus.entry import Entry

log = logging.getLogger("llmref.index")

SCHEMA_VERSION = "3"
META = "llmref-meta.json"
ENTRIES = "entries.json"
KEEP_INDEXES = 4  # other fingerprints kept in the cache (several corpus configurations)

Progress = Callable[[int, int], None]


class LlmrefTokenizer(Tokenizer):
    """Whoosh adapter for normalize.tokens: the one normalization of index and queries."""

    def __call__(  # type: ignore[override]
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        tokenize=True,
        mode="",
        **kwargs,
    ):
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = t.text = value
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar, t.endchar = start_char, start_char + len(value)
            yield t
            return
        for tok in normalize.tokens(value, subwords=True):
            t.text = tok.text
            t.boost = 1.0
            t.stopped = False
            if keeporiginal:
                t.original = tok.text
            if positions:
                t.pos = start_pos + tok.pos
            if chars:
                t.startchar, t.endchar = start_char + tok.start, start_char + tok.end
            yield t


def make_schema() -> Schema:
    analyzer = LlmrefTokenizer()
    return Schema(
        id=ID(stored=True, unique=True),
        question=TEXT(analyzer=analyzer, phrase=True),
        names=TEXT(analyzer=analyzer, phrase=True),
        concepts=KEYWORD(scorable=True),  # named by the question
        answer_concepts=KEYWORD(scorable=True),  # named by the answer only
        answer=TEXT(analyzer=analyzer, phrase=True),
        source=ID(stored=True),
    )


@dataclass(frozen=True)
class Clause:
    """One part of a query: terms of a field, combined as any / all / phrase, boosted."""

    field: str
    terms: tuple[str, ...]
    mode: str = "any"  # any | all | phrase | max (the best of ``alternatives`` counts)
    boost: float = 1.0
    slop: int = 1
    alternatives: tuple[Clause, ...] = ()  # mode "max": the ways to write one query word


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    # (field, term) pairs of the query that this document holds (when asked for)
    terms: frozenset[tuple[str, str]] = frozenset()


class SearchIndex:
    """An opened index directory."""

    def __init__(self, path: Path, ix: whoosh_index.Index, meta: dict) -> None:
        self.path = path
        self._ix = ix
        self.meta = meta
        self._searcher = None

    # --- building and opening ------------------------------------------------------------

    @classmethod
    def open_or_build(
        cls,
        cache_root: Path,
        fingerprint: str,
        build_entries: Callable[[], tuple[list[Entry], dict]],
        names: Callable[[Entry], str],
        *,
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> tuple[SearchIndex, list[Entry], bool]:
        """(index, entries, built) for this fingerprint, building only when needed.

        ``build_entries`` returns the entries and extra metadata kept with the index.
        """
        target = cache_root / f"ix-{fingerprint[:20]}"
        if rebuild and target.exists():
            shutil.rmtree(target, ignore_errors=True)
        if target.exists():
            try:
                opened = cls._open(target, fingerprint)
                return opened[0], opened[1], False
            except Exception as exc:  # corrupt, half-written by another version, …
                log.warning("index at %s is unusable (%s); rebuilding", target, exc)
                shutil.rmtree(target, ignore_errors=True)
        entries, extra = build_entries()
        cls._build(cache_root, target, fingerprint, entries, names, extra, progress)
        cls._prune(cache_root, keep=target)
        index, loaded = cls._open(target, fingerprint)
        return index, loaded, True

    @classmethod
    def _open(cls, path: Path, fingerprint: str) -> tuple[SearchIndex, list[Entry]]:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fingerprint or meta.get("schema") != SCHEMA_VERSION:
            raise ValueError("metadata does not match")
        entries = [
            Entry.from_dict(d) for d in json.loads((path / ENTRIES).read_text(encoding="utf-8"))
        ]
        ix = whoosh_index.open_dir(str(path))
        if ix.doc_count() != meta["entries"] or len(entries) != meta["entries"]:
            raise ValueError(f"{ix.doc_count()} documents, expected {meta['entries']}")
        return cls(path, ix, meta), entries

    @classmethod
    def _build(
        cls,
        cache_root: Path,
        target: Path,
        fingerprint: str,
        entries: list[Entry],
        names: Callable[[Entry], str],
        extra: dict,
        progress: Progress | None,
    ) -> None:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="building-", dir=cache_root))
        started = time.perf_counter()
        try:
            ix = whoosh_index.create_in(str(tmp), make_schema())
            big = len(entries) > 3000
            writer = ix.writer(timeout=30.0, limitmb=256, procs=2 if big else 1, multisegment=big)
            try:
                for n, doc in enumerate(entries, 1):
                    writer.add_document(**_document(doc, names(doc)))
                    if progress is not None and (n % 25 == 0 or n == len(entries)):
                        progress(n, len(entries))
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
            ix.close()
            (tmp / ENTRIES).write_text(
                json.dumps([e.to_dict() for e in entries], ensure_ascii=False), encoding="utf-8"
            )
            meta = {
                "fingerprint": fingerprint,
                "schema": SCHEMA_VERSION,
                "entries": len(entries),
                "built": time.time(),
                "seconds": round(time.perf_counter() - started, 3),
                "extra": extra,
            }
            # the metadata is written last: a directory without it is never opened
            (tmp / META).write_text(json.dumps(meta), encoding="utf-8")
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.exists():  # not a lost race with another builder
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("built index of %d entries in %.2fs at %s", len(entries), meta["seconds"], target)

    @staticmethod
    def _prune(cache_root: Path, keep: Path) -> None:
        """Remove stale builds and all but the most recent few indexes."""
        now = time.time()
        others = []
        for child in cache_root.iterdir():
            if child == keep or not child.is_dir():
                continue
            if child.name.startswith("building-"):
                if now - child.stat().st_mtime > 3600:  # a crashed build
                    shutil.rmtree(child, ignore_errors=True)
            elif child.name.startswith("ix-"):
                others.append(child)
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in others[KEEP_INDEXES - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)

    # --- querying ---------------------------------------------------------------------------

    def _get_searcher(self):
        if self._searcher is None:
            self._searcher = self._ix.searcher(weighting=BM25F())
        return self._searcher

    def search(
        self, clauses: Sequence[Clause], limit: int = 10, *, terms: bool = False
    ) -> list[Hit]:
        """Ranked hits for the disjunction of the clauses (scores add up); ``terms``: with
        the query terms each hit holds."""
        parts = [q for q in (_to_whoosh(c) for c in clauses) if q is not None]
        if not parts:
            return []
        results = self._get_searcher().search(wq.Or(parts), limit=limit, terms=terms)
        if not terms:
            return [Hit(r["id"], float(r.score)) for r in results]
        return [Hit(r["id"], float(r.score), _matched(r)) for r in results]

    def doc_frequency(self, field: str, term: str) -> int:
        """How many documents hold ``term`` in ``field`` (0 for an unknown term)."""
        return int(self._get_searcher().reader().doc_frequency(field, term))

    def doc_count(self) -> int:
        """Documents in the index, from the open searcher (the directory may be rebuilt)."""
        return int(self._get_searcher().reader().doc_count())

    def vocabulary(self, fields: Iterable[str] = ("question", "names", "answer")) -> set[str]:
        """All indexed terms of the fields (for did-you-mean)."""
        reader = self._get_searcher().reader()
        words: set[str] = set()
        for name in fields:
            for term in reader.lexicon(name):
                words.add(term.decode("utf-8") if isinstance(term, bytes) else term)
        return words

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        self._ix.close()


def _matched(hit) -> frozenset[tuple[str, str]]:
    return frozenset(
        (name, text.decode("utf-8") if isinstance(text, bytes) else text)
        for name, text in (hit.matched_terms() or ())
    )


def _document(entry: Entry, names: str) -> dict[str, str]:
    return {
        "id": entry.id,
        "question": entry.question,
        "names": names,
        "concepts": " ".join(entry.question_concepts),
        "answer_concepts": " ".join(c for c in entry.concepts if c not in entry.question_concepts),
        "answer": "\n".join(x for x in (entry.detail, entry.answer) if x),
        "source": entry.source,
    }


def _to_whoosh(clause: Clause) -> wq.Query | None:
    if clause.mode == "max":
        subs = [q for q in (_to_whoosh(a) for a in clause.alternatives) if q is not None]
        if not subs:
            return None
        best: wq.Query = subs[0] if len(subs) == 1 else wq.DisjunctionMax(subs)
        best.boost = clause.boost
        return best
    terms = [t for t in clause.terms if t]
    if not terms:
        return None
    if clause.field in ("concepts", "answer_concepts") or len(terms) == 1 or clause.mode == "any":
        subs = [wq.Term(clause.field, t) for t in dict.fromkeys(terms)]
        q: wq.Query = subs[0] if len(subs) == 1 else wq.Or(subs)
    elif clause.mode == "all":
        q = wq.And([wq.Term(clause.field, t) for t in dict.fromkeys(terms)])
    else:
        q = wq.Phrase(clause.field, terms, slop=clause.slop)
    q.boost = clause.boost
    return q
