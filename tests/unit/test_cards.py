"""Cards: untrusted corpus text rendered safely and readably."""

from __future__ import annotations

from llmref.cards import (
    CardInput,
    card_title,
    cut_markdown,
    latex_to_text,
    render_card,
    render_entry,
    sanitize,
    to_plain,
    without_title,
)
from llmref.corpus.entry import Entry
from llmref.glossary import Concept

from .test_sanitize import problems


def entry(answer: str, **kw) -> Entry:
    base = dict(
        id="d:1",
        question="什么是 X？",
        answer=answer,
        source="d.md",
        path="/tmp/corpus/d.md",
        line=3,
        end_line=9,
    )
    base.update(kw)
    return Entry(**base)


def test_command_and_script_links_lose_their_targets():
    out = sanitize(
        "[run me](command:workbench.action.terminal.new) [js](javascript:alert(1)) <command:x.y>"
    )
    assert "](command:" not in out and "<command:" not in out and "](javascript:" not in out
    assert out == "run me js command:x.y"  # the text stays, as text


def test_web_links_stay():
    out = sanitize("[paper](https://arxiv.org/abs/2104.09864) <https://example.org/a>")
    assert "[paper](https://arxiv.org/abs/2104.09864)" in out
    assert "[https://example.org/a](https://example.org/a)" in out


def test_remote_images_are_never_embedded():
    out = sanitize(
        "![图 14](http://image.example.com/x.png) and ![](https://pic1.zhimg.com/v2.jpg)"
    )
    assert "![" not in out
    assert "[image: 图 14](http://image.example.com/x.png)" in out
    assert "[image](https://pic1.zhimg.com/v2.jpg)" in out


def test_missing_local_images_become_text():
    assert sanitize("![formula](面试题.assets/image-1.png)") == "image: formula"


def test_raw_html_is_escaped_outside_code():
    out = sanitize(
        '<img src="http://evil/x.png" onerror="x"> <script>alert(1)</script>\n\n```\n<keep>\n```'
    )
    assert "<img" not in out and "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "\n<keep>\n" in out  # code blocks are left alone


def test_formulas_become_readable():
    assert latex_to_text(r"-\log\sigma(\beta - \beta)") == "-logσ(β - β)"
    assert (
        latex_to_text(r"\frac{p_{\theta}(y_{w}|x)}{p_{\text{ref}}(y_{w}|x)}")
        == "(p_θ(y_w|x))/(p_ref(y_w|x))"
    )
    assert latex_to_text(r"x^{2} + \sqrt{d_k}") == "x² + √(d_k)"
    # the corpus's export doubled every backslash
    assert latex_to_text(r"\\text{DPO loss} = -\\log\\sigma(0)") == "DPO loss = -logσ(0)"


def test_answers_are_cut_at_block_boundaries():
    text = "\n\n".join(f"段落 {i}" for i in range(30))
    cut, was_cut = cut_markdown(text, 12)
    assert was_cut and cut.endswith("段落 11")
    short, was_cut = cut_markdown("一段。\n\n两段。", 12)
    assert not was_cut and short == "一段。\n\n两段。"


def test_a_cut_code_block_is_closed():
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(40)) + "\n```"
    cut, was_cut = cut_markdown(code, 12)
    assert was_cut and cut.count("```") == 2
    # a longer fence holding ``` lines is closed with its own fence
    code = "````\n```\n" + "\n".join(f"x{i} = {i}" for i in range(40)) + "\n```\n````"
    cut, was_cut = cut_markdown(code, 12)
    assert was_cut and cut.endswith("\n````") and cut.count("````") == 2


def test_a_cut_never_turns_code_into_markup(tmp_path):
    """Cutting a long line inside a code span would leave "[x](command:…)" as markup: the
    cut answer is sanitized again."""
    answer = "`[x](command:evil) " + "长" * 2000 + "`"
    card = render_entry(entry(answer), max_lines=3)
    assert "[x](command:evil)" in cut_markdown(sanitize(answer), 3)[0]  # the half code span
    assert problems(card, []) == [] and "[x](command:evil)" not in card


