"""Finding glossary terms in text: the term key of a term, and a matcher that finds every
occurrence of every term in a text in one pass (identifiers split, separators ignored, Chinese
without spaces), in time linear in the text.

A text is a stream of *units*: the camel/snake parts of each Latin run (``LlamaRMSNorm`` ->
llama, rms, norm) and each Chinese character. A term's *key* is its units, singular,
concatenated (``KV-Caches`` -> ``kvcache``). A term occurs where consecutive units — joined only
by separators — spell its key, each unit as itself, its singular or an abbreviation's expansion
(``rotary_emb`` -> rotary embedding), at most MAX_UNITS units.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from .normalize import singular, split_identifier, width_fold

if TYPE_CHECKING:
    from .glossary import Concept

MAX_UNITS = 10
# completion lists a term's forms code first, then name, aliases, Chinese
KIND_RANK = {"code": 0, "name": 1, "aliases": 2, "zh": 3}
_KINDS = ("code", "name", "aliases", "zh")  # by rank
_KIND_RANKS = tuple(KIND_RANK[k] for k in _KINDS)
_KIND_INDEX = {k: n for n, k in enumerate(_KINDS)}

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


@dataclass(frozen=True, slots=True)
class Match:
    start: int  # character offsets in the matched text
    end: int
    concept: str  # concept id
    kind: str  # name / aliases / zh / code
    units: int  # how many units (identifier parts, Chinese characters) it spans
    key: str = ""  # the term key that matched
    expanded: bool = False  # an abbreviation was expanded to match (emb -> embedding)


# --- units ---------------------------------------------------------------------------------
#
# A unit is *joinable* when only separators (space, ``_``, ``-``, ``/``, ``.``) stand between it
# and the unit before: a term spans joinable units only. The matcher works on *runs* (a Latin
# run, whose units are its camel/snake parts, or a run of Chinese, whose units are its
# characters) kept as parallel lists, window by window, so a text of any size costs memory for
# one window only.

_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[A-Za-z0-9]+|[{_CJK_CLASS}]+")  # a Latin run, or a run of Chinese
# The matcher reads text as width_fold would give it without building that copy: full-width
# letters and digits belong to Latin runs (folded where they occur), full-width separators
# count as separators (gaps are folded before they are judged).
_FULL_WIDTH_ALNUM = "\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_LATIN_CLASS = f"A-Za-z0-9{_FULL_WIDTH_ALNUM}"
_RAW_RUN = re.compile(rf"[{_LATIN_CLASS}]+|[{_CJK_CLASS}]+")
_SPLIT = re.compile(rf"([{_LATIN_CLASS}]+|[{_CJK_CLASS}]+)")  # split: gap, run, gap, ..., tail
_HAS_FULL_WIDTH_ALNUM = re.compile(f"[{_FULL_WIDTH_ALNUM}]")
_SEPARATOR_CLASS = r"\s_\-/.\uff3f\uff0d\uff0f\uff0e"  # and their full-width forms
_JOIN_GAP = re.compile(r"[\s_\-/.]*")  # what may separate the units of one term
_LONG_RUN = 256  # Latin runs longer than this are split without the split cache
_INFO_CACHE = 100_000  # unit texts whose alternatives a matcher remembers
_FOLLOW_SCAN = 2000  # keys scanned to learn what may follow a unit (beyond: no filter)


def _parts(run: str) -> tuple[str, ...]:
    """The units of one Latin run (they tile it: lengths add up to the run's)."""
    if run.isalpha():  # what split_identifier gives for a plain word, without the work
        if run.islower():
            return (run,)
        if run.isupper() or (run[0].isupper() and run[1:].islower()):
            return (run.lower(),)
    return split_identifier(run) if len(run) <= _LONG_RUN else split_identifier.__wrapped__(run)


# (runs, their starts, whether each may join the one before, n): a term that starts in one of
# the first n runs of a window ends inside it. A run is Chinese when it is > "\x7f".
_Window = tuple[list[str], list[int], list[bool], int]


class _Gaps(dict[str, bool]):
    """Which gaps between runs join them (only separators): a cache, gaps repeat."""

    def __init__(self) -> None:
        super().__init__({"": True, " ": True})

    def __missing__(self, gap: str) -> bool:
        joins = _JOIN_GAP.fullmatch(width_fold(gap)) is not None
        if len(gap) <= 8 and len(self) < 4096:
            self[gap] = joins
        return joins


_CHUNK = 1 << 16  # characters tokenized at once: a window


def _windows(text: str, gaps: _Gaps) -> Iterator[_Window]:
    """The runs of ``text`` (width-folded: as width_fold gives them), window by window. A
    window is a chunk of the text cut at the end of a run, after the last MAX_UNITS - 1 runs of
    the window before (a term that begins before those ends in the earlier window). The lists
    come from one regex split (gap, run, gap, run, ..., tail) and C-level slices and maps."""
    keep = MAX_UNITS - 1
    carry: tuple[list[str], list[int], list[bool]] | None = None
    pos = 0
    while pos < len(text):
        m = _RAW_RUN.search(text, pos + _CHUNK)
        end = m.end() if m else len(text)
        parts = _SPLIT.split(text if pos == 0 and end == len(text) else text[pos:end])
        base, pos = pos, end
        if len(parts) < 2:
            continue  # no run
        runs = parts[1::2]
        if _HAS_FULL_WIDTH_ALNUM.search(text, base, end):  # rare: fold those runs
            runs = [
                r if r.isascii() or "\u3400" <= r[0] <= "\ufaff" else width_fold(r) for r in runs
            ]
        starts = list(itertools.accumulate(map(len, parts), initial=base))[1:-1:2]
        joins = list(map(gaps.__getitem__, parts[0:-1:2]))
        if carry is not None:
            runs, starts = carry[0] + runs, carry[1] + starts
            joins = carry[2] + joins
        if pos >= len(text):
            carry = None
            yield runs, starts, joins, len(runs)
            break
        n_start = max(0, len(runs) - keep)
        if n_start:
            yield runs, starts, joins, n_start
        carry = (runs[n_start:], starts[n_start:], joins[n_start:])
    if carry is not None and carry[0]:
        yield carry[0], carry[1], carry[2], len(carry[0])


@lru_cache(maxsize=1 << 16)
def _run_key(run: str) -> str:
    if not run[0].isascii():
        return run  # Chinese: every character is its own unit, singular() keeps it
    return "".join(singular(p) for p in _parts(run))


@lru_cache(maxsize=65536)
def term_key(text: str) -> str:
    """The matching key of a term: its units, singular, concatenated."""
    return "".join(map(_run_key, _RUN.findall(text if text.isascii() else width_fold(text))))


_ABBREVIATION_KEYS = {a: tuple(term_key(x) for x in exp) for a, exp in ABBREVIATIONS.items()}
# the matcher's next-character filter relies on this: every alternative of a unit (itself, its
# singular, an expansion) begins with the unit's first character
_SAME_FIRST_CHAR = all(k[:1] == a[:1] for a, ks in _ABBREVIATION_KEYS.items() for k in ks)


def _matchable(key: str) -> bool:
    """Keys too short to mean anything (``<s>`` -> ``s``) are never matched."""
    return len(key) >= 2 or (bool(key) and not key.isascii())


def _alternatives(unit: str) -> tuple[tuple[str, bool], ...]:
    """What a unit may stand for in a term key, and whether that is an expansion: itself,
    its singular, the expansions of an abbreviation (emb -> embedding)."""
    alts = [unit]
    s = singular(unit)
    if s != unit:
        alts.append(s)
    alts.extend(_ABBREVIATION_KEYS.get(unit, ()))
    return tuple((alt, n > 0 and s != alt) for n, alt in enumerate(alts))


# a unit's (alternative, expanded) pairs, and those that begin some key
_UnitInfo = tuple[
    tuple[tuple[str, bool], ...], tuple[tuple[str, bool], ...], bool, frozenset[str] | None
]
# a Latin run's unit that may begin a key: (unit index, frontier, is a key, what may follow,
# start and end in the run, whether the next unit may go on (None: it is in the next run))
_Begin = tuple[
    int, tuple[tuple[str, bool], ...], bool, frozenset[str] | None, int, int, bool | None
]
# a Latin run's units, their ends in the run, its _Begins
_RunInfo = tuple[tuple[str, ...], list[int], list[_Begin]]
# (start, end, concept, kind, units, key, expanded): a Match before it is one
_Raw = tuple[int, int, str, str, int, str, bool]
_PREFIX_SET_LEN = 6  # prefixes up to this length are in a set; longer ones use the sorted keys


class TermMatcher:
    """Finds glossary terms in text; longest terms first.

    ``keys``: term key -> [(concept id, kind)]; ``acronyms``: (key, concept) pairs written as an
    acronym or brand; ``forms``: (key, KIND_RANK of the kind, written form, concept id, kind)
    of every matchable form, sorted (the table completion searches)."""

    def __init__(
        self,
        concepts: Iterable[Concept],
        form_keys: dict[str, list[str]] | None = None,
    ) -> None:
        """``form_keys``: concept id -> the term keys of its forms, in ``forms()`` order (when
        the caller has them already)."""
        self.keys: dict[str, list[tuple[str, str]]] = {}
        # (key, concept) pairs whose written form is an acronym or brand (RoPE, LoRA, GQA):
        # distinctive even as one part of a longer identifier (rope_theta, lora_alpha)
        self.acronyms: set[tuple[str, str]] = set()
        forms: list[tuple[str, int, str, str, str]] = []
        in_buckets: set[tuple[str, str, str]] = set()
        for concept in concepts:
            cid = concept.id
            known = form_keys.get(cid) if form_keys is not None else None
            for n, (text, kind) in enumerate(concept.forms()):
                key = known[n] if known is not None else term_key(text)
                if not text.islower() and _is_acronym(text):
                    self.acronyms.add((key, cid))
                if not _matchable(key):
                    continue
                forms.append((key, KIND_RANK[kind], text, cid, kind))
                if (key, cid, kind) not in in_buckets:
                    in_buckets.add((key, cid, kind))
                    self.keys.setdefault(key, []).append((cid, kind))
        forms.sort()
        self.forms = forms
        self._compile()

    def to_state(self) -> dict[str, object]:
        """Everything the matcher holds, as plain JSON data, in flat lists (strings and small
        numbers decode several times faster than nested lists or objects)."""
        index = {k: n for n, k in enumerate(self._sorted)}
        acronyms = sorted(self.acronyms)
        ids = sorted({f[3] for f in self.forms} | {cid for _k, cid in acronyms})
        code = {cid: n * 4 for n, cid in enumerate(ids)}  # concept index * 4 + kind index
        kind = _KIND_INDEX
        firsts: list[int] = []
        more_key: list[int] = []
        more: list[int] = []
        for n, k in enumerate(self._sorted):
            bucket = self.keys[k]
            firsts.append(code[bucket[0][0]] + kind[bucket[0][1]])
            for cid, kd in bucket[1:]:
                more_key.append(n)
                more.append(code[cid] + kind[kd])
        forms = self.forms
        return {
            "ids": ids,
            "keys": self._sorted,
            "bucket_first": firsts,
            "bucket_more_key": more_key,  # a key's other (concept, kind) pairs, in order
            "bucket_more": more,
            "acronym_key": [k for k, _c in acronyms],
            "acronym_concept": [code[c] // 4 for _k, c in acronyms],
            "form_key": [index[f[0]] for f in forms],
            "form_text": [f[2] for f in forms],
            "form_concept": [code[f[3]] // 4 for f in forms],
            "form_kind": [f[1] for f in forms],  # the rank is the kind's index
            "short": sorted(self._short),
            "pairs": list(self._pairs),
            "thirds": [t if t is True else "".join(sorted(t)) for t in self._pairs.values()],
            "firsts": "".join(sorted(self._firsts)),
        }

    @classmethod
    def from_state(cls, state: dict) -> TermMatcher:
        """A matcher from ``to_state``'s data, read back from JSON."""
        self = cls.__new__(cls)
        ids, ordered = state["ids"], state["keys"]
        pairs_table = [(cid, kind) for cid in ids for kind in _KINDS]  # index: concept * 4 + kind
        pair = pairs_table.__getitem__
        # one [(concept, kind)] list per key, built by C-level maps
        buckets = list(map(list, zip(map(pair, state["bucket_first"]))))
        for n, v in zip(state["bucket_more_key"], state["bucket_more"], strict=True):
            buckets[n].append(pair(v))
        self.keys = dict(zip(ordered, buckets, strict=True))
        self.acronyms = set(
            zip(state["acronym_key"], map(ids.__getitem__, state["acronym_concept"]), strict=True)
        )
        self.forms = list(
            zip(
                map(ordered.__getitem__, state["form_key"]),
                map(_KIND_RANKS.__getitem__, state["form_kind"]),
                state["form_text"],
                map(ids.__getitem__, state["form_concept"]),
                map(_KINDS.__getitem__, state["form_kind"]),
                strict=True,
            )
        )
        pairs = dict(zip(state["pairs"], state["thirds"], strict=True))
        self._compile(
            ordered,
            set(state["short"]),
            {p: True if t is True else frozenset(t) for p, t in pairs.items()},
            set(state["firsts"]),
        )
        return self

    def _compile(
        self,
        ordered: list[str] | None = None,
        short: set[str] | None = None,
        pairs: dict[str, Literal[True] | frozenset[str]] | None = None,
        firsts: set[str] | None = None,
    ) -> None:
        """The lookup structures (arguments: known already): sorted keys (prefix tests by
        bisection), the short prefixes, where terms may begin in runs of Chinese."""
        self._sorted = ordered if ordered is not None else sorted(self.keys)
        if short is None:
            short = {k[:i] for k in self.keys for i in range(1, min(len(k), _PREFIX_SET_LEN) + 1)}
        self._short = short
        # Where a term may begin in a run of Chinese (key characters are a-z, 0-9 or Chinese):
        # a character that is a key; two characters that begin a key (-> True when they are
        # one, else the characters that can come third); a last character that begins a key
        # (the next run may go on with it).
        if pairs is None or firsts is None:
            pairs, firsts = _chinese_begins(self.keys)
        self._pairs = pairs
        self._firsts = firsts
        self._single = {c for c in firsts if c in self.keys}
        self._pair_re = None
        if pairs:  # a regex finds likely pairs, the dict keeps the right ones
            first = _char_class({p[0] for p in pairs})
            second = _char_class({p[1] for p in pairs})
            self._pair_re = re.compile(f"{first}(?={second})")
        # these find exactly the right ones: a one-character key; a last character that begins
        # a key when the next run may join it (only separators between, as _JOIN_GAP says)
        self._single_re = re.compile(_char_class(self._single)) if self._single else None
        self._end_re = None
        if firsts:
            self._end_re = re.compile(
                f"{_char_class(firsts)}"
                f"(?=[{_SEPARATOR_CLASS}]*[{_LATIN_CLASS}]|[{_SEPARATOR_CLASS}]+[{_CJK_CLASS}])"
            )
        # caches: unit text -> _UnitInfo, Latin run -> _RunInfo, gap -> whether it joins
        self._info: dict[str, _UnitInfo] = {}
        self._runs: dict[str, _RunInfo] = {}
        self._gaps = _Gaps()

    def has_prefix(self, text: str) -> bool:
        """Whether some key starts with ``text`` (a key itself)."""
        if len(text) <= _PREFIX_SET_LEN:
            return text in self._short
        i = bisect.bisect_left(self._sorted, text)
        return i < len(self._sorted) and self._sorted[i].startswith(text)

    def _unit_info(self, unit: str) -> _UnitInfo:
        """A unit's alternatives, those that begin some key, whether one is a key, and the
        characters that can come next in a key after one of them (None: not worth knowing)."""
        info = self._info.get(unit)
        if info is None:
            alts = _alternatives(unit)
            begin = tuple(a for a in alts if self.has_prefix(a[0]))
            hit = any(a in self.keys for a, _exp in begin)
            follow: set[str] | None = set() if _SAME_FIRST_CHAR else None
            for alt, _exp in begin if follow is not None else ():
                # the keys that start with alt (key characters are all below U+FFFF)
                lo = bisect.bisect_left(self._sorted, alt)
                hi = bisect.bisect_left(self._sorted, alt + "\uffff", lo)
                if hi - lo > _FOLLOW_SCAN:
                    follow = None  # too many keys go on from here: no filter
                    break
                n = len(alt)
                follow.update(map(operator.itemgetter(slice(n, n + 1)), self._sorted[lo:hi]))  # type: ignore[union-attr]
            if follow is not None:
                follow.discard("")  # alt itself
            info = (alts, begin, hit, frozenset(follow) if follow is not None else None)
            if len(unit) <= _LONG_RUN:
                if len(self._info) >= _INFO_CACHE:
                    self._info.clear()  # a huge vocabulary: forget, stay bounded
                self._info[unit] = info
        return info

    def _run_info(self, run: str) -> _RunInfo:
        """A Latin run's units, where each ends (in the run), and its units that may begin a
        key: (unit index, the frontier it begins, whether it is a key, what may follow, its
        start and end in the run, whether the next unit may go on: None for the last unit,
        whose next unit is in the next run)."""
        info = self._runs.get(run)
        if info is None:
            parts = _parts(run)
            ends = list(itertools.accumulate(map(len, parts)))
            begins: list[_Begin] = []
            for q, part in enumerate(parts):
                _alts, frontier, hit, follow = self._unit_info(part)
                if not frontier:
                    continue
                goes_on: bool | None = None
                if q + 1 < len(parts):
                    goes_on = follow is None or parts[q + 1][0] in follow
                begins.append((q, frontier, hit, follow, ends[q - 1] if q else 0, ends[q], goes_on))
            info = (parts, ends, begins)
            if len(run) <= _LONG_RUN:
                if len(self._runs) >= _INFO_CACHE:
                    self._runs.clear()
                self._runs[run] = info
        return info

    def _raw(self, text: str) -> Iterator[_Raw]:
        """Every occurrence of a term, by start."""
        return itertools.chain.from_iterable(self._raw_windows(text))

    def _raw_windows(self, text: str) -> Iterator[list[_Raw]]:
        """Every occurrence of a term, by start, window by window. A walk from a unit extends the keys so far
        with the next unit's alternatives (itself, singular, expanded) while they begin some
        key, at most MAX_UNITS units. Walks start only where a term may begin: at a Latin unit
        that begins a key and whose next unit may go on (or that is a key), at a Chinese
        character found by regexes over the window (a pair that begins a key, a one-character
        key, a last character that begins one); inside a run of Chinese a walk slices the run.
        """
        keys_get = self.keys.get
        short, sorted_keys, single = self._short, self._sorted, self._single
        n_keys = len(sorted_keys)
        short_len = _PREFIX_SET_LEN
        bisect_left, bisect_right = bisect.bisect_left, bisect.bisect_right
        run_get, run_info = self._runs.get, self._run_info
        pair_re, pairs_get = self._pair_re, self._pairs.get
        single_re, end_re = self._single_re, self._end_re
        walk = self._walk
        for runs, starts, joins, n_start in _windows(text, self._gaps):
            n = len(runs)
            lo, hi = starts[0], starts[n_start - 1] + len(runs[n_start - 1])
            # per run: None for Chinese, the _RunInfo of a Latin run
            infos = [(run_get(x) or run_info(x)) if x < "\x7f" else None for x in runs]
            window = (runs, starts, joins, infos, n)
            out: list[_Raw] = []
            emit = out.append
            # where terms may begin, in text order
            todo = [(starts[r], r) for r in range(n_start) if (i := infos[r]) is not None and i[2]]
            found: list[int] = []
            if pair_re is not None:
                # a pair that begins a key (tested in C), and is a key or may go on with the
                # third character (or the run ends there: what follows may go on)
                at = list(map(_match_start, pair_re.finditer(text, lo, hi)))
                pair_texts = map(text.__getitem__, map(slice, at, map(operator.add, at, _TWO)))
                thirds = list(map(pairs_get, pair_texts))
                kept: Iterator[Literal[True] | frozenset[str]] = filter(None, thirds)
                for p, third in zip(itertools.compress(at, thirds), kept, strict=True):
                    if (
                        third is True
                        or (c := text[p + 2 : p + 3]) in third
                        or not (  # not Chinese: the run ends, what follows may go on
                            "\u4e00" <= c <= "\u9fff"
                            or "\u3400" <= c <= "\u4dbf"
                            or "\uf900" <= c <= "\ufaff"
                        )
                    ):
                        found.append(p)
            if single_re is not None:
                found.extend(map(_match_start, single_re.finditer(text, lo, hi)))
            if end_re is not None:
                # a last character that begins a key, and the next run joins it: the window's
                # end (not hi) bounds the look ahead
                end = starts[-1] + len(runs[-1])
                found.extend(p for p in map(_match_start, end_re.finditer(text, lo, end)) if p < hi)
            if found:
                if single:
                    found = list(set(found))
                todo.extend((p, bisect_right(starts, p, 0, n_start) - 1) for p in found)
                todo.sort()
            for p, r in todo:
                info = infos[r]
                if info is not None:  # a Latin run: its units that begin a key
                    for q, frontier, hit, follow, s_off, e_off, goes_on in info[2]:
                        if goes_on is None:  # the last unit: can the next run go on?
                            goes_on = follow is None or (
                                r + 1 < n and joins[r + 1] and runs[r + 1][0].lower() in follow
                            )
                        if goes_on:
                            walk(window, r, q, frontier, 1, p + s_off, False, emit)
                        elif hit:  # a key of one unit, and no more
                            for acc, exp in frontier:
                                for concept, kind in keys_get(acc, ()):
                                    emit((p + s_off, p + e_off, concept, kind, 1, acc, exp))
                    continue
                # a Chinese character: inside its run every unit is the next character
                run = runs[r]
                s = starts[r]
                last = len(run) - 1
                q = p - s
                if single and run[q] in single:
                    for concept, kind in keys_get(run[q], ()):
                        emit((p, p + 1, concept, kind, 1, run[q], False))
                if q == last:
                    acc = run[q]
                    cq = q
                else:
                    acc = run[q : q + 2]
                    if single and acc not in short:
                        continue  # a one-character key only (else the pair begins a key)
                    cq = q + 1
                    top = min(last, q + MAX_UNITS - 1)
                    while True:
                        hits = keys_get(acc)
                        if hits:
                            for concept, kind in hits:
                                emit((p, s + cq + 1, concept, kind, cq - q + 1, acc, False))
                        if cq >= top:
                            break
                        longer = run[q : cq + 2]
                        if len(longer) <= short_len:
                            if longer not in short:
                                break
                        else:
                            k = bisect_left(sorted_keys, longer)
                            if k >= n_keys or not sorted_keys[k].startswith(longer):
                                break
                        acc = longer
                        cq += 1
                if cq == last and cq - q + 1 < MAX_UNITS and r + 1 < n and joins[r + 1]:
                    # at the run's end: the next run may go on with the term
                    walk(window, r, cq, ((acc, False),), cq - q + 1, p, True, emit)
            yield out

    def _walk(
        self,
        window: tuple[list[str], list[int], list[bool], list[_RunInfo | None], int],
        cr: int,
        cq: int,
        frontier: Sequence[tuple[str, bool]],
        units: int,
        s0: int,
        given: bool,
        emit: Callable[[_Raw], None],
    ) -> None:
        """Extend ``frontier`` (the keys so far, and whether an abbreviation was expanded)
        unit by unit from unit ``cq`` of run ``cr``, giving a match wherever one is a key.
        ``given``: the matches of this first frontier were given already."""
        runs, starts, joins, infos, n = window
        keys_get = self.keys.get
        short, sorted_keys = self._short, self._sorted
        unit_get, unit_info = self._info.get, self._unit_info
        while True:
            info = infos[cr]
            if not given:
                e = starts[cr] + (cq + 1 if info is None else info[1][cq])
                for acc, exp in frontier:
                    hits = keys_get(acc)
                    if hits:
                        for concept, kind in hits:
                            emit((s0, e, concept, kind, units, acc, exp))
            given = False
            if units >= MAX_UNITS:
                return
            # the next unit: in this run, or the first of the next if it may join
            if cq + 1 < (len(runs[cr]) if info is None else len(info[0])):
                cq += 1
            else:
                cr += 1
                if cr >= n or not joins[cr]:
                    return
                cq = 0
                info = infos[cr]
            if info is None:
                alts: Sequence[tuple[str, bool]] = ((runs[cr][cq], False),)
            else:
                part = info[0][cq]
                alts = (unit_get(part) or unit_info(part))[0]
            longer = []
            for acc, exp in frontier:
                for alt, alt_exp in alts:
                    key = acc + alt
                    if len(key) <= _PREFIX_SET_LEN:
                        if key not in short:
                            continue
                    else:
                        k = bisect.bisect_left(sorted_keys, key)
                        if k >= len(sorted_keys) or not sorted_keys[k].startswith(key):
                            continue
                    longer.append((key, exp or alt_exp))
            if not longer:
                return
            frontier = longer
            units += 1

    def all_matches(self, text: str) -> list[Match]:
        """Every (possibly overlapping) occurrence of a term in ``text``."""
        return [Match(*r) for r in self._raw(text)]

    def _chosen(self, text: str) -> Iterator[list[_Raw]]:
        """Non-overlapping matches, longest first, in text order (see ``find``), a list per
        window (memory stays bounded by a window, whatever the text)."""
        group: list[_Raw] = []
        group_end = -1
        for found in self._raw_windows(text):
            out: list[_Raw] = []
            for r in found:  # by start: a group closes where no match reaches over
                if r[0] >= group_end:
                    if group:
                        out.extend(_choose(group) if len(group) > 1 else group)
                    group = [r]
                    group_end = r[1]
                else:
                    group.append(r)
                    if r[1] > group_end:
                        group_end = r[1]
            yield out
        if group:
            yield _choose(group) if len(group) > 1 else group

    def find(self, text: str) -> list[Match]:
        """Non-overlapping matches, longest first, in text order. A match that overlaps a
        longer one (or one as long with more units, or as long further left) is dropped, except
        that the same span may name several concepts (an ambiguous alias): all are kept."""
        return [Match(*r) for chosen in self._chosen(text) for r in chosen]

    def concepts_in(self, text: str) -> list[str]:
        """Concept ids ``find`` gives, most mentioned first (ties: first mention)."""
        counts: dict[str, int] = {}
        for chosen in self._chosen(text):
            for r in chosen:
                counts[r[2]] = counts.get(r[2], 0) + 1
        return sorted(counts, key=counts.__getitem__, reverse=True)  # stable: ties in order

    def exact(self, text: str) -> list[str]:
        """Concept ids whose term is exactly ``text`` (separators and case ignored)."""
        return [c for c, _ in self.keys.get(term_key(text), ())]


def _chinese_begins(
    keys: Iterable[str],
) -> tuple[dict[str, Literal[True] | frozenset[str]], set[str]]:
    """(two Chinese characters that begin a key -> True when they are one, else the
    characters that can come third; the Chinese characters that begin a key)."""
    key_set = keys if isinstance(keys, (set, dict)) else set(keys)
    thirds: dict[str, set[str]] = {}
    firsts: set[str] = set()
    for k in key_set:
        if k[0] > "\x7f":  # key characters are a-z, 0-9 or Chinese
            firsts.add(k[0])
            if len(k) > 1 and k[1] > "\x7f":
                thirds.setdefault(k[:2], set()).update(k[2:3])
    pairs: dict[str, Literal[True] | frozenset[str]] = {
        p: True if p in key_set else frozenset(t) for p, t in thirds.items()
    }
    return pairs, firsts


def _choose(group: list[_Raw]) -> list[_Raw]:
    """The greedy choice of ``find`` over matches that overlap in a chain: by length, then
    units, then start; a match is kept when nothing kept overlaps it, or when a kept match has
    exactly its span. Taken characters are marked in a bytearray: O(total span) + a sort."""
    if len(group) == 2:  # the usual case: two that overlap ("KV" in "KV cache")
        a, b = group
        if (a[0] - a[1], -a[4], a[0]) > (b[0] - b[1], -b[4], b[0]):
            a, b = b, a
        return group if (a[0], a[1]) == (b[0], b[1]) else [a]
    base = group[0][0]
    width = max(r[1] for r in group) - base
    taken = bytearray(width)
    spans: set[tuple[int, int]] = set()
    chosen: list[_Raw] = []
    for r in sorted(group, key=lambda r: (r[0] - r[1], -r[4], r[0])):
        s, e = r[0] - base, r[1] - base
        if taken.find(1, s, e) != -1:
            if (s, e) not in spans:
                continue
        else:
            taken[s:e] = b"\x01" * (e - s)
            spans.add((s, e))
        chosen.append(r)
    chosen.sort(key=lambda r: (r[0], r[1]))
    return chosen


_match_start = operator.methodcaller("start")
_TWO = itertools.repeat(2)


def _char_class(chars: Iterable[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def _is_acronym(text: str) -> bool:
    return text.isascii() and " " not in text and sum(map(str.isupper, text)) >= 2
