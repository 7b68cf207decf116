"""Every piece of a note's text is in some entry: heading sections at any level, the text before
the first heading, files without headings; long sections split; huge ones cut with a warning;
the same entries whatever the size of the pieces markdown-it parses."""

from __future__ import annotations

import hashlib
import re
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmref.corpus.entry import Entry
from llmref.corpus.loader import Problem
from llmref.corpus.parse import CUT_MARKER, QUESTION_LAYOUTS, TEXT_LAYOUTS, parse_markdown

from ..conftest import CORPUS

FIXTURES = Path(__file__).parent / "fixtures" / "notes"

_MARKUP = re.compile(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d+[.)]\s+)?(?:#{1,6}\s*)?(?:\d+[.、]\s*)?")


def parse_fixture(name: str) -> list[Entry]:
    return parse_markdown((FIXTURES / name).read_text(encoding="utf-8"), name, str(FIXTURES / name))


def outline(entries: list[Entry]) -> list[tuple[str, int, str]]:
    return [(e.layout, e.line, e.question) for e in entries]


def front_matter_lines(lines: list[str]) -> int:
    if lines and lines[0].strip() in ("---", "+++"):
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "...", "+++"):
                return i + 1
    return 0


def assert_nothing_lost(text: str, entries: list[Entry]) -> None:
    """Entry ranges follow each other without overlap; every non-blank line (front matter
    aside) is in the range of an entry that holds its text, or is a heading whose text is in
    the heading path of the next entry (a heading with no text of its own)."""
    lines = text.replace("\r\n", "\n").split("\n")
    spans = sorted(entries, key=lambda e: e.line)
    for a, b in pairwise(spans):
        assert a.end_line < b.line, (a.end_line, b.line)
    owner: dict[int, Entry] = {}
    for e in spans:
        assert 1 <= e.line <= e.end_line <= len(lines)
        for n in range(e.line, e.end_line + 1):
            owner[n] = e
    skip = front_matter_lines(lines)
    for n, line in enumerate(lines, 1):
        content = _MARKUP.sub("", line).strip().strip("#").strip()
        if n <= skip or not content or set(content) <= set("-=*_ |:"):
            continue
        e = owner.get(n)
        if e is not None and (content in e.answer or content in e.detail or content in e.question):
            continue
        later = [x for x in entries if x.line > n]
        assert line.lstrip().startswith("#") and later, f"line {n} lost: {line!r}"
        assert content in min(later, key=lambda x: x.line).question, f"line {n} lost: {line!r}"


# --- each note shape ------------------------------------------------------------------------------


