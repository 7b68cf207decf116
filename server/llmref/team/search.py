"""The engine-neutral ``Clause`` plan (lookup.py) on PostgreSQL.

The plan is compiled into arrays (never into SQL text): the distinct (field, term) *slots*,
the *alternatives* (a clause's ways to match: any / all / phrase over terms of one field,
with a tsquery for phrases), their *leaves* (one per term occurrence) and the *clauses*
(boost; "max": the best alternative counts). A search scores exactly what
``index._to_whoosh`` asks Whoosh to score, with Whoosh's BM25F (K1 1.2, B 0.75,
idf = ln(N / (df + 1)) + 1, byte-quantized field lengths), in two round trips:

1. one statement: the corpus statistics of the plan's slots (document frequencies, field
   lengths, generation), and the candidates: for every slot its best
   ``k`` postings by impact (BM25's tf part: the posting list order), weighted by the
   slot's idf and boosts and summed per entry; the ``m`` entries with the highest sums come
   back with their field lengths, their term frequencies of every query term and the
   phrase alternatives checked on their tsvector (``<->``). A term in at most ``k`` entries
   had its whole list read: its frequencies come from the postings (one more index range
   scan per such term). A *cut* slot is one whose list was not read whole: its term is in
   more than ``k`` entries; the weakest of those (*negligible*: their idf x boosts add up
   to under ``NEGLIGIBLE`` of the strongest slot's) are not read at all: they can only
   decide near ties for a candidate's place, and their long lists cost the most. A
   candidate may hold a cut slot's term in a posting the first pass did not read, so its
   frequency comes from the candidate's ``entry_terms`` row (a binary search,
   ``width_bucket``, in its sorted term ids per cut slot).
   This is where the result can differ from Whoosh's: an entry whose postings all lie past
   the first ``k`` of their lists or in negligible slots is never considered (exact when
   every query term is in <= k entries);
2. exact scores of the candidates here (``score``: plain arithmetic on a few hundred rows),
   then the ``r`` best entries' data and the query's (field, term) pairs they hold
   (``Hit.terms``, what the re-ranker's coverage counts).

Scoring in the client keeps the statements to what PostgreSQL does well (index range scans,
one aggregate, one row per candidate) and their plans simple; an earlier version scored in SQL with
a dozen CTEs whose row estimates PostgreSQL could not know, and its join orders cost more
than the scoring itself. Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..corpus.entry import Entry
from ..index import Clause, Hit, match_mode
from .docs import FIELD_ID, FIELDS, K1, LABEL, B, idf, impact

DEFAULT_K = 1500  # postings read per query term (best first)
DEFAULT_M = 300  # candidates scored exactly
# the weakest slots with more than k postings, together adding at most this share of what the
# strongest slot can (idf x boosts), are not read in the candidate pass (their frequencies
# come from entry_terms, as any cut slot's)
NEGLIGIBLE = 0.05


def _quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass
class Compiled:
    slots: list[tuple[int, str]] = field(default_factory=list)  # (field id, term)
    leaf_clause: list[int] = field(default_factory=list)
    leaf_alt: list[int] = field(default_factory=list)
    leaf_slot: list[int] = field(default_factory=list)
    alt_clause: list[int] = field(default_factory=list)
    alt_mode: list[str] = field(default_factory=list)  # any | all | phrase
    alt_boost: list[float] = field(default_factory=list)
    alt_query: list[str | None] = field(default_factory=list)  # tsquery (phrase)
    clause_boost: list[float] = field(default_factory=list)
    clause_max: list[bool] = field(default_factory=list)
    clause_prune: list[bool] = field(default_factory=list)
    _slot_ids: dict[tuple[int, str], int] = field(default_factory=dict)

    def slot(self, fid: int, term: str) -> int:
        key = (fid, term)
        if key not in self._slot_ids:
            self.slots.append(key)
            self._slot_ids[key] = len(self.slots)  # 1-based, as SQL's ordinality
        return self._slot_ids[key]

    def alternatives(self, clause: int) -> list[int]:
        return [a + 1 for a, c in enumerate(self.alt_clause) if c == clause]

    def leaves(self, alt: int) -> list[int]:
        return [s for a, s in zip(self.leaf_alt, self.leaf_slot, strict=True) if a == alt]


def _alt(out: Compiled, clause: int, c: Clause, boost: float) -> bool:
    """Add one alternative (as ``index._to_whoosh`` turns a clause into a Whoosh query)."""
    how = match_mode(c)
    if how is None or c.field not in FIELD_ID:
        return False
    fid = FIELD_ID[c.field]
    mode, words = how
    label = LABEL[c.field]
    if mode == "any":
        query = None
    elif mode == "phrase" and c.slop <= 1:
        query = " <-> ".join(f"{_quote(t)}:{label}" for t in words)
    else:  # all-of (a phrase with slop > 1 too: in any order nearby, a superset): every
        mode = "all"  # term present, which the term frequencies show
        query = None
    out.alt_clause.append(clause)
    out.alt_mode.append(mode)
    out.alt_boost.append(float(boost))
    out.alt_query.append(query)
    alt = len(out.alt_clause)
    for t in words:
        out.leaf_clause.append(clause)
        out.leaf_alt.append(alt)
        out.leaf_slot.append(out.slot(fid, t))
    return True


def compile_plan(clauses: Sequence[Clause]) -> Compiled:
    out = Compiled()
    for c in clauses:
        clause = len(out.clause_boost) + 1
        if c.mode == "max":
            subs = [a for a in c.alternatives if a.mode != "max" and any(a.terms)]
            if not subs:
                continue
            out.clause_boost.append(float(c.boost))
            out.clause_max.append(True)
            out.clause_prune.append(bool(getattr(c, "prune", False)))
            added = [_alt(out, clause, a, a.boost) for a in subs]
            if not any(added):
                out.clause_boost.pop(), out.clause_max.pop(), out.clause_prune.pop()
        else:
            out.clause_boost.append(float(c.boost))
            out.clause_max.append(False)
            out.clause_prune.append(False)
            if not _alt(out, clause, c, 1.0):
                out.clause_boost.pop(), out.clause_max.pop(), out.clause_prune.pop()
    return out


# one statement: a row with the corpus statistics of the plan's slots (entry NULL: the slots
# the corpus holds, their document frequencies, the cut slots: those with more than k
# postings), then a row per candidate: field lengths, the term frequencies the first pass
# read (slots, tfs), the phrase checks, and the term frequencies of the cut slots (from
# entry_terms: a candidate may hold a cut slot's term in a posting the first pass did not read)
SEARCH_SQL = """
WITH q AS MATERIALIZED (
    SELECT a.slot, a.term, a.df, a.idf, a.w, a.k, a.df > a.k AS cut FROM (
        SELECT b.*, CASE WHEN b.df > %(k)s AND sum(CASE WHEN b.df > %(k)s THEN b.idf * b.w
                                                  ELSE 0 END) OVER (ORDER BY b.idf * b.w, b.slot)
                              < %(eps)s * max(b.idf * b.w) OVER () THEN 0
                    ELSE %(k)s END AS k
        FROM (
            SELECT s.slot::int AS slot, l.id AS term, l.df, s.w,
                   ln(greatest(st.docs, 1)::float8 / (l.df + 1)) + 1 AS idf
            FROM unnest(%(sf)s::int2[], %(st)s::text[], %(sw)s::float8[])
                 WITH ORDINALITY AS s(field, term, w, slot)
            JOIN llmref.lexicon l ON l.field = s.field AND l.term = s.term AND l.df > 0
            CROSS JOIN llmref.stats st
        ) b
    ) a
), cand AS MATERIALIZED (
    SELECT p.entry FROM q CROSS JOIN LATERAL (
        SELECT entry, impact FROM llmref.postings
        WHERE postings.term = q.term ORDER BY impact DESC LIMIT q.k
    ) p
    GROUP BY p.entry ORDER BY sum(q.idf * q.w * p.impact) DESC, p.entry LIMIT %(m)s
), seen AS (
    SELECT p.entry, array_agg(q.slot) AS slots, array_agg(p.tf::int) AS tfs
    FROM q CROSS JOIN LATERAL (
        SELECT entry, tf FROM llmref.postings WHERE postings.term = q.term LIMIT q.k
    ) p JOIN cand c ON c.entry = p.entry
    WHERE NOT q.cut GROUP BY p.entry
), ids AS (
    SELECT array_agg(slot ORDER BY slot) AS slots, array_agg(df ORDER BY slot) AS dfs,
           array_agg(slot ORDER BY slot) FILTER (WHERE cut) AS cut_slots,
           array_agg(term ORDER BY slot) FILTER (WHERE cut) AS cut_ids
    FROM q
)
SELECT NULL::int AS entry, NULL::int2[], ids.slots, ids.dfs, NULL::bool[], ids.cut_slots,
       st.docs, st.lengths, st.generation
