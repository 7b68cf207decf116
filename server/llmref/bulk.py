"""Term-at-a-time scoring of a ``Clause`` plan over a Whoosh index: what big indexes use.

Whoosh matches a query document at a time through a tree of matchers, in pure Python; at
100k entries a plain-English query (20 clauses, 70 terms, some in a fifth of the entries)
walks that tree ~100k times and takes 0.2-1 s. Here every query term's postings are read in
bulk, block by block, and scored with one loop per term; the plan is then combined with
dictionaries. The scores are Whoosh's own (BM25F, K1 1.2, B 0.75, its idf, its byte-quantized
field lengths; any-of and max clauses, boosts as ``index._to_whoosh`` sets them): a test checks
them against Whoosh's matchers on every query set.

Phrases are the one thing postings without positions cannot decide: a phrase counts as
all-of first (an upper bound), then Whoosh checks the phrase on the best candidates, and the
candidates are widened until no unchecked entry could still reach the results.

Reads Whoosh 2.7's block format through its matcher's block methods (whoosh-reloaded is
pinned exactly); any other matcher is read one posting at a time. Core: no pygls."""

from __future__ import annotations

import heapq
import io
import struct
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from math import log
from typing import Any, Protocol

from whoosh import query as wq
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3LeafMatcher, W3TermsReader
from whoosh.matching import ReadTooFar
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.util.numeric import byte_to_length

K1, B = 1.2, 0.75  # whoosh.scoring.BM25F's defaults, which index.SearchIndex uses
RECENT_POSTINGS = 2_000_000  # scored postings kept for repeated terms (12 bytes each)
RECENT_MIN = 32  # what a term's entry costs at the least, in postings

LeafKey = tuple[str, str]  # (field, term)
_INT = struct.Struct("!i")  # a block's length (negative: the last block)


@dataclass
class _Alt:
    coef: float
    mode: str  # any | all | phrase
    leaves: list[LeafKey]
    phrase: wq.Query | None = None  # mode phrase: what Whoosh checks
    scores: dict[int, float] = field(default_factory=dict)


@dataclass
class _Clause:
    is_max: bool
    alts: list[_Alt]


def compile_plan(clauses: Sequence) -> list[_Clause]:
    """The plan as ``index._to_whoosh`` builds it for Whoosh (same alternatives, same boosts)."""
    out: list[_Clause] = []
    for c in clauses:
        if c.mode == "max":
            alts = [a for a in (_alt(x, x.boost) for x in c.alternatives) if a]
            if not alts:
                continue
            if len(alts) == 1:  # Whoosh: the one alternative takes the clause's boost
                alts[0].coef = float(c.boost)
                out.append(_Clause(False, alts))
            else:
                for a in alts:
                    a.coef = float(c.boost) * a.coef
                out.append(_Clause(True, alts))
        else:
            alt = _alt(c, c.boost)
            if alt is not None:
                out.append(_Clause(False, [alt]))
    return out


def _alt(c, boost: float) -> _Alt | None:
    from .index import match_mode

    how = None if c.mode == "max" else match_mode(c)  # max clauses are not nested
    if how is None:
        return None
    mode, words = how
    phrase = wq.Phrase(c.field, words, slop=c.slop) if mode == "phrase" else None
    return _Alt(float(boost), mode, [(c.field, t) for t in words], phrase)


