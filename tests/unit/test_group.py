"""Same question in several sources -> one group ("also in …"); different questions never."""

from __future__ import annotations

import pytest


def group_of(reference, prefix: str):
    entry = next(e for e in reference.all() if e.question.startswith(prefix))
    return entry, [reference.entries[i] for i in entry.also_in]


@pytest.mark.parametrize(
    ("prefix", "other_prefix"),
    [
        ("DPO的第0步loss", "DPO的第0步loss"),  # 百面LLM, two layouts
        ("为何现在的大模型大部分是Decoder only结构", "为什么现在的大模型大多是 decoder-only"),
        ("GPT和bert有什么不一样", "简述 GPT 和 BERT 的区别"),
        ("如何减轻LLM中的“幻觉”现象", "如何减轻 LLM 中的 “幻觉” 现象"),
        ("Wordpiece与BPE之间有什么区别", "Wordpiece 与 BPE 之间的区别是什么"),
        ("LLM 中的因果语言建模与掩码语言建模", "LLM 中的因果语言建模CLM与屏蔽语言建模MLM"),
        ("涌现能力是啥原因", "涌现能力是啥原因"),
    ],
)
def test_duplicates_across_sources_are_grouped(reference, prefix, other_prefix):
    entry, others = group_of(reference, prefix)
    assert any(o.question.startswith(other_prefix) for o in others), [o.question for o in others]
    assert all(entry.id in o.also_in for o in others)


def test_repeated_question_inside_one_document_is_grouped(reference):
    repeats = [e for e in reference.all() if e.question.startswith("如何缓解 LLMs 复读机问题")]
    assert len(repeats) == 2 and repeats[0].group == repeats[1].group is not None


@pytest.mark.parametrize(
    "prefix",
    [
        "ALiBi（Attention with Linear Biases）思路是什么",  # vs 有什么优点
        "旋转位置编码 RoPE 思路是什么",
        "什么是绝对位置编码",  # vs 相对位置编码
        "什么是 LLMs 复读机问题",  # vs 如何缓解
        "Layer Norm 的计算公式写一下",  # vs RMS Norm
        "大模型【LLMs】具有什么优点",  # vs 缺点
    ],
)
def test_different_questions_are_not_grouped(reference, prefix):
    _entry, others = group_of(reference, prefix)
    assert others == []