FROM llmref.stats st CROSS JOIN ids
UNION ALL
SELECT c.entry, e.lens, s.slots, s.tfs,
       ARRAY(SELECT e.tsv @@ x FROM unnest(%(pq)s::tsquery[]) AS x),
       CASE WHEN ids.cut_ids IS NOT NULL THEN
           ARRAY(SELECT CASE WHEN t.terms[b.i] = b.id THEN t.tfs[b.i]::int END
                 FROM (SELECT x.id, x.n, width_bucket(x.id, t.terms) AS i
                       FROM unnest(ids.cut_ids) WITH ORDINALITY AS x(id, n)) b ORDER BY b.n)
       END,
       NULL, NULL, NULL
FROM cand c JOIN llmref.entries e ON e.rowid = c.entry LEFT JOIN seen s ON s.entry = c.entry
CROSS JOIN ids LEFT JOIN llmref.entry_terms t ON ids.cut_ids IS NOT NULL AND t.entry = c.entry
"""

ENTRIES_SQL = "SELECT rowid, id, data FROM llmref.entries WHERE rowid = ANY(%s)"


@dataclass
class TeamHits:
    hits: list[tuple[Hit, Entry]]
    dfs: dict[tuple[int, str], int]  # the slots' document frequencies (absent: 0)
    docs: int
    generation: int | None


@dataclass
class Candidate:
    """What the candidate statement returns for one entry."""

    rowid: int
    lens: Sequence[int]  # quantized field lengths (FIELDS order)
    tfs: dict[int, int]  # slot -> term frequency, for the query's slots the entry holds
    phrases: Sequence[bool]  # per phrase alternative (Compiled.phrase_alts): tsv @@ tsquery


@dataclass
class Corpus:
    """The team corpus's statistics for one plan."""

    docs: int
    lengths: Sequence[float]  # total field lengths (FIELDS order)
    dfs: dict[int, int]  # slot -> document frequency, for the slots the corpus holds
    generation: int | None = None