SHAPES = {
    "title-intro-h4.md": [
        ("section", 1, "分布式训练概述"),
        ("section", 7, "分布式训练概述 › 数据并行"),
        ("section", 11, "分布式训练概述 › 张量并行"),
        ("section", 15, "分布式训练概述 › 流水线并行"),
    ],
    "code-walkthrough.md": [
        ("section", 1, "llama 2代码详解"),
        ("section", 5, "llama 2代码详解 › 2.模型结构"),
        ("section", 9, "llama 2代码详解 › 2.模型结构 › 2.1 RMSNorm"),
        ("section", 13, "llama 2代码详解 › 2.模型结构 › 2.1 RMSNorm › 代码"),
        ("section", 24, "llama 2代码详解 › 2.模型结构 › 2.2 RoPE › （1）绝对位置编码"),
        ("section", 28, "llama 2代码详解 › 2.模型结构 › 2.2 RoPE › （2）旋转位置编码"),
        ("section", 32, "llama 2代码详解 › 参考资料"),
    ],
    "questions-then-section.md": [
        ("section", 1, "推理面试题"),
        ("numbered-heading", 5, "什么是 KV cache？"),
        ("numbered-heading", 9, "什么是 PagedAttention？"),
        ("section", 17, "推理面试题 › 总结"),
    ],
    "no-heading.md": [("file", 1, "no-heading")],
    "front-matter.md": [
        ("preamble", 5, "front-matter"),
        ("section", 7, "Loss scaling"),
        ("section", 13, "bf16"),
    ],
    "setext.md": [
        ("section", 1, "Attention notes"),
        ("setext", 6, "What is multi-query attention?"),
        ("section", 11, "Grouped-query attention"),
    ],
    "nested-headings.md": [
        ("section", 1, "Checklist"),
        ("section", 11, "Checklist › Real section"),
    ],
    "html-blocks.md": [("section", 1, "Serving"), ("section", 7, "Serving › Batching")],
    "tables.md": [("section", 3, "Precision › Formats")],
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_note_shapes_become_entries_and_lose_no_text(name):
    entries = parse_fixture(name)
    assert outline(entries) == SHAPES[name]
    assert_nothing_lost((FIXTURES / name).read_text(encoding="utf-8"), entries)
    assert all(e.source == name and e.path == str(FIXTURES / name) for e in entries)


def test_every_fixture_has_an_expected_outline():
    assert {p.name for p in FIXTURES.glob("*.md")} == set(SHAPES)


def test_title_intro_and_deep_sections():
    intro, data, *_ = parse_fixture("title-intro-h4.md")
    assert intro.answer == "这篇笔记整理分布式训练的几种并行方式。\n\n先看数据并行，再看模型并行。"
    assert (intro.end_line, intro.section) == (5, None)
    assert data.answer == "每张卡保存完整的模型副本，各自处理一部分数据，再同步梯度。"
    assert (data.end_line, data.section, data.has_answer) == (9, "分布式训练概述", True)


def test_code_walkthrough_keeps_code_in_its_section():
    entries = {e.question.rsplit(" › ", 1)[-1]: e for e in parse_fixture("code-walkthrough.md")}
    code = entries["代码"]
    assert code.answer.startswith("```python\nclass RMSNorm(nn.Module):")
    assert "    def forward(self, x):" in code.answer  # code is not dedented
    assert (code.line, code.end_line) == (13, 20)
    # "2.模型结构" reads as a chapter (its next heading is a deeper one), not as a question
    assert entries["2.模型结构"].answer == "模型由多层 decoder 组成。"


def test_text_between_questions_belongs_to_entries():
    intro, kv, paged, summary = parse_fixture("questions-then-section.md")
    assert intro.answer == "下面的问题都来自推理方向的面试。"
    assert kv.answer == "缓存已经算过的 key 和 value，避免重复计算。"
    assert kv.section == "推理面试题"
    assert "#### 补充" in paged.answer and "vLLM" in paged.answer  # a deeper heading: answer
    assert summary.answer == "推理优化主要围绕显存和带宽。"
    assert summary.layout not in QUESTION_LAYOUTS


def test_front_matter_is_not_indexed_and_breaks_nothing():
    entries = parse_fixture("front-matter.md")
    text = "\n".join(e.question + e.answer for e in entries)
    assert "title:" not in text and "tags:" not in text
    assert entries[0].answer == "Notes on mixed precision training."
    # a thematic break later in the body is just text of its section
    assert entries[1].answer.endswith("---")
    assert entries[2].answer == "bf16 keeps the fp32 exponent range."


def test_front_matter_needs_keys_and_a_closing_line():
    # a leading thematic break is no front matter: the text after it stays
    entries = parse_markdown("---\n\nSome text.\n\n## A\n\nMore.\n", "n.md")
    assert outline(entries) == [("preamble", 1, "n"), ("section", 5, "A")]
    assert "Some text." in entries[0].answer
    toml = parse_markdown('+++\ntitle = "x"\n+++\n\nBody.\n', "t.md")
    assert outline(toml) == [("file", 5, "t")] and toml[0].answer == "Body."


def test_headings_inside_lists_and_quotes_are_text_of_their_section():
    checklist, real = parse_fixture("nested-headings.md")
    assert "## not a section: inside a list item" in checklist.answer
    assert "> ## quoted heading, not a section" in checklist.answer
    assert real.answer == "Real text."


def test_html_blocks_are_text_and_hide_no_headings():
    serving, batching = parse_fixture("html-blocks.md")
    assert '<div align="center">' in serving.answer
    assert "## commented-out heading" in batching.answer  # inside an HTML comment
    assert "## not a heading either" in batching.answer  # inside <pre>
    assert "Requests finish at different times." in batching.answer


def test_tables_are_text_of_their_section():
    (formats,) = parse_fixture("tables.md")
    assert "| bf16   | 8             | 7             |" in formats.answer
    assert formats.answer.endswith("bf16 trades mantissa for range.")


def test_setext_titles_are_sections_and_dashed_ones_questions():
    title, question, grouped = parse_fixture("setext.md")
    assert title.answer == "Intro to the attention notes."
    assert question.section == "Attention notes"
    assert question.answer == "All heads share one key and one value projection."
    assert grouped.answer == "Groups of heads share keys and values."


def test_empty_headings_live_in_paths_or_are_entries_at_the_end_of_a_branch():
    text = "# A\n\n## B\n\n### C\n\ntext\n\n## D\n\n## E\n\ne text\n\n## F\n"
    assert outline(parse_markdown(text, "n.md")) == [
        ("section", 5, "A › B › C"),
        ("section", 9, "A › D"),
        ("section", 11, "A › E"),
        ("section", 15, "A › F"),
    ]
    d = parse_markdown(text, "n.md")[1]
    assert (d.answer, d.has_answer) == ("", False)
    # headings above a run of questions: one entry carries the whole path
    qs = "# 面试\n\n## 推理\n\n### 1. 什么是KV cache？\n\n缓存。\n"
    assert outline(parse_markdown(qs, "q.md")) == [
        ("section", 3, "面试 › 推理"),
        ("numbered-heading", 5, "什么是KV cache？"),
    ]


def test_heading_paths_use_plain_text():
    text = "# **Title** `x`\n\n## [Link](http://a.b) &amp; more&#x20;\n\ntext\n"
    (entry,) = parse_markdown(text, "n.md")
    assert entry.question == "Title x › Link & more"


# --- splitting and cutting ------------------------------------------------------------------------


def big_section(paragraphs: int, size: int = 500) -> str:
    body = "\n\n".join(f"paragraph {n} " + "词" * size for n in range(paragraphs))
    return f"# Notes\n\n## Big\n\n{body}\n\n## After\n\nafter text\n"


def test_a_long_section_is_split_at_paragraphs_near_the_budget():
    text = big_section(30)
    entries = parse_markdown(text, "n.md")
    parts = [e for e in entries if e.question.startswith("Notes › Big")]
    assert [e.question for e in parts[:3]] == ["Notes › Big", "Notes › Big (2)", "Notes › Big (3)"]
    assert all(len(e.answer) <= 4000 for e in parts)
    assert len(parts) == 5  # 30 × ~514 characters in parts of at most 4,000
    lines = text.split("\n")
    for e in parts[1:]:  # each part starts at its own paragraph
        assert lines[e.line - 1].startswith("paragraph ")
        assert e.answer.startswith(lines[e.line - 1])
    assert parts[0].line == 3 and parts[0].answer.startswith("paragraph 0 ")
    assert entries[-1].question == "Notes › After"
    assert_nothing_lost(text, entries)
    joined = "\n\n".join(e.answer for e in parts)
    assert all(f"paragraph {n} " in joined for n in range(30))


def test_split_budget_is_a_parameter_and_a_huge_block_stays_whole():
    text = big_section(6, 100)
    assert len(parse_markdown(text, "n.md", split_chars=100)) == 6 + 1  # a part per paragraph
    code = "## Code\n\n```\n" + "x = 1\n" * 2000 + "```\n"
    (entry,) = parse_markdown(code, "c.md", split_chars=1000)
    assert entry.answer.count("x = 1") == 2000


def test_preamble_and_files_without_headings_are_split_too():
    body = "\n\n".join(f"p{n} " + "x" * 900 for n in range(10))
    entries = parse_markdown(body + "\n", "dir/plain.md")
    assert [e.question for e in entries][:2] == ["plain", "plain (2)"]
    assert {e.layout for e in entries} == {"file"}
    assert_nothing_lost(body, entries)


def test_a_section_over_the_cap_is_cut_with_one_warning():
    text = big_section(40, 100) + "\n## Later\n\nlater text\n" + big_section(40, 100)
    problems: list[Problem] = []
    entries = parse_markdown(text, "n.md", "/notes/n.md", problems, max_section_chars=2000)
    assert len(problems) == 1  # one per document
    assert problems[0].path == "/notes/n.md" and problems[0].line == 3
    assert "section longer than 2,000 characters" in problems[0].message
    after = next(e for e in entries if e.question == "Notes › After")
    big = [e for e in entries if e.question.startswith("Notes › Big") and e.line < after.line]
    text_of_big = "".join(e.answer for e in big)
    assert big[-1].answer.endswith(CUT_MARKER.strip())
    assert len(text_of_big) <= 2000 + len(CUT_MARKER)
    assert "paragraph 39" not in text_of_big
    # the section's range still reaches its end: nothing falls between entries
    assert big[-1].end_line == after.line - 2
    assert any(e.answer == "later text" for e in entries)
    # the second big section (same cap) is cut too, without another warning
    again = [e for e in entries if e.question.startswith("Notes › Big") and e.line > after.line]
    assert again and again[-1].answer.endswith(CUT_MARKER.strip())


def test_a_question_over_the_cap_is_cut_too():
    text = "### 1. 什么是长答案？\n\n" + "长" * 5000 + "\n\n### 2. 下一个？\n\n短。\n"
    problems: list[Problem] = []
    first, second = parse_markdown(text, "q.md", "", problems, max_section_chars=1000)
    assert first.answer.endswith(CUT_MARKER.strip()) and len(first.answer) < 1100
    assert second.answer == "短。"
    assert problems and problems[0].path == "q.md"  # no path: the source names the file


def test_one_enormous_line_is_cut_inside_the_line():
    text = "# Big\n\n" + "word " * 100_000 + "\n"
    problems: list[Problem] = []
    (entry,) = parse_markdown(text, "b.md", "", problems, max_section_chars=10_000)
    assert len(entry.answer) < 10_100 and entry.answer.endswith(CUT_MARKER.strip())
    assert len(problems) == 1


def test_parse_markdown_keeps_its_old_signature():
    entries = parse_markdown("## A\n\ntext\n", "a.md", "/x/a.md")
    assert outline(entries) == [("section", 1, "A")] and entries[0].path == "/x/a.md"


# --- ids, line endings ----------------------------------------------------------------------------


def test_ids_are_slug_and_hash_of_the_question_with_repeats_numbered():
    text = "# T\n\n## Same\n\none\n\n## Same\n\ntwo\n"
    first, second = parse_markdown(text, "My Notes.md")
    digest = hashlib.sha1("T › Same".encode()).hexdigest()[:8]
    assert (first.id, second.id) == (f"my-notes:{digest}", f"my-notes:{digest}-2")


def test_question_ids_never_depend_on_the_sections_around_them():
    alone = parse_markdown("### 1. 什么是 RoPE？\n\n旋转。\n", "n.md")
    text = "## 什么是 RoPE？\n\n导言。\n\n### 1. 什么是 RoPE？\n\n旋转。\n"
    with_section = parse_markdown(text, "n.md")
    question = next(e for e in with_section if e.layout == "numbered-heading")
    assert question.id == alone[0].id
    assert {e.id for e in with_section} == {question.id, question.id + "-2"}


def test_line_numbers_survive_crlf_and_unicode_line_separators():
    text = "## A\u2028still A\r\n\r\ntext\x0cmore\r\n\r\n## B\r\n\r\nb text\r\n"
    a, b = parse_markdown(text, "n.md")
    assert (a.line, b.line) == (1, 5)
    assert b.answer == "b text"


# --- whatever the pieces markdown-it parses -----------------------------------------------------

BLOCKS = st.sampled_from(
    [
        "# Title",
        "## Section",
        "### 1. 什么是 KV cache？",
        "#### 2.1 RMSNorm",
        "##### deep",
        "Setext title\n============",
        "问题？\n-----",
        "**Q1：什么是 RoPE？**",
        "1、什么是 LoRA？",
        "Plain paragraph with words.\ncontinued line",
        "- item one\n- item two\n\n  more of item two",
        "1. first\n2. second",
        "> quoted\n> ## quoted heading",
        "```python\n# not a heading\nx = 1\n```",
        "~~~\n## not a heading\n~~~",
        "    indented code",
        "<!-- comment\n\n## hidden\n-->",
        "<div>\n## html\n</div>",
        "<pre>\n\n# pre\n\n</pre>",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "---",
        "[ref]: http://example.com",
        "",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(BLOCKS, max_size=25), st.sampled_from(["\n\n", "\n", "\n\n\n"]))
def test_any_document_is_covered_and_parsed_the_same_in_pieces(blocks, sep):
    text = sep.join(blocks)
    whole = parse_markdown(text, "doc.md")
    assert [e.to_dict() for e in parse_markdown(text, "doc.md", chunk_chars=1)] == [
        e.to_dict() for e in whole
    ]
    assert len({e.id for e in whole}) == len(whole)
    assert {e.layout for e in whole} <= QUESTION_LAYOUTS | TEXT_LAYOUTS
    # ranges never overlap and every non-blank line is in one (or a heading of a path)
    lines = text.split("\n")
    covered = {n for e in whole for n in range(e.line, e.end_line + 1)}
    spans = sorted((e.line, e.end_line) for e in whole)
    assert all(a[1] < b[0] for a, b in pairwise(spans))
    for n, line in enumerate(lines, 1):
        text = line.strip().strip("#").strip()
        if text and n not in covered and not set(text) <= set("=-"):  # setext underlines
            later = [e for e in whole if e.line > n]
            assert later and text in min(later, key=lambda e: e.line).question, (n, line)


def test_real_documents_parse_the_same_in_pieces():
    for path in [*CORPUS.glob("*.md"), *FIXTURES.glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        whole = [e.to_dict() for e in parse_markdown(text, path.name)]
        assert [e.to_dict() for e in parse_markdown(text, path.name, chunk_chars=50)] == whole


def test_the_loader_reports_a_cut_section(tmp_path):
    from llmref.corpus.loader import load_corpus

    (tmp_path / "huge.md").write_text("# Huge\n\n" + ("长" * 300 + "\n\n") * 4000, encoding="utf-8")
    (tmp_path / "small.md").write_text("## Small\n\ntext\n", encoding="utf-8")
    corpus = load_corpus([(tmp_path, "")])
    (problem,) = corpus.problems
    assert problem.path == str(tmp_path / "huge.md") and problem.line == 1
    assert "section longer than 1,000,000 characters" in str(problem)
    assert {e.question for e in corpus.entries} >= {"Huge", "Small"}


def test_sections_are_never_grouped_as_the_same_question():
    from llmref.glossary import Glossary
    from llmref.lookup import tag_entries

    # sibling sections share long path prefixes, the parts of a split section nearly all
    entries = parse_fixture("code-walkthrough.md") + parse_markdown(big_section(30), "n.md")
    same = "### 1. 什么是 KV cache？\n\n缓存。\n"
    entries += parse_markdown(same, "a.md") + parse_markdown(same, "b.md")
    tag_entries(entries, Glossary.load([]))
    assert all(e.group is None for e in entries if e.layout in TEXT_LAYOUTS)
    a, b = entries[-2:]
    assert a.group == b.group is not None and a.also_in == [b.id]  # questions still are