class BulkScorer:
    """Scores plans over one open searcher (built again when the searcher is).

    The arithmetic runs on numpy arrays when numpy imports (pip installs), on dictionaries
    otherwise (the VS Code extension's vendored Python): same scores, same order; numpy is
    what keeps a 70-word question at 100k entries within its budget."""

    def __init__(self, searcher) -> None:
        self.searcher = searcher
        subs = [(searcher, 0)] if searcher.is_atomic() else list(searcher.subsearchers)
        self.leaves = subs
        self.size = searcher.reader().doc_count_all()
        self.ops: _Ops = _array_ops() or _DictOps()
        self._norms: dict[tuple[int, str], Sequence[float]] = {}
        self._deleted: dict[int, object] = {}
        self._avg: dict[str, float] = {}
        # scored postings of recent terms, least recently used first: the words a session
        # repeats ("模型", "attention", a concept's names) are read once
        self._recent: OrderedDict[LeafKey, tuple[int, object]] = OrderedDict()
        self._recent_size = 0

    # --- postings ---------------------------------------------------------------------------

    def _norm(self, i: int, name: str):
        """K1 * ((1 - B) + B * length / average) of every document of leaf ``i``'s field."""
        key = (i, name)
        got = self._norms.get(key)
        if got is not None:
            return got
        if name not in self._avg:
            self._avg[name] = self.searcher.avg_field_length(name) or 1
        avgfl = self._avg[name]
        reader = self.leaves[i][0].reader()
        raw = _length_bytes(reader, name, reader.doc_count_all())
        table = [K1 * ((1 - B) + B * (byte_to_length(b) or 1) / avgfl) for b in range(256)]
        norms = self._norms[key] = self.ops.norms(table, raw)
        return norms

    def leaf_scores(self, name: str, term: str):
        """BM25F score of ``term`` in field ``name`` for every document holding it (the ops'
        sparse scores: a dict, or sorted docnums and their scores)."""
        key = (name, term)
        got = self._recent.get(key)
        if got is not None:
            self._recent.move_to_end(key)
            return self.ops.thaw(got[1])
        out = self._read_scores(name, term)
        # every term is kept, absent ones too (a question's unknown words): each counts as
        # at least RECENT_MIN postings for what it costs to keep
        size = max(self.ops.count(out), RECENT_MIN)
        self._recent[key] = (size, self.ops.freeze(out))
        self._recent_size += size
        while self._recent_size > RECENT_POSTINGS and len(self._recent) > 1:
            _k, (old, _v) = self._recent.popitem(last=False)
            self._recent_size -= old
        return out

    def _read_scores(self, name: str, term: str):
        ops = self.ops
        found = []
        df = 0
        for i, (sub, offset) in enumerate(self.leaves):
            reader = sub.reader()
            got = _term(reader, name, term)
            if got is not None:
                df += got[0]
                found.append((i, offset, reader, got[1]))
        if not found:
            return ops.empty()
        idf = log(self.size / (df + 1)) + 1  # Whoosh's (WeightingModel.idf), from our reads
        parts = []
        for i, offset, reader, matcher in found:
            got = ops.postings(matcher)
            if got is None:
                continue
            ids, weights = got
            deleted = None
            if reader.has_deletions():
                deleted = self._deleted.get(i)
                if deleted is None:
                    deleted = self._deleted[i] = ops.deleted(
                        reader.deleted_docs_set, reader.doc_count_all()
                    )
            parts.append(ops.score(ids, weights, idf, self._norm(i, name), offset, deleted))
        return ops.join(parts)

    # --- plans ------------------------------------------------------------------------------

    def search(
        self, plan: list[_Clause], limit: int, *, terms: bool = False
    ) -> list[tuple[int, float, frozenset[LeafKey]]]:
        """The best ``limit`` documents: (docnum, score, the query's terms they hold)."""
        ops = self.ops
        cache: dict[LeafKey, object] = {}

        def leaf(key: LeafKey):
            got = cache.get(key)
            if got is None:
                got = cache[key] = self.leaf_scores(*key)
            return got

        phrases: list[_Alt] = []
        total = ops.total(self.size)
        for clause in plan:
            for alt in clause.alts:
                alt.scores = ops.combine(alt.mode, [leaf(k) for k in alt.leaves])
                if alt.mode == "phrase" and ops.count(alt.scores):
                    phrases.append(alt)
            if clause.is_max:
                ops.add_max(total, [(a.coef, a.scores) for a in clause.alts])
            else:
                alt = clause.alts[0]
                ops.add(total, alt.scores, alt.coef)
        hits = ops.hits(total)
        if not hits:
            return []

        failed: set[tuple[int, int]] = set()  # (id(alt), docnum): a phrase that does not hold
        checked: set[int] = set()
        want = max(limit, 1)
        k = want * 2 + 10
        while True:
            top = ops.top(total, k)  # (docnum, score), best first, ties by docnum
            fresh = [d for d, _s in top if d not in checked]
            if phrases and fresh:
                for alt in phrases:
                    docs = ops.members(alt.scores, fresh)
                    if docs:
                        held = self._phrase_holds(alt.phrase, docs)
                        failed.update((id(alt), d) for d in docs if d not in held)
                for d in fresh:
                    checked.add(d)
                    if any((id(a), d) in failed for a in phrases):
                        ops.set(total, d, _rescore(ops, plan, d, failed))
            ranked = sorted(
                ((ops.get(total, d), d) for d, _s in top), key=lambda sd: (-sd[0], sd[1])
            )
            ranked = ranked[:want]
            if not phrases or len(top) == hits or len(top) < k:
                break
            floor = top[-1][1]  # no document outside ``top`` scores more than this
            if len(ranked) == want and ranked[-1][0] >= floor:
                break
            k *= 4
        docs = [d for _s, d in ranked]
        holds: dict[int, set[LeafKey]] = {d: set() for d in docs}
        if terms:
            for key, scores in cache.items():
                for d in ops.members(scores, docs):
                    holds[d].add(key)
        return [(d, score, frozenset(holds[d])) for score, d in ranked]

    def _phrase_holds(self, phrase: wq.Query, docs: Iterable[int]) -> set[int]:
        held: set[int] = set()
        ordered = sorted(docs)
        for sub, offset in self.leaves:
            size = sub.doc_count_all()
            local = [d - offset for d in ordered if offset <= d < offset + size]
            if not local:
                continue
            matcher = phrase.matcher(sub, sub.context(weighting=self.searcher.weighting))
            for d in local:
                if not matcher.is_active():
                    break
                if matcher.id() < d:
                    try:
                        matcher.skip_to(d)
                    except ReadTooFar:
                        break
                    if not matcher.is_active():
                        break
                if matcher.id() == d:
                    held.add(d + offset)
        return held


