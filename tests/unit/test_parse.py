"""The parser: every question of the five seed layouts, and user notes in any of them."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from llmref.corpus.loader import load_corpus
from llmref.corpus.parse import QUESTION_LAYOUTS, TEXT_LAYOUTS, parse_markdown

from ..conftest import CORPUS, DATA, SHARED, shared_copy

SEEDS = {
    "baimian-llm-swtheking.md": ("setext", 4),
    "baimian-llm-qa-dpo-sft.md": ("qa-heading", 25),
    "llm-interview-104-questions.md": ("numbered-heading", 104),
    "llm-interview-notion-q23.md": ("bold-q", 23),
    "llm-interview-experience-basics.md": ("numbered-line", 9),
}


def parse_all(name: str):
    return parse_markdown((CORPUS / name).read_text(encoding="utf-8"), name, str(CORPUS / name))


def parse_seed(name: str):
    """The questions of a seed document (its other text is in section entries)."""
    return [e for e in parse_all(name) if e.layout in QUESTION_LAYOUTS]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_each_seed_layout_yields_every_question(name):
    layout, count = SEEDS[name]
    entries = parse_all(name)
    questions = parse_seed(name)
    assert len(questions) == count
    assert Counter(e.layout for e in questions) == {layout: count}
    assert {e.layout for e in entries} - {layout} <= TEXT_LAYOUTS
    assert len({e.id for e in entries}) == len(entries)


def test_whole_corpus_has_165_questions_and_ignores_sources_md():
    corpus = load_corpus([(CORPUS, "")])
    assert sum(e.layout in QUESTION_LAYOUTS for e in corpus.entries) == 165
    assert not corpus.problems
    assert {f.display for f in corpus.files} == set(SEEDS)
    # the text around the questions: a title with its byline, references, category headings
    assert [(e.source, e.line, e.question) for e in corpus.entries if e.layout in TEXT_LAYOUTS] == [
        ("baimian-llm-qa-dpo-sft.md", 366, "参考资料"),
        ("baimian-llm-swtheking.md", 1, "大模型面试题系列专栏-百面LLM&By&&swtheking"),
        ("llm-interview-experience-basics.md", 3, "大模型(LLMs)面试经验 › 大模型基础面试"),
        ("llm-interview-experience-basics.md", 115, "大模型(LLMs)面试经验 › 大模型 Langchain 面试"),
        ("llm-interview-notion-q23.md", 1, "LLM"),
    ]


def test_entry_fields_for_a_numbered_heading():
    e = next(e for e in parse_seed("llm-interview-104-questions.md") if "Kv cache" in e.question)
    assert e.question == "什么是 Kv cache 技术，它具体是如何实现的？"
    assert e.line == 180 and e.end_line == 186
    assert e.answer.startswith("Kv cache 技术（Key-Value Cache）")
    assert "### 22" not in e.answer
    assert e.source == "llm-interview-104-questions.md"
    assert e.id.startswith("llm-interview-104-questions:")


def test_ids_are_stable_across_parses_and_edits_elsewhere():
    text = (CORPUS / "llm-interview-104-questions.md").read_text(encoding="utf-8")
    before = {e.question: e.id for e in parse_markdown(text, "x.md")}
    edited = "### 0. 新插入的问题？\n\n答案。\n\n" + text
    after = {e.question: e.id for e in parse_markdown(edited, "x.md")}
    assert all(after[q] == i for q, i in before.items())


def test_qa_heading_strips_labels_and_keeps_question_details():
    entries = parse_seed("baimian-llm-qa-dpo-sft.md")
    first = entries[0]
    assert first.question == "DPO的第0步loss是固定的么？如果固定，是多少？"
    assert first.answer.startswith("loss=−logsigmoid")
    assert "回答" not in first.answer[:10]
    hidden = next(e for e in entries if e.question.startswith("如果我们把推理结果"))
    assert "A：关键段落藏在头部" in hidden.detail
    assert hidden.answer.startswith("B > A > C > D")
    # the "参考资料" section ends the last question and is not a question: a section entry
    assert entries[-1].question == "In Context Learning和SFT的关系是什么？"
    assert "参考资料" not in entries[-1].answer
    refs = parse_all("baimian-llm-qa-dpo-sft.md")[-1]
    assert (refs.layout, refs.question, refs.line) == ("section", "参考资料", 366)
    assert refs.answer.startswith("百面LLM： https://www.zhihu.com/column/")


def test_entity_search_links_become_text_and_redirects_point_at_targets():
    entries = parse_seed("baimian-llm-qa-dpo-sft.md")
    text = "\n".join(e.question + e.detail + e.answer for e in entries)
    assert "zhida.zhihu.com" not in text
    assert "link.zhihu.com" not in text
    assert "https://openai.com/blog/our-approach-to-alignment-research" in text
    q = next(e for e in entries if e.question.startswith("如果预训练阶段模型"))
    assert "[阶段模型]" not in q.question


def test_link_only_answers_are_marked_external_and_keep_the_link():
    entries = parse_seed("baimian-llm-qa-dpo-sft.md")
    external = [e for e in entries if e.external]
    assert len(external) >= 2
    assert all("https://zhuanlan.zhihu.com/p/" in e.answer for e in external)
    assert all(e.has_answer for e in external)


def test_entries_without_answer_text_are_kept_and_marked():
    q23 = parse_seed("llm-interview-notion-q23.md")
    empty = [e for e in q23 if not e.has_answer]
    assert [e.question[:6] for e in empty] == ["RLHF过程", "解释P-tu"]
    assert all(e.answer == "" for e in empty)
    # an answer that is only an image has no answer text, and keeps the image reference
    formula = next(
        e
        for e in parse_seed("llm-interview-104-questions.md")
        if e.question.startswith("RMS Norm 的计算公式")
    )
    assert not formula.has_answer
    assert "![image-20250119205445419](面试题.assets/" in formula.answer


def test_bold_q_variants_and_doubled_stars():
    q = {e.question for e in parse_seed("llm-interview-notion-q23.md")}
    assert "讲解生成式语言模型的工作机理" in q  # **Q1：…**
    assert "LLM中的tokenisation技术" in q  # Q7：**…**
    assert "哪些因素会导致LLM中的偏见？" in q  # Q9：****…****


def test_numbered_lines_under_a_section():
    entries = parse_seed("llm-interview-experience-basics.md")
    assert entries[0].question == "目前主流的开源模型体系有哪些？"
    assert entries[0].section == "大模型基础面试"
    assert entries[0].answer.startswith("目前主流的开源模型体系 分三种")  # continuation, dedented
    assert entries[6].question.startswith("大模型【LLMs】后面跟的")  # "7 …" with a space
    # the next "##" section ends the last question
    assert "Langchain" not in entries[-1].answer
    # indented Chinese prose is not left as a code block
    goal = entries[2]
    assert "    根据 已有词" not in goal.answer and "根据 已有词" in goal.answer


def test_setext_questions_and_code_blocks():
    entries = parse_seed("baimian-llm-swtheking.md")
    assert entries[1].question == "DPO的第0步loss是固定的么？如果固定，是多少？"
    assert entries[1].line == 11
    cosine = entries[3]
    assert "```text-plain" in cosine.answer and "def cosine_annealing" in cosine.answer
    assert "![](大模型面试题系列专栏-百面LLM&By&&swtheking.jpg)" in cosine.answer


NOTES = {
    "qa-heading": "## **提问**：什么是KV cache？\n\n**回答**：缓存键值。\n",
    "numbered-heading": "# 笔记\n\n### 1. 什么是KV cache？\n\n缓存键值。\n\n### 2. 什么是RoPE？\n\n旋转。\n",
    "bold-q": "**Q1：什么是KV cache？**\n\n缓存键值。\n\n**Q2：什么是RoPE？**\n\n旋转。\n",
    "numbered-line": "## 推理\n\n1、什么是KV cache？\n缓存键值。\n\n2 什么是RoPE？\n旋转。\n",
    "setext": "什么是KV cache？\n--------\n\n缓存键值。\n",
    "section": "# My notes\n\n## KV cache\n\nKeys and values are cached.\n\n### Paged\n\nBlocks.\n",
}


@pytest.mark.parametrize("layout", sorted(NOTES))
def test_user_notes_in_any_layout(layout):
    entries = parse_markdown(NOTES[layout], "notes.md")
    of_layout = [e for e in entries if e.layout == layout]
    assert of_layout, layout
    assert {e.layout for e in entries} - {layout} <= TEXT_LAYOUTS
    assert "KV cache" in of_layout[0].question
    assert of_layout[0].line >= 1 and of_layout[0].end_line >= of_layout[0].line


def test_plain_heading_notes_nest_subsections():
    entries = parse_markdown(NOTES["section"], "notes.md")
    assert [e.question for e in entries] == ["My notes › KV cache", "My notes › KV cache › Paged"]
    assert entries[0].answer.strip() == "Keys and values are cached."
    assert entries[0].section == "My notes"
    assert entries[1].section == "KV cache"


def test_numbered_statements_inside_answers_are_not_questions():
    text = "## 推理\n\n1、什么是KV cache？\n缓存键值。\n\n2023 年的工作表明……\n\n5 个要点如下\n"
    entries = parse_markdown(text, "n.md")
    assert [e.question for e in entries if e.layout in QUESTION_LAYOUTS] == ["什么是KV cache？"]
    assert "2023 年" in entries[-1].answer


def test_markdown_inside_code_fences_is_not_parsed_as_questions():
    text = "### 1. 写代码？\n\n```python\n### 2. not a heading\n**Q3：nope**\n```\n"
    entries = parse_markdown(text, "n.md")
    assert len(entries) == 1 and "### 2. not a heading" in entries[0].answer


def test_empty_and_questionless_documents():
    assert parse_markdown("", "e.md") == []
    assert parse_markdown("\n  \n\n", "blank.md") == []
    (entry,) = parse_markdown("just a paragraph\n\nand another\n", "notes/p.md")
    assert (entry.layout, entry.question, entry.line, entry.end_line) == ("file", "p", 1, 3)
    assert entry.answer == "just a paragraph\n\nand another"


def _seed_digests() -> list[str]:
    lines = (DATA / "seed-corpus.sha256").read_text(encoding="utf-8").splitlines()
    return sorted(line.split()[0] for line in lines if line.strip() and not line.startswith("#"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundled_corpus_is_the_seed_corpus_unchanged():
    bundled = sorted(_sha256(p) for p in CORPUS.glob("*.md") if p.name != "SOURCES.md")
    assert bundled == _seed_digests()
    seeds = shared_copy(SHARED / "corpus")
    if seeds is not None:  # and the recorded digests are those of the team's seed corpus
        assert sorted(_sha256(p) for p in seeds.iterdir()) == _seed_digests(), (
            f"{seeds} changed: update corpus/ and tests/data/seed-corpus.sha256"
        )