def slot_weights(compiled: Compiled) -> list[float]:
    """Per slot, the boosts its leaves carry: what the candidate pass weighs its impacts by
    (an estimate: the exact scores come after)."""
    out = [0.0] * len(compiled.slots)
    for clause, alt, slot in zip(
        compiled.leaf_clause, compiled.leaf_alt, compiled.leaf_slot, strict=True
    ):
        boost = compiled.clause_boost[clause - 1]
        if compiled.clause_max[clause - 1]:
            boost *= compiled.alt_boost[alt - 1]
        out[slot - 1] += boost
    return out


def phrase_alts(compiled: Compiled) -> list[int]:
    """The alternatives whose condition needs positions (the entry's tsvector)."""
    return [a + 1 for a, mode in enumerate(compiled.alt_mode) if mode == "phrase"]


def score(
    compiled: Compiled, corpus: Corpus, candidates: Sequence[Candidate]
) -> list[tuple[float, int, frozenset[int]]]:
    """Whoosh's BM25F of ``index._to_whoosh``'s query for each candidate, from its term
    frequencies and field lengths: (score, rowid, the query slots it holds), best first
    (equal scores by rowid), candidates that match nothing left out.

    Per leaf idf x tf-part; per alternative the sum when its condition holds (any: one of
    its terms; all-of: every term; phrase: every term and the tsvector's ``<->`` check); per
    clause the sum or (max clauses) the best alternative; per entry the sum. A max clause
    whose alternatives the planner filtered by presence (``Clause.prune``) keeps only the
    alternatives whose terms the corpus holds, and a max clause left with one alternative
    scores it at the clause's boost (Whoosh replaces the alternative's boost by the
    clause's)."""
    n = float(max(corpus.docs, 1))
    known = corpus.dfs
    # per slot: its field, idf and average field length
    norm: dict[int, tuple[int, float, float]] = {}
    for slot, df in known.items():
        fid = compiled.slots[slot - 1][0]
        average = (corpus.lengths[fid] / n) if fid < len(corpus.lengths) else 0.0
        norm[slot] = (fid, idf(df, corpus.docs), average or 1.0)
    leaves: dict[int, list[int]] = {}
    for alt, slot in zip(compiled.leaf_alt, compiled.leaf_slot, strict=True):
        leaves.setdefault(alt, []).append(slot)
    # the live alternatives of every clause, with their coefficient
    clauses: list[tuple[bool, list[tuple[int, str, float, list[int], int]]]] = []
    phrase_at = {alt: i for i, alt in enumerate(phrase_alts(compiled))}
    for clause in range(1, len(compiled.clause_boost) + 1):
        alts = [
            a
            for a in compiled.alternatives(clause)
            if not compiled.clause_prune[clause - 1] or all(s in known for s in leaves[a])
        ]
        boost = compiled.clause_boost[clause - 1]
        is_max = compiled.clause_max[clause - 1]
        live = []
        for a in alts:
            coef = boost * compiled.alt_boost[a - 1] if is_max and len(alts) > 1 else boost
            live.append((a, compiled.alt_mode[a - 1], coef, leaves[a], phrase_at.get(a, -1)))
        if live:
            clauses.append((is_max, live))
    # slot -> the live alternatives it is a leaf of (with how many leaves it is there)
    flat: list[tuple[int, bool, str, float, int, int]] = []  # clause, max, mode, coef, n, at
    touch: dict[int, list[tuple[int, int]]] = {}
    for ci, (is_max, live) in enumerate(clauses):
        for _a, mode, coef, slots, at in live:
            ai = len(flat)
            flat.append((ci, is_max, mode, coef, len(slots), at))
            for slot in set(slots):
                touch.setdefault(slot, []).append((ai, slots.count(slot)))
    out: list[tuple[float, int, frozenset[int]]] = []
    for cand in candidates:
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        held = []
        for slot, tf in cand.tfs.items():
            if tf <= 0 or slot not in touch or slot not in norm:
                continue
            fid, weight, average = norm[slot]
            length = cand.lens[fid] if fid < len(cand.lens) else 1
            value = weight * impact(tf, max(length, 1), average)
            held.append(slot)
            for ai, times in touch[slot]:
                sums[ai] = sums.get(ai, 0.0) + value * times
                counts[ai] = counts.get(ai, 0) + times
        best: dict[int, float] = {}
        for ai, total in sums.items():
            ci, is_max, mode, coef, leaves_n, at = flat[ai]
            if mode != "any" and (counts[ai] != leaves_n or (at >= 0 and not cand.phrases[at])):
                continue
            value = coef * total
            if ci not in best:
                best[ci] = value
            else:
                best[ci] = max(best[ci], value) if is_max else best[ci] + value
        if best:
            out.append((sum(best.values()), cand.rowid, frozenset(held)))
    # equal scores by rowid (rounded: the order of a sum's terms moves its last bits)
    out.sort(key=lambda x: (-round(x[0], 9), x[1]))
    return out