def _rescore(ops: _Ops, plan: list[_Clause], d: int, failed: set[tuple[int, int]]) -> float:
    """Document ``d``'s score without the phrases that do not hold in it."""
    total = 0.0
    for clause in plan:
        values = []
        for a in clause.alts:
            v = ops.value(a.scores, d)
            if v is not None and (id(a), d) not in failed:
                values.append(a.coef * v)
        if values:
            total += max(values) if clause.is_max else values[0]
    return total


# --- the arithmetic: dictionaries, or numpy arrays --------------------------------------------


class _Ops(Protocol):
    """Sparse scores (docnum -> score) and a dense total, in one representation."""

    def empty(self): ...
    def postings(self, matcher): ...
    def norms(self, table: list[float], raw: bytes): ...
    def deleted(self, docs: Iterable[int], size: int): ...
    def score(self, ids, weights, idf: float, norm, offset: int, deleted): ...
    def join(self, parts: list): ...
    def count(self, scores) -> int: ...
    def freeze(self, scores): ...
    def thaw(self, frozen): ...
    def combine(self, mode: str, scores: list): ...
    def total(self, size: int): ...
    def add(self, total, scores, coef: float) -> None: ...
    def add_max(self, total, alts: list[tuple[float, object]]) -> None: ...
    def hits(self, total) -> int: ...
    def top(self, total, k: int) -> list[tuple[int, float]]: ...
    def get(self, total, d: int) -> float: ...
    def set(self, total, d: int, value: float) -> None: ...
    def value(self, scores, d: int) -> float | None: ...
    def members(self, scores, docs: Sequence[int]) -> list[int]: ...


