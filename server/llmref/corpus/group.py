"""Group entries that ask the same question in different sources ("also in …").

Two questions are the same when they ask about the same *aspect* (difference, pros, cons,
why, how, formula, code, idea) and either their *intent keys* — the question folded, with
interrogative filler removed and a few synonyms unified (区别/不同/不一样, 为何/为什么,
架构/结构 …) — are near-identical by character-bigram Dice similarity, or they are fairly
similar and name exactly the same glossary concepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..normalize import fold
from .entry import Entry

THRESHOLD = 0.85  # text alone
CONCEPT_THRESHOLD = 0.6  # text + the same concept set

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
_NON_WORD = re.compile(r"[^0-9a-z\u3400-\u9fff]+")


def intent_key(question: str) -> str:
    text = fold(question)
    for pattern, repl in _SYNONYMS:
        text = re.sub(pattern, repl, text)
    return _NON_WORD.sub("", text)


def aspects(question: str) -> frozenset[str]:
    text = fold(question)
    return frozenset(name for name, pattern in _ASPECTS.items() if re.search(pattern, text))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the character bigrams of two intent keys."""
    ga, gb = _bigrams(a), _bigrams(b)
    return 2 * len(ga & gb) / (len(ga) + len(gb))


def group_duplicates(
    entries: list[Entry], question_concepts: list[frozenset[str]] | None = None
) -> None:
    """Set ``group`` and ``also_in`` on entries that ask the same question.

    ``question_concepts``: the glossary concepts each question names (parallel to entries).
    """
    grams = [_bigrams(intent_key(e.question)) for e in entries]
    kinds = [aspects(e.question) for e in entries]
    concepts = question_concepts or [frozenset()] * len(entries)
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            if kinds[i] != kinds[j]:
                continue
            gi, gj = grams[i], grams[j]
            dice = 2 * len(gi & gj) / (len(gi) + len(gj))
            same_concepts = bool(concepts[i]) and concepts[i] == concepts[j]
            if dice >= THRESHOLD or (same_concepts and dice >= CONCEPT_THRESHOLD):
                parent[find(j)] = find(i)

    members: dict[int, list[int]] = {}
    for i in range(len(entries)):
        members.setdefault(find(i), []).append(i)
    for e in entries:
        e.group, e.also_in = None, []
    for idx in members.values():
        if len(idx) < 2:
            continue
        key = entries[idx[0]].id
        for i in idx:
            entries[i].group = key
            entries[i].also_in = [entries[j].id for j in idx if j != i]


# --- one entry at a time (the incremental store uses these) ------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """Everything grouping needs to know about one question."""

    key: str  # intent key
    aspects: frozenset[str]
    concepts: frozenset[str]


def signature(question: str, question_concepts: Iterable[str]) -> Signature:
    return Signature(intent_key(question), aspects(question), frozenset(question_concepts))


def grams(sig: Signature) -> frozenset[str]:
    return frozenset(_bigrams(sig.key))


def same_question(a: Signature, b: Signature) -> bool:
    """Today's rule: the same aspects, and near-identical intent keys (or fairly similar
    ones naming exactly the same, non-empty, concept set)."""
    if a.aspects != b.aspects:
        return False
    dice = similarity(a.key, b.key)
    return dice >= THRESHOLD or (bool(a.concepts) and a.concepts == b.concepts and dice >= CONCEPT_THRESHOLD)


def probe_grams(sig: Signature, rank: Callable[[str], int]) -> list[str]:
    """Prefix-filter tokens under a fixed global order (rank: lower = rarer): two signatures
    that are the same question share at least one probe gram."""
    ordered = sorted(grams(sig), key=lambda g: (rank(g), g))
    # Dice >= t means overlap >= t/(2-t) * |A| in Jaccard terms for the larger set; the
    # prefix of length |A| - ceil(j * |A|) + 1 must meet the other's prefix.
    j = CONCEPT_THRESHOLD / (2 - CONCEPT_THRESHOLD)
    size = len(ordered)
    keep = size - math.ceil(j * size) + 1
    return ordered[: max(1, keep)]


def group_labels(sigs: Sequence[Signature]) -> list[int]:
    """A component label per signature (same question = same label)."""
    parent = list(range(len(sigs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(sigs)):
        for j in range(i + 1, len(sigs)):
            if same_question(sigs[i], sigs[j]):
                parent[find(j)] = find(i)
    return [find(i) for i in range(len(sigs))]
