"""Per-entry facts the index and the cards rank by: which concepts an entry names (tagging),
the names indexed for them, and how well an entry answers a concept. Each is a function of
one entry (and the glossary), so the index can be updated one file at a time.
Core: no pygls, no lsprotocol, no Whoosh."""

from __future__ import annotations

import re
from collections.abc import Sequence

from .corpus.entry import Entry
from .glossary import Concept, Glossary


def tag_entry(entry: Entry, glossary: Glossary) -> None:
    """Set the concepts an entry names: those of its question first, then its answer's."""
    in_question = glossary.concepts_in(entry.question)
    in_answer = glossary.concepts_in(f"{entry.detail}\n{entry.answer}")
    entry.question_concepts = in_question
    entry.concepts = in_question + [c for c in in_answer if c not in in_question]


def names_text(entry: Entry, glossary: Glossary) -> str:
    """The names of the concepts the question names (indexed in the names field)."""
    lines: list[str] = []
    for cid in entry.question_concepts:
        concept = glossary.get(cid)
        if concept is not None:
            lines.append(" ; ".join(concept.names()))
    return "\n".join(lines)


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