class _DictOps:
    """Plain Python: scores are dicts, the total a dict of the documents that matched."""

    def empty(self):
        return {}

    def postings(self, matcher):
        ids, weights = _matcher_postings(matcher)
        return (ids, weights) if ids else None

    def norms(self, table, raw):
        return array("d", [table[b] for b in raw])

    def deleted(self, docs, size):
        return frozenset(docs)

    def score(self, ids, weights, idf, norm, offset, deleted):
        k1p1 = K1 + 1
        if offset == 0 and not deleted:
            return {
                d: idf * ((w * k1p1) / (w + norm[d])) for d, w in zip(ids, weights, strict=True)
            }
        deleted = deleted or ()
        return {
            d + offset: idf * ((w * k1p1) / (w + norm[d]))
            for d, w in zip(ids, weights, strict=True)
            if d not in deleted
        }

    def join(self, parts):
        if len(parts) == 1:
            return parts[0]
        out: dict[int, float] = {}
        for part in parts:
            out.update(part)
        return out

    def count(self, scores):
        return len(scores)

    def freeze(self, scores):  # 12 bytes a posting instead of a dict's ~100
        return (array("i", scores.keys()), array("d", scores.values()))

    def thaw(self, frozen):
        return dict(zip(frozen[0], frozen[1], strict=True))

    def combine(self, mode, scores):
        if not scores:
            return {}
        if len(scores) == 1:
            return scores[0]
        if mode == "any":
            out = dict(scores[0])
            for more in scores[1:]:
                for d, v in more.items():
                    out[d] = out.get(d, 0.0) + v
            return out
        smallest = min(scores, key=len)
        both: dict[int, float] = {}
        for d in smallest:
            if all(d in s for s in scores):
                t = 0.0
                for leaf in scores:
                    t += leaf[d]
                both[d] = t
        return both

    def total(self, size):
        return {}

    def add(self, total, scores, coef):
        get = total.get
        if coef == 1.0:
            for d, s in scores.items():
                total[d] = get(d, 0.0) + s
        else:
            for d, s in scores.items():
                total[d] = get(d, 0.0) + coef * s

    def add_max(self, total, alts):
        best: dict[int, float] = {}
        for coef, scores in alts:
            for d, s in scores.items():
                v = coef * s
                if v > best.get(d, -1.0):
                    best[d] = v
        self.add(total, best, 1.0)

    def hits(self, total):
        return len(total)

    def top(self, total, k):
        return heapq.nlargest(k, total.items(), key=lambda kv: (kv[1], -kv[0]))

    def get(self, total, d):
        return total[d]

    def set(self, total, d, value):
        total[d] = value

    def value(self, scores, d):
        return scores.get(d)

    def members(self, scores, docs):
        return [d for d in docs if d in scores]


def _array_ops() -> _Ops | None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return None
    return _ArrayOps()


