"""Cards: untrusted corpus text rendered safely and readably."""

from __future__ import annotations

from llmref.cards import (
    CardInput,
    cut_markdown,
    latex_to_text,
    render_card,
    render_entry,
    sanitize,
    to_plain,
)
from llmref.corpus.entry import Entry
from llmref.glossary import Concept


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
    assert "run me" in out and "js" in out
    assert "`command:x.y`" in out  # shown as inert code, never a link


def test_web_and_file_links_stay():
    out = sanitize("[paper](https://arxiv.org/abs/2104.09864) <https://example.org/a>")
    assert "[paper](https://arxiv.org/abs/2104.09864)" in out
    assert "<https://example.org/a>" in out


def test_remote_images_are_never_embedded():
    out = sanitize(
        "![图 14](http://image.example.com/x.png) and ![](https://pic1.zhimg.com/v2.jpg)"
    )
    assert "![" not in out
    assert "[🖼 图 14](http://image.example.com/x.png)" in out
    assert "[🖼 image](https://pic1.zhimg.com/v2.jpg)" in out


def test_missing_local_images_become_text():
    out = sanitize("![formula](面试题.assets/image-1.png)", base=None)
    assert out == "🖼 formula"


def test_raw_html_is_escaped_outside_code():
    out = sanitize(
        '<img src="http://evil/x.png" onerror="x"> <script>alert(1)</script>\n```\n<keep>\n```'
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
    assert card.startswith("**KV cache** · 键值缓存")
    assert "#### 什么是 X？" in card and "回答正文。" in card
    assert "[d.md:3](file:///tmp/corpus/d.md#L3)" in card
    assert "also in [e.md:7](file:///tmp/corpus/e.md#L7)" in card
    assert "Related: PagedAttention" in card and "2 more answers" in card
    plain = to_plain(card)
    assert "**" not in plain and "](" not in plain and "KV cache · 键值缓存" in plain


def test_entries_without_answers_say_so():
    assert "No answer text in the source" in render_entry(entry("", has_answer=False))
    ext = render_entry(entry("[Site Unreachable](https://zhuanlan.zhihu.com/p/1)", external=True))
    assert "The answer is external" in ext and "https://zhuanlan.zhihu.com/p/1" in ext
