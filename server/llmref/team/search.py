"""The engine-neutral ``Clause`` plan (lookup.py) on PostgreSQL, in one statement.

The plan is compiled into arrays (never into SQL text): the distinct (field, term) *slots*,
the *alternatives* (a clause's ways to match: any / all / phrase over terms of one field,
with a tsquery for all-of and phrase), their *leaves* (one per term occurrence) and the
*clauses* (boost; "max": the best alternative counts). The statement then scores exactly
what ``index._to_whoosh`` asks Whoosh to score, with Whoosh's BM25F (K1 1.2, B 0.75,
idf = ln(N / (df + 1)) + 1, byte-quantized field lengths):

1. candidates: for every slot, its best ``k`` postings by impact (BM25's tf part: the
   posting list order), summed with the slot's weight into an upper bound of the true
   score; the ``m`` best candidates go on (every posting, when a term is in <= k entries:
   then the result is exact);
2. exact scores of the candidates: per leaf idf x tf-part, per alternative the sum when its
   condition holds (all-of and phrase checked on the entry's tsvector: ``&``, ``<->``),
   per clause the sum or (max clauses) the best alternative, per entry the sum;
3. the ``r`` best entries with their data and the query's (field, term) pairs they hold
   (``Hit.terms``, what the re-ranker's coverage counts).

Whoosh details kept: a max clause whose alternatives were filtered by the planner's
presence check (``Clause.prune``) keeps only the alternatives whose terms the corpus holds,
and a max clause left with one alternative scores it at the clause's boost (Whoosh replaces
the alternative's boost by the clause's). Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..corpus.entry import Entry
from ..index import Clause, Hit, match_mode
from .docs import FIELD_ID, FIELDS, K1, LABEL

DEFAULT_K = 1000  # postings read per query term (best first)
DEFAULT_M = 300  # candidates scored exactly


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
    alt_query: list[str | None] = field(default_factory=list)  # tsquery (all, phrase)
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

    def params(self, k: int, m: int, r: int) -> dict:
        return {
            "sf": [f for f, _t in self.slots],
            "st": [t for _f, t in self.slots],
            "lc": self.leaf_clause,
            "la": self.leaf_alt,
            "ls": self.leaf_slot,
            "ac": self.alt_clause,
            "am": self.alt_mode,
            "ab": self.alt_boost,
            "aq": [q or "" for q in self.alt_query],
            "cb": self.clause_boost,
            "cm": self.clause_max,
            "cp": self.clause_prune,
            "k": k,
            "m": m,
            "r": r,
        }

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
    else:  # all-of (a phrase with slop > 1 too: in any order nearby, a superset)
        mode = "all"
        query = " & ".join(f"{_quote(t)}:{label}" for t in words)
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


SEARCH_SQL = """
WITH st AS (
    SELECT greatest(docs, 1)::float8 AS n, lengths, generation, docs FROM llmref.stats
), q AS (
    SELECT s.slot::int AS slot, s.field, l.id AS term, l.df,
           ln(st.n / (l.df + 1)) + 1 AS idf,
           coalesce(nullif(st.lengths[s.field + 1] / st.n, 0), 1) AS avgfl
    FROM unnest(%(sf)s::int2[], %(st)s::text[]) WITH ORDINALITY AS s(field, term, slot)
    JOIN llmref.lexicon l ON l.field = s.field AND l.term = s.term AND l.df > 0
    CROSS JOIN st
), leaf AS (
    SELECT * FROM unnest(%(lc)s::int[], %(la)s::int[], %(ls)s::int[]) AS x(clause, alt, slot)
), cl AS (
    SELECT c.clause::int, c.boost, c.is_max, c.prune
    FROM unnest(%(cb)s::float8[], %(cm)s::bool[], %(cp)s::bool[])
         WITH ORDINALITY AS c(boost, is_max, prune, clause)
), live AS (
    SELECT a.alt::int, a.clause, a.mode, a.boost, nullif(a.query, '')::tsquery AS query
    FROM unnest(%(ac)s::int[], %(am)s::text[], %(ab)s::float8[], %(aq)s::text[])
         WITH ORDINALITY AS a(clause, mode, boost, query, alt)
    JOIN cl USING (clause)
    WHERE NOT cl.prune OR NOT EXISTS (
        SELECT 1 FROM leaf WHERE leaf.alt = a.alt AND leaf.slot NOT IN (SELECT slot FROM q))
), coef AS (
    SELECT live.alt, live.clause, live.mode, live.query,
           CASE WHEN cl.is_max AND count(*) OVER (PARTITION BY live.clause) > 1
                THEN cl.boost * live.boost ELSE cl.boost END AS coef,
           (SELECT count(*) FROM leaf WHERE leaf.alt = live.alt) AS leaves
    FROM live JOIN cl USING (clause)
), w AS (
    SELECT leaf.slot, sum(coef.coef) AS w FROM leaf JOIN coef USING (alt) GROUP BY leaf.slot
), hit AS MATERIALIZED (
    SELECT q.slot, p.entry, p.tf, q.idf * w.w * p.impact AS bound
    FROM q JOIN w USING (slot)
    CROSS JOIN LATERAL (
        SELECT entry, tf, impact FROM llmref.postings
        WHERE postings.term = q.term ORDER BY impact DESC LIMIT %(k)s
    ) p
), cand AS MATERIALIZED (
    SELECT c.entry, e.lens FROM (
        SELECT entry FROM hit GROUP BY entry ORDER BY sum(bound) DESC LIMIT %(m)s
    ) c JOIN llmref.entries e ON e.rowid = c.entry
), candhit AS MATERIALIZED (
    SELECT h.entry, h.slot, h.tf, c.lens FROM hit h JOIN cand c USING (entry)
), leafscore AS MATERIALIZED (
    SELECT h.entry, leaf.alt, leaf.slot,
           q.idf * h.tf * %(k1p1)s
             / (h.tf + %(k1)s * (%(omb)s + %(b)s * greatest(h.lens[q.field + 1], 1) / q.avgfl))
             AS s
    FROM candhit h JOIN q USING (slot) JOIN leaf USING (slot) JOIN coef USING (alt)
), altok AS MATERIALIZED (
    SELECT a.entry, coef.clause, a.alt, coef.coef * a.s AS score
    FROM (SELECT entry, alt, sum(s) AS s, count(*) AS n FROM leafscore GROUP BY entry, alt) a
    JOIN coef USING (alt)
    WHERE coef.mode = 'any' OR (a.n = coef.leaves AND EXISTS (
        SELECT 1 FROM llmref.entries e WHERE e.rowid = a.entry AND e.tsv @@ coef.query))
), held AS (
    SELECT entry, array_agg(DISTINCT slot) AS slots FROM leafscore GROUP BY entry
), doc AS (
    SELECT entry, sum(score) AS score
    FROM (SELECT entry, clause, max(score) AS score FROM altok GROUP BY entry, clause) x
    GROUP BY entry ORDER BY score DESC LIMIT %(r)s
)
SELECT e.id, doc.score, e.data, held.slots,
       (SELECT array_agg(slot ORDER BY slot) FROM q) AS known,
       (SELECT array_agg(df ORDER BY slot) FROM q) AS dfs,
       (SELECT docs FROM st) AS docs,
       (SELECT generation FROM st) AS generation