def run(conn, compiled: Compiled, *, k: int, m: int, r: int) -> TeamHits:
    """Run a compiled plan: the corpus statistics and the candidates in one statement, exact
    scores here, then the best ``r`` entries' data. Hits best first, entries team-prefixed."""
    if not compiled.slots:
        return TeamHits([], {}, 0, None)
    sf = [f for f, _t in compiled.slots]
    st = [t for _f, t in compiled.slots]
    phrases = [compiled.alt_query[a - 1] for a in phrase_alts(compiled)]
    rows = conn.execute(
        SEARCH_SQL,
        {"sf": sf, "st": st, "sw": slot_weights(compiled), "pq": phrases,
         "k": k, "m": max(m, r), "eps": NEGLIGIBLE},
    ).fetchall()  # fmt: skip
    head = next(row for row in rows if row[0] is None)
    _entry, _lens, slots, dfs_list, _ph, cut, docs, lengths, generation = head
    corpus = Corpus(
        docs=int(docs),
        lengths=[float(x) for x in lengths],
        dfs={int(s): int(d) for s, d in zip(slots or (), dfs_list or (), strict=True)},
        generation=int(generation),
    )
    candidates = []
    for rowid, lens, read, tfs, phrases_ok, cut_tfs, *_stats in rows:
        if rowid is None:
            continue
        freqs = dict(zip(read or (), tfs or (), strict=True))
        if cut and cut_tfs:
            freqs.update((s, tf) for s, tf in zip(cut, cut_tfs, strict=True) if tf)
        candidates.append(Candidate(rowid, lens, freqs, phrases_ok or ()))
    best = score(compiled, corpus, candidates)[:r]
    dfs = {compiled.slots[s - 1]: df for s, df in corpus.dfs.items()}
    if not best:
        return TeamHits([], dfs, corpus.docs, corpus.generation)
    data = {
        rowid: (ident, text)
        for rowid, ident, text in conn.execute(ENTRIES_SQL, ([rowid for _s, rowid, _h in best],))
    }
    hits: list[tuple[Hit, Entry]] = []
    for value, rowid, held in best:
        if rowid not in data:  # removed by a publish between the two statements
            continue
        ident, text = data[rowid]
        entry = Entry.from_dict(json.loads(text))
        terms = frozenset(
            (FIELDS[compiled.slots[s - 1][0]], compiled.slots[s - 1][1]) for s in held
        )
        hits.append((Hit(ident, value, terms), entry))
    return TeamHits(hits, dfs, corpus.docs, corpus.generation)


