"""Which Q&A a concept's card shows: the one that best defines it, and a stand-in from a
covering concept where no Q&A names it."""

from __future__ import annotations

import pytest

from llmref.corpus.entry import Entry
from llmref.glossary import Concept
from llmref.lookup import about_key, question_kind


@pytest.mark.parametrize(
    ("concept", "question_part"),
    [
        ("top-p-sampling", "温度系数和 top-p"),  # not the GPT-4 Turbo edge case
        ("repetition-problem", "什么是 LLMs 复读机问题"),
        ("repetition-penalty", "如何缓解 LLMs 复读机问题"),  # covered_by: Repetition problem
        ("learned-position-embedding", "position embedding"),  # not an attention Q&A
        ("pipeline-parallelism", "GPipe"),
        ("swiglu", "Swish 的 GLU"),
        ("rlhf", "RLHF完整训练过程"),
        ("kv-cache", "什么是 Kv cache"),
    ],
)
def test_card_shows_the_defining_qa(reference, concept, question_part):
    card = reference.card(concept)
    assert card is not None and card.entry is not None, concept
    assert question_part in card.entry.question


def test_concepts_the_corpus_does_not_answer_stay_answerless(reference):
    for concept in ("gguf", "faiss", "fsdp"):
        assert reference.about(concept) == []


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("什么是位置编码？", 0),
        ("LLM是如何预训练的？", 0),
        ("为什么会出现 LLMs 复读机问题", 1),
        ("温度系数和 top-p、top-k 参数有什么区别？", 2),
        ("为什么G4-turbo在topp=0.0的情况下，还不能保证预测稳定性？", 2),
    ],
)
def test_question_kind(question, kind):
    assert question_kind(question) == kind


def _entry(question: str, q: list[str], a: list[str], line: int = 1) -> Entry:
    return Entry(
        id=f"x:{line}",
        question=question,
        answer="…",
        source="x.md",
        path="",
        line=line,
        end_line=line,
        question_concepts=q,
        concepts=q + a,
    )


def test_about_key_is_per_entry_and_orders_by_tier():
    concept = Concept(id="c", name="C", related=["r1", "r2"], covered_by=["p"])
    named = _entry("为什么 C 的情况下会失败？", ["c"], [])
    defines = _entry("什么是 C？", ["c"], [], line=2)
    in_answer = _entry("什么是 r1？", ["r1"], ["c"], line=3)
    stand_in = _entry("什么是 p？", ["p"], ["r1"], line=4)
    unrelated = _entry("什么是 z？", ["z"], [], line=5)
    keys = {e.line: about_key(e, concept) for e in (named, defines, in_answer, stand_in)}
    assert about_key(unrelated, concept) is None
    assert sorted(keys, key=lambda n: keys[n]) == [2, 1, 4, 3]