class _ArrayOps:
    """numpy: scores are (sorted docnums, scores) pairs, the total a dense score array and a
    mask of the documents that matched."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self._none = (np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64))

    def empty(self):
        return self._none

    def postings(self, matcher):
        got = _posting_arrays(self.np, matcher)
        return got if len(got[0]) else None

    def norms(self, table, raw):
        np = self.np
        return np.asarray(table, dtype=np.float64)[np.frombuffer(raw, dtype=np.uint8)]

    def deleted(self, docs, size):
        mask = self.np.zeros(size, dtype=bool)
        mask[list(docs)] = True
        return mask

    def score(self, ids, weights, idf, norm, offset, deleted):
        d, w = ids, weights
        if deleted is not None:
            keep = ~deleted[d]
            d, w = d[keep], w[keep]
        vals = idf * ((w * (K1 + 1)) / (w + norm[d]))
        return (d + offset if offset else d), vals

    def join(self, parts):
        if not parts:
            return self._none
        if len(parts) == 1:
            return parts[0]
        np = self.np
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def count(self, scores):
        return len(scores[0])

    def freeze(self, scores):
        return scores

    def thaw(self, frozen):
        return frozen

    def combine(self, mode, scores):
        np = self.np
        if not scores:
            return self._none
        if len(scores) == 1:
            return scores[0]
        if mode == "any":
            ids = np.concatenate([s[0] for s in scores])
            vals = np.concatenate([s[1] for s in scores])
            uniq, where = np.unique(ids, return_inverse=True)
            return uniq, np.bincount(where, weights=vals, minlength=len(uniq))
        common = scores[0][0]
        for s in scores[1:]:
            common = np.intersect1d(common, s[0], assume_unique=True)
        total = np.zeros(len(common), dtype=np.float64)
        for ids, vals in scores:
            total += vals[np.searchsorted(ids, common)]
        return common, total

    def total(self, size):
        np = self.np
        return np.zeros(size, dtype=np.float64), np.zeros(size, dtype=bool)

    def add(self, total, scores, coef):
        ids, vals = scores
        if not len(ids):
            return
        values, hit = total
        values[ids] += vals if coef == 1.0 else coef * vals
        hit[ids] = True

    def add_max(self, total, alts):
        np = self.np
        best = np.full(len(total[0]), -1.0)
        for coef, (ids, vals) in alts:
            if len(ids):
                best[ids] = np.maximum(best[ids], coef * vals)
        ids = np.flatnonzero(best != -1.0)
        self.add(total, (ids, best[ids]), 1.0)

    def hits(self, total):
        return int(self.np.count_nonzero(total[1]))

    def top(self, total, k):
        np = self.np
        values, hit = total
        docs = np.flatnonzero(hit)
        scores = values[docs]
        if len(docs) > k:
            kth = np.partition(scores, len(docs) - k)[len(docs) - k]
            keep = scores >= kth
            docs, scores = docs[keep], scores[keep]
        order = np.lexsort((docs, -scores))[:k]
        return list(zip(docs[order].tolist(), scores[order].tolist(), strict=True))

    def get(self, total, d):
        return float(total[0][d])

    def set(self, total, d, value):
        total[0][d] = value

    def value(self, scores, d):
        ids, vals = scores
        i = int(self.np.searchsorted(ids, d))
        if i < len(ids) and ids[i] == d:
            return float(vals[i])
        return None

    def members(self, scores, docs):
        np = self.np
        if not docs:
            return []
        ids = scores[0]
        if not len(ids):
            return []
        wanted = np.asarray(docs, dtype=np.int64)
        where = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
        return wanted[ids[where] == wanted].tolist()


def _matcher(reader, name: str, term: str):
    """A term's posting matcher in one segment, deletions not filtered (the caller does)."""
    try:
        matcher = reader.postings(name, term)
    except TermNotFound:
        return None
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child
    return matcher


def _term(reader, name: str, term: str):
    """(document frequency, posting matcher) of a term in one segment, None when absent:
    its term info looked up once (``reader.postings`` and ``searcher.idf`` each would)."""
    terms = getattr(reader, "_terms", None)
    if not isinstance(terms, W3TermsReader) or name not in reader.schema:
        df = reader.doc_frequency(name, term) if name in reader.schema else 0
        matcher = _matcher(reader, name, term) if df else None
        return (df, matcher) if matcher is not None else None
    tbytes = reader._text_to_bytes(name, term)
    try:
        info = terms.term_info(name, tbytes)
    except TermNotFound:
        return None
    matcher = terms._codec.postings_reader(
        terms._postfile, info, reader.schema[name].format, term=(name, tbytes)
    )
    return info.doc_frequency(), matcher