def scoring_constants() -> dict:
    """BM25's constants as statement parameters (publish computes impacts with them)."""
    return {"k1": K1, "k1p1": K1 + 1, "b": B, "omb": 1 - B}


def upper_bound(compiled: Compiled, df: Callable[[int, str], int], docs: int) -> float:
    """The most any entry could score on this plan in a corpus of ``docs`` entries with these
    document frequencies (every term at the saturation of BM25's tf part, K1 + 1): what a
    score is divided by to be compared with another corpus's (a term a corpus lacks counts
    at the idf of a one-entry term, so lacking it lowers every score of that corpus alike)."""

    def slot_idf(slot: int) -> float:
        fid, term = compiled.slots[slot - 1]
        return idf(max(df(fid, term), 0), docs)

    total = 0.0
    for clause in range(1, len(compiled.clause_boost) + 1):
        alts = compiled.alternatives(clause)
        boost = compiled.clause_boost[clause - 1]
        best = 0.0
        for alt in alts:
            coef = boost * (compiled.alt_boost[alt - 1] if len(alts) > 1 else 1.0)
            value = coef * sum(slot_idf(s) * (K1 + 1) for s in compiled.leaves(alt))
            best = max(best, value) if compiled.clause_max[clause - 1] else value
        total += best
    return total


__all__ = [
    "Candidate",
    "Compiled",
    "Corpus",
    "TeamHits",
    "compile_plan",
    "run",
    "score",
    "upper_bound",
]
