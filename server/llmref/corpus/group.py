"""Group entries that ask the same question in different sources ("also in …").

Two questions are the same when they ask about the same *aspect* (difference, pros, cons,
why, how, formula, code, idea) and either their *intent keys* — the question folded, with
interrogative filler removed and a few synonyms unified (区别/不同/不一样, 为何/为什么,
架构/结构 …) — are near-identical by character-bigram Dice similarity, or they are fairly
similar and name exactly the same glossary concepts (``same_question``).

Finding the pairs is a set-similarity join, not a comparison of every pair: under one global
order of bigrams (rarest first), two bigram sets with Dice >= t share a bigram among the first
``|A| - ceil(t|A| / (2 - t)) + 1`` of each (prefix filtering), so each question is compared
only with those that share one of its *probe grams*. The pieces work one question at a time
(``signature``, ``grams``, ``probe_grams``, ``same_question``) for an incremental store;
``group_labels`` does a full build.

Approximation, for hostile input only (the work per question is bounded): a probe gram whose
posting list already holds ``POSTING_CAP`` questions is neither scanned nor extended (100k
headings ``## Heading N`` all share their rarest bigrams), and when a question's lists hold more
than ``CANDIDATE_CAP`` candidates only those sharing the most probe grams are checked (at most
CANDIDATE_CAP of them that are not in its group already). So two
questions that share nothing but crowded grams may not be compared; questions with the same
intent key and aspects are always grouped (exact buckets). On real notes the caps are not
reached (the bundled corpus and a 1k-entry notes repository give exactly the groups of the
all-pairs comparison; the tests check it, and random lists with the caps lifted).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..normalize import fold
from .entry import Entry

THRESHOLD = 0.85  # text alone
CONCEPT_THRESHOLD = 0.6  # text + the same concept set
POSTING_CAP = 64  # questions per probe gram beyond which the gram is no longer a probe
CANDIDATE_CAP = 32  # candidates checked per question (those sharing the most probe grams)
_SCAN_FACTOR = 4  # ... among this many times as many (those grouped with it already are free)
MAX_ALSO_IN = 100  # "also in" lists at most this many other entries of a group

_ASPECTS = {
    "diff": r"区别|不同|不一样|差异|差别|相比|对比|\bvs\b",
    "pros": r"优点|优势|好处|特点",
    "cons": r"缺点|局限|不足|劣势",
    "why": r"为什么|为何|原因",
    "how": r"如何|怎么|怎样|方法|步骤|流程",
    "formula": r"公式",
    "code": r"代码|实现",
    "idea": r"思路|原理|机理|概念",
}
_ASPECT_RES = [(name, re.compile(pattern)) for name, pattern in _ASPECTS.items()]

_SYNONYMS = [
    (r"不一样|不同之处|不同|差异|差别", "区别"),
    (r"为何", "为什么"),
    (r"大部分|大多数", "大多"),
    (r"结构", "架构"),
    (r"减轻|减少|缓解|解决", "缓解"),
    (r"llms", "llm"),
    (r"大语言模型|大型语言模型|大模型", "llm"),
    (r"屏蔽", "掩码"),
    (r"单词", "词"),
    (r"讲一下|讲讲|讲解|简述|介绍一下|介绍|解释一下|解释|请问|请|说说|谈谈", ""),
    (r"什么是|是什么|有什么|什么|哪些|是否|有没有|吗|么|呢|啥", ""),
    (r"中的|之间|的|是|在|了|和|与|及|有|一下", ""),
]
_SYNONYM_RES = [(re.compile(pattern), repl) for pattern, repl in _SYNONYMS]
_NON_WORD = re.compile(r"[^0-9a-z\u3400-\u9fff]+")


def intent_key(question: str) -> str:
    text = fold(question)
    for pattern, repl in _SYNONYM_RES:
        text = pattern.sub(repl, text)
    return _NON_WORD.sub("", text)


def aspects(question: str) -> frozenset[str]:
    text = fold(question)
    return frozenset(name for name, pattern in _ASPECT_RES if pattern.search(text))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the character bigrams of two intent keys."""
    ga, gb = _bigrams(a), _bigrams(b)
    return 2 * len(ga & gb) / (len(ga) + len(gb))


# --- one question at a time -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """Everything grouping needs to know about one question."""

    key: str  # intent key
    aspects: frozenset[str]
    concepts: frozenset[str]  # the glossary concepts the question names


def signature(question: str, question_concepts: Iterable[str]) -> Signature:
    return Signature(intent_key(question), aspects(question), frozenset(question_concepts))


def grams(sig: Signature) -> frozenset[str]:
    """The bigram set of the intent key (the key itself when shorter than two)."""
    return frozenset(_bigrams(sig.key))


def _dice_ok(inter: int, size_a: int, size_b: int, same_concepts: bool) -> bool:
    dice = 2 * inter / (size_a + size_b)  # the very float expression of the original rule
    return dice >= THRESHOLD or (same_concepts and dice >= CONCEPT_THRESHOLD)


def same_question(a: Signature, b: Signature) -> bool:
    """Today's rule: same aspects, and Dice >= 0.85, or >= 0.6 with the same concepts."""
    if a.aspects != b.aspects:
        return False
    ga, gb = grams(a), grams(b)
    return _dice_ok(len(ga & gb), len(ga), len(gb), bool(a.concepts) and a.concepts == b.concepts)