def _in_blocks(matcher) -> bool:
    return isinstance(matcher, W3LeafMatcher) and not matcher._byteids


def _postings(reader, name: str, term: str) -> tuple[Sequence[int], Sequence[float]]:
    """Every posting (docnum, weight) of a term in one segment, deleted documents included."""
    matcher = _matcher(reader, name, term)
    return ((), ()) if matcher is None else _matcher_postings(matcher)


def _matcher_postings(matcher) -> tuple[list[int], list[float]]:
    ids: list[int] = []
    weights: list[float] = []
    if _in_blocks(matcher):
        for deltas, got, count in _blocks(matcher):
            ids.extend(accumulate(deltas))
            if got is None or isinstance(got, float):
                weights.extend([1.0 if got is None else got] * count)
            else:
                weights.extend(got)
    else:
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            matcher.next()
    return ids, weights


def _posting_arrays(np, matcher):
    """``_matcher_postings`` as numpy arrays (int32 docnums, float64 weights); the blocks'
    arrays (``index._pickle_blocks_with_protocol_4``) are read without a copy."""
    if not _in_blocks(matcher):
        ids, weights = _matcher_postings(matcher)
        return np.asarray(ids, dtype=np.int32), np.asarray(weights, dtype=np.float64)
    id_parts = []
    weight_parts = []
    for deltas, got, count in _blocks(matcher):
        if isinstance(deltas, array):
            raw = np.frombuffer(deltas, dtype=f"u{deltas.itemsize}")
        else:
            raw = np.asarray(deltas, dtype=np.int64)
        id_parts.append(np.cumsum(raw, dtype=np.int32))
        if got is None or isinstance(got, float):
            weight_parts.append(np.full(count, 1.0 if got is None else got))
        elif isinstance(got, array) and got.typecode == "d":
            weight_parts.append(np.frombuffer(got, dtype=np.float64))
        else:
            weight_parts.append(np.asarray(got, dtype=np.float64))
    if len(id_parts) == 1:
        return id_parts[0], weight_parts[0]
    return np.concatenate(id_parts), np.concatenate(weight_parts)


def _blocks(matcher: W3LeafMatcher) -> Iterable[tuple[Sequence[int], Any, int]]:
    """Every block of a Whoosh 2.7 posting list as (id deltas, weights, count), read in one
    go: the list's bytes at once, each block's header and data unpickled (through the
    index's safe unpickler). What ``W3LeafMatcher`` reads, without a seek, a read and a
    Python generator per step. Weights: a sequence, or None (all 1.0), or one float for all."""
    from .index import _safe_load, _safe_loads

    length = matcher._length
    if isinstance(length, tuple):  # Whoosh's term info unpacks it without the [0]
        length = length[0]
    raw = matcher._postfile.get(matcher._startoffset, length)
    if raw[:4] != WHOOSH3_HEADER_MAGIC:
        raise Exception(f"Block tag error {raw[:4]!r}")
    stream = io.BytesIO(raw)
    pos = 4
    end = len(raw)
    while pos < end:
        (size,) = _INT.unpack_from(raw, pos)
        last = size < 0
        nextpos = pos + 4 + abs(size)
        stream.seek(pos + 4)
        count, _maxid, _maxweight, compression, _mn, _mx = _safe_load(stream)
        data = raw[stream.tell() : nextpos]
        if compression:
            data = zlib.decompress(data)
        block = _safe_loads(data)
        yield block[0], block[1], count
        pos = nextpos
        if last:
            break


def _length_bytes(reader, name: str, count: int) -> bytes:
    """The byte-quantized length of field ``name`` of every document of a segment."""
    from .index import length_column

    perdoc = getattr(reader, "_perdoc", None)
    raw = length_column(perdoc, name) if hasattr(perdoc, "_cached_reader") else None
    raw = (raw or b"")[:count]
    return raw + bytes(count - len(raw))


__all__ = ["BulkScorer", "compile_plan"]