FROM doc JOIN llmref.entries e ON e.rowid = doc.entry JOIN held USING (entry)
ORDER BY doc.score DESC, e.rowid
"""


@dataclass
class TeamHits:
    hits: list[tuple[Hit, Entry]]
    dfs: dict[tuple[int, str], int]  # the slots' document frequencies (absent: 0)
    docs: int
    generation: int | None


def scoring_constants() -> dict:
    from .docs import B

    return {"k1": K1, "k1p1": K1 + 1, "b": B, "omb": 1 - B}


def run(conn, compiled: Compiled, *, k: int, m: int, r: int) -> TeamHits:
    """Run a compiled plan (one round trip); hits best first, entries team-prefixed."""
    if not compiled.slots:
        return TeamHits([], {}, 0, None)
    params = compiled.params(k, max(m, r), r) | scoring_constants()
    rows = conn.execute(SEARCH_SQL, params).fetchall()
    hits: list[tuple[Hit, Entry]] = []
    dfs: dict[tuple[int, str], int] = {}
    docs, generation = 0, None
    for ident, score, data, slots, known, df_list, n, gen in rows:
        entry = Entry.from_dict(json.loads(data))
        terms = frozenset(
            (FIELDS[compiled.slots[s - 1][0]], compiled.slots[s - 1][1]) for s in slots or ()
        )
        hits.append((Hit(ident, float(score), terms), entry))
        if not dfs and known:
            dfs = {compiled.slots[s - 1]: int(d) for s, d in zip(known, df_list, strict=True)}
        docs, generation = int(n), int(gen)
    return TeamHits(hits, dfs, docs, generation)


def upper_bound(compiled: Compiled, df: Callable[[int, str], int], docs: int) -> float:
    """The most any entry could score on this plan in a corpus of ``docs`` entries with these
    document frequencies (every term at the saturation of BM25's tf part, K1 + 1): what a
    score is divided by to be compared with another corpus's (a term a corpus lacks counts
    at the idf of a one-entry term, so lacking it lowers every score of that corpus alike)."""
    n = max(docs, 1)

    def idf(slot: int) -> float:
        fid, term = compiled.slots[slot - 1]
        return math.log(n / (max(df(fid, term), 0) + 1)) + 1

    total = 0.0
    for clause in range(1, len(compiled.clause_boost) + 1):
        alts = compiled.alternatives(clause)
        boost = compiled.clause_boost[clause - 1]
        best = 0.0
        for alt in alts:
            coef = boost * (compiled.alt_boost[alt - 1] if len(alts) > 1 else 1.0)
            value = coef * sum(idf(s) * (K1 + 1) for s in compiled.leaves(alt))
            best = max(best, value) if compiled.clause_max[clause - 1] else value
        total += best
    return total


__all__ = ["Compiled", "SEARCH_SQL", "TeamHits", "compile_plan", "run", "upper_bound"]