# the least overlap a bigram set of size n needs with any set for Dice >= t: t*n / (2 - t)
_RATIO_TEXT = Fraction(THRESHOLD).limit_denominator(1000)
_RATIO_TEXT = _RATIO_TEXT / (2 - _RATIO_TEXT)
_RATIO_CONCEPT = Fraction(CONCEPT_THRESHOLD).limit_denominator(1000)
_RATIO_CONCEPT = _RATIO_CONCEPT / (2 - _RATIO_CONCEPT)


def _prefix_len(n: int, with_concepts: bool) -> int:
    ratio = _RATIO_CONCEPT if with_concepts else _RATIO_TEXT
    least = -((-ratio.numerator * n) // ratio.denominator)  # ceil(ratio * n)
    return n - max(least, 1) + 1


def probe_grams(sig: Signature, rank: Callable[[str], int]) -> list[str]:
    """The prefix-filter grams of a question under a global order (``rank``: lower = rarer;
    ties go by the gram itself, so the order is total). Two signatures that are the same
    question always share at least one probe gram, whatever the order, as long as both are
    probed with the same ``rank``. A question naming concepts probes the longer prefix of the
    0.6 threshold (it covers the 0.85 one)."""
    ordered = sorted(grams(sig), key=lambda g: (rank(g), g))
    return ordered[: _prefix_len(len(ordered), bool(sig.concepts))]


# --- a full build ---------------------------------------------------------------------------


def group_labels(
    sigs: Sequence[Signature],
    *,
    posting_cap: int = POSTING_CAP,
    candidate_cap: int = CANDIDATE_CAP,
) -> list[int]:
    """A component label per signature: the index of the first question of its group (a
    singleton is its own label). Candidate pairs come from probe-gram posting lists (see the
    module docstring); every candidate is checked with the exact rule."""
    n = len(sigs)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            if ri < rj:
                parent[rj] = ri
            else:
                parent[ri] = rj

    gram_sets = [grams(s) for s in sigs]
    df: Counter[str] = Counter()
    for gs in gram_sets:
        df.update(gs)
    # the global order, rarest first (ties by the gram): a position per gram
    order = {g: k for k, g in enumerate(sorted(df, key=lambda g: (df[g], g)))}
    position = order.__getitem__
    postings: dict[str, list[int]] = {}
    exact: dict[tuple[str, frozenset[str]], int] = {}
    for i, sig in enumerate(sigs):
        first = exact.setdefault((sig.key, sig.aspects), i)
        if first != i:
            union(first, i)  # the same key and aspects: the same question
        gi = gram_sets[i]
        ordered = sorted(gi, key=position)
        scanned: list[list[int]] = []
        total = 0
        for g in ordered[: _prefix_len(len(ordered), bool(sig.concepts))]:
            posted = postings.get(g)
            if posted is None:
                postings[g] = [i]
            elif len(posted) < posting_cap:  # beyond: saturated, neither scanned nor extended
                scanned.append(posted)
                total += len(posted)
        if total <= candidate_cap:
            candidates: Iterable[int] = set().union(*scanned)
        else:  # those that share the most probe grams first
            shared = Counter(itertools.chain.from_iterable(scanned))
            candidates = [j for j, _n in shared.most_common(_SCAN_FACTOR * candidate_cap)]
        for posted in scanned:
            posted.append(i)
        size_i = len(gi)
        text_min = THRESHOLD * size_i
        concept_min = CONCEPT_THRESHOLD * size_i
        aspects_i, concepts_i = sig.aspects, sig.concepts
        root_i = find(i)
        budget = candidate_cap
        for j in candidates:
            root_j = parent[j]
            if parent[root_j] != root_j:
                root_j = find(j)
            if root_j == root_i:
                continue  # grouped already (near-duplicates: most candidates), free
            if budget == 0:
                break
            budget -= 1
            gj = gram_sets[j]
            size_j = len(gj)
            # length filter (Dice is at most 2 min / sum): cheap, before the set work
            small = 2 * (size_i if size_i < size_j else size_j)
            if small < concept_min + CONCEPT_THRESHOLD * size_j - 1e-9:
                continue
            other = sigs[j]
            if other.aspects != aspects_i:
                continue
            same_concepts = bool(concepts_i) and concepts_i == other.concepts
            if not same_concepts and small < text_min + THRESHOLD * size_j - 1e-9:
                continue
            if _dice_ok(len(gi & gj), size_i, size_j, same_concepts):
                union(root_j, root_i)
                root_i = find(i)
    return [find(i) for i in range(n)]


def group_duplicates(
    entries: list[Entry], question_concepts: list[frozenset[str]] | None = None
) -> None:
    """Set ``group`` and ``also_in`` on entries that ask the same question.

    ``question_concepts``: the glossary concepts each question names (parallel to entries).
    ``group`` is the id of the group's first entry; ``also_in`` lists the other entries of the
    group (the first MAX_ALSO_IN of them, in corpus order: a group of 10,000 identical headings
    must not store 10,000 x 10,000 ids).
    """
    concepts = question_concepts or [frozenset()] * len(entries)
    labels = group_labels([signature(e.question, c) for e, c in zip(entries, concepts)])
    members: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    for e in entries:
        e.group, e.also_in = None, []
    for idx in members.values():
        if len(idx) < 2:
            continue
        key = entries[idx[0]].id
        head = idx[: MAX_ALSO_IN + 1]
        for i in idx:
            entries[i].group = key
            entries[i].also_in = [entries[j].id for j in head if j != i][:MAX_ALSO_IN]