def test_card_parts_and_plain_text():
    concept = Concept(
        id="kv-cache", name="KV cache", zh=["键值缓存"], definition="Caches keys and values."
    )
    other = entry("别处的回答", id="e:2", source="e.md", line=7, path="/tmp/corpus/e.md")
    card = render_card(
        CardInput(
            concept, entry("回答正文。"), [other], [Concept(id="r", name="PagedAttention")], 2
        )
    )
    title, source, *rest = card.split("\n")
    assert title == "**KV cache** · 键值缓存  "
    # the citation sits right under the title, where an editor shows it without scrolling
    assert source == (
        "Source: [d.md:3](file:///tmp/corpus/d.md#L3)"
        " · also in [e.md:7](file:///tmp/corpus/e.md#L7) · 2 more answers"
    )
    assert "#### 什么是 X？" in card and "回答正文。" in card
    assert (
        card.index("Caches keys") < card.index("回答正文。") < card.index("Related: PagedAttention")
    )
    plain = to_plain(card)
    assert "**" not in plain and "](" not in plain
    assert plain.startswith("KV cache · 键值缓存\nSource: d.md:3 · also in e.md:7 · 2 more answers")
    assert without_title(card).startswith("Source: [d.md:3]")
    assert without_title(plain).startswith("Source: d.md:3")
    # a concept of a big corpus: the store counts up to 100 answers, the card says "99+"
    many = render_card(CardInput(concept, entry("回答正文。"), [], [], 99))
    assert many.split("\n")[1].endswith(" · 99+ more answers")
    assert card_title(concept) == "KV cache · 键值缓存"


def test_a_hostile_glossary_definition_is_sanitized():
    concept = Concept(
        id="x",
        name="Evil [x](command:a)",
        zh=["<img src=x>"],
        definition="[run](command:workbench.action.terminal.new) ![t](http://evil/t.png) "
        "[js](javascript:alert(1)) <img src=http://evil/x.png onerror=alert(1)>",
    )
    card = render_card(CardInput(concept, None, [], [], 0))
    assert card.startswith("**Evil \\[x\\](command:a)** · &lt;img src=x&gt;  \n")
    assert problems(card, []) == []
    assert "[image: t](http://evil/t.png)" in card  # a link to the image, never the image


def test_entries_without_answers_say_so():
    assert "No answer text in the source" in render_entry(entry("", has_answer=False))
    ext = render_entry(entry("[Site Unreachable](https://zhuanlan.zhihu.com/p/1)", external=True))
    assert "The answer is external" in ext and "https://zhuanlan.zhihu.com/p/1" in ext


def test_a_card_links_the_first_few_sources_of_a_big_group(tmp_path):
    """The same question in eight notes is one duplicate group: the card cites the best one,
    links five of the others and counts the rest, instead of a line of forty links."""
    from llmref.config import Settings
    from llmref.lookup import Reference

    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(8):
        (notes / f"n{n}.md").write_text(
            f"# 推理笔记 {n}\n\n### 1. 什么是 KV cache？\n\nKV cache 存下每一层的键和值。\n\n"
            f"### 2. 第 {n} 篇的别的问题？\n\n别的回答。\n",
            encoding="utf-8",
        )
    ref = Reference.open(Settings(corpora=[notes], bundled=False, cache=tmp_path / "cache"))
    try:
        concept = ref.glossary.find("KV cache")[0].concept
        card = ref.card(concept)
        assert card is not None and card.entry is not None
        assert len(card.others) == 5 and card.others_more == 2 and not card.others_capped
        source = render_card(card).split("\n")[1]
        assert source.count("](file://") == 6 and source.endswith(" and 2 more")
    finally:
        ref.close()
