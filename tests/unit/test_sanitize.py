"""The sanitizer every corpus/glossary text goes through on its way to the user.

The check is the one an attacker cares about: render the sanitized markdown to HTML with
markdown-it — strictly: raw HTML allowed, every link scheme allowed through (markdown-it would
otherwise hide a `javascript:` href from us) — and look at what a browser would get. Only the
elements markdown itself produces may appear, no `src` at all, and every href is http(s) or a
file inside the corpus roots.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from llmref.cards import CardInput, cut_markdown, render_card, render_entry
from llmref.corpus.entry import Entry
from llmref.glossary import Concept
from llmref.safe_markdown import code_fence, code_span, escape_text, safe_url, sanitize, to_plain

ALLOWED_TAGS = {
    "p", "a", "em", "strong", "code", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5",
    "h6", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s",
}  # fmt: skip
ALLOWED_ATTRS = {
    ("a", "href"),
    ("code", "class"),
    ("ol", "start"),
    ("th", "style"),
    ("td", "style"),
}


def strict_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


RENDER = strict_renderer()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))


def problems(markdown: str, roots: list[Path]) -> list[str]:
    """What is unsafe in the HTML that ``markdown`` renders to."""
    html = RENDER.render(markdown)
    parser = _Collect()
    parser.feed(html)
    parser.close()
    found = []
    for tag, attrs in parser.tags:
        if tag not in ALLOWED_TAGS:
            found.append(f"element <{tag}>")
        for name, value in attrs:
            if (tag, name) not in ALLOWED_ATTRS:
                found.append(f"attribute {name}= on <{tag}>")
            elif name == "href" and not href_ok(value or "", roots):
                found.append(f"href {value!r}")
            elif name == "class" and not (value or "").startswith("language-"):
                found.append(f"class {value!r}")
    return found


def href_ok(href: str, roots: list[Path]) -> bool:
    href = href.strip()
    lowered = "".join(ch for ch in href.lower() if ch > " ")
    if lowered.startswith(("http://", "https://")):
        return bool(urlsplit(href).netloc)
    if lowered.startswith("file:"):
        path = Path(unquote(urlsplit(href).path)).resolve()
        return any(path == r or path.is_relative_to(r) for r in roots)
    return False


# --- a grammar of hostile markdown --------------------------------------------------------------

DESTINATIONS = [
    "command:workbench.action.terminal.new",
    "command:_workbench.downloadResource?%5B%22x%22%5D",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "&#99;ommand:x",
    "&#x63;ommand:x",
    "c&#111;mmand:x",
    "&#106;avascript:alert(1)",
    "%63ommand:x",
    "data:text/html,<script>alert(1)</script>",
    "data:image/png;base64,AAAA",
    "vscode:extension/evil",
    "vscode-insiders://x",
    "vbscript:msgbox",
    "file:///etc/passwd",
    "file://host/share/x",
    "file:///ROOT/sub/ok.md",
    "file:///ROOT/sub/../../../etc/passwd",
    "file:///ROOT/sub/&#46;&#46;/&#46;&#46;/x",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "/etc/passwd",
    "ok.md",
    "ok.md#L3",
    "./ok.md?x=1",
    "../img.png",
    "sub/../../../../../etc/hosts",
    "//evil.example/x.png",
    "http://evil.example/x.png",
    "https://ok.example/a_(b)?q=1&r=2#f",
    "https://ok.example/&#x6a;avascript:",
    "https://ok.example/&amp;#46;&amp;#46;/",
    "file:///ROOT/sub/&amp;#46;&amp;#46;/&amp;#46;&amp;#46;/x",
    "http:evil",
    "http:/\\evil",
    "mailto:a@b.c",
    "ftp://x/y",
    "#anchor",
    "",
]
TEXTS = [
    "x",
    "点我",
    "a b",
    "[nested]",
    "[a](command:x)",
    "`co`de`",
    "**b**",
    "!",
    "&#99;ommand:",
    "<img src=x>",
    "line\nbreak",
    " ",
    "\\",
]
TITLES = ["", ' "t"', " 't'", " (t)", ' "a\nb"', " 'x\" y'"]
HTML = [
    '<img src="http://evil.example/x.png" onerror="alert(1)">',
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=javascript:alert(1)>",
    '<a href="command:x">click</a>',
    "<script>alert(1)</script>",
    "<iframe src=command:x></iframe>",
    "<svg onload=alert(1)>",
    "<div>\n<img src=//evil/x>\n</div>",
    "<!-- <img src=x> -->",
    "<pad>",
    "<br/>",
    "<details><summary>s</summary>t</details>",
    "<style>*{}</style>",
    "<a href='javascript:alert(1)'",
    "&lt;img src=x&gt;",
    "&#60;img src=x&#62;",
]
SEPARATORS = ["", " ", "\n", "\n\n", "\n> ", "\n- ", "\n1. ", "\n    ", "\n   ", "|", " | ", "\t"]


def fences() -> st.SearchStrategy[str]:
    marks = st.sampled_from(["```", "````", "~~~", "~~~~", "`", "``", "    "])
    return st.builds(
        lambda a, info, body, b: f"{a}{info}\n{body}\n{b}",
        marks,
        st.sampled_from(["", "python", "js", "`x`", " a b"]),
        st.lists(
            st.sampled_from(["```", "~~~", "[x](command:y)", "<img src=x>", "code"]), max_size=4
        ).map("\n".join),
        marks,
    )


def leaves() -> st.SearchStrategy[str]:
    dest = st.sampled_from(DESTINATIONS)
    text = st.sampled_from(TEXTS)
    title = st.sampled_from(TITLES)
    space = st.sampled_from(["", " ", "  ", "\n", "\t"])
    return st.one_of(
        st.builds(
            lambda t, s1, d, ti, s2: f"[{t}]({s1}{d}{ti}{s2})", text, space, dest, title, space
        ),
        st.builds(lambda t, d: f"[{t}](<{d}>)", text, dest),
        st.builds(lambda t, s1, d, ti: f"![{t}]({s1}{d}{ti})", text, space, dest, title),
        st.builds(
            lambda t, img, d, ref: f"{img}[{t}][{ref}]\n\n[{ref}]: {d}",
            text,
            st.sampled_from(["", "!"]),
            dest,
            st.sampled_from(["r", "R ", "点"]),
        ),
        st.builds(lambda d: f"[r]\n\n[r]: <{d}> 'title'", dest),
        st.builds(lambda d: f"<{d}>", dest),
        st.builds(lambda d: f"[[a]({d})]({d})", dest),
        st.builds(
            lambda pre, d: f"{pre}[x]({d})", st.sampled_from(["\\!", "!<b></b>", "&#33;"]), dest
        ),
        st.builds(lambda a, d: f"[{a}\n]({d})", text, dest),
        st.sampled_from(HTML),
        fences(),
        st.sampled_from(DESTINATIONS),
        text,
        st.sampled_from(
            [
                "| a | b |\n|---|:-:|\n| `x\\|y` | c |",
                "***",
                "# h #",
                "a\n===",
                "\\",
                "&amp;",
                "&#0;",
            ]
        ),
    )


def hostile() -> st.SearchStrategy[str]:
    return st.lists(st.tuples(leaves(), st.sampled_from(SEPARATORS)), min_size=1, max_size=8).map(
        lambda parts: "".join(a + b for a, b in parts)
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus").resolve()
    (root / "sub").mkdir()
    (root / "sub" / "ok.md").write_text("# ok\n", encoding="utf-8")
    (root / "img.png").write_bytes(b"\x89PNG")
    return root, root / "sub"


def with_root(text: str, root: Path) -> str:
    return text.replace("/ROOT/", f"{root.as_posix()}/")


HYPOTHESIS = settings(
    max_examples=int(os.environ.get("LLMREF_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@HYPOTHESIS
@given(hostile())
def test_sanitized_markdown_renders_inert(corpus, text):
    root, base = corpus
    text = with_root(text, root)
    out = sanitize(text, base=base, roots=[root])
    assert problems(out, [root]) == [], (text, out)
    # and the plain-text form never crashes
    to_plain(out)


@HYPOTHESIS
@given(hostile(), hostile(), hostile(), st.integers(min_value=1, max_value=14))
def test_whole_cards_render_inert(corpus, answer, definition, question, max_lines):
    """Every field a card shows, hostile at once, cut anywhere."""
    root, base = corpus
    answer, definition, question = (with_root(x, root) for x in (answer, definition, question))
    concept = Concept(
        id="c", name=question[:30], zh=[definition[:10]], definition=definition,
        file=str(base / "glossary.yaml"),
    )  # fmt: skip
    entry = Entry(
        id="d:1", question=question, answer=answer, detail=answer[:40], source=question[:20],
        path=str(base / "ok.md"), line=3, end_line=9,
    )  # fmt: skip
    related = [Concept(id="r", name=definition[:15])]
    card = render_card(CardInput(concept, entry, [entry], related, 3, roots=[root]), max_lines)
    assert problems(card, [root]) == [], card
    full = render_entry(entry, 10_000, heading="#", roots=[root])
    assert problems(full, [root]) == [], full


# --- the payloads of the attack report, one by one ------------------------------------------------

PAYLOADS = [
    "[run](command:workbench.action.terminal.new)",
    "[js](javascript:alert(1))",
    "![remote](http://evil.example/track.png)",
    "[x]( command:workbench.action.terminal.new )",
    "[x](command:evil 'single-quoted title')",
    "[[nested [brackets]]](command:evil)",
    "[split\nover two lines](command:evil)",
    "[ref link][evil]\n\n[evil]: command:workbench.action.terminal.new",
    "![ref image][pic]\n\n[pic]: http://evil.example/x.png",
    "![x]( http://evil.example/x.png )",
    "[passwd](../../../../etc/passwd)",
    "[e](&#99;ommand:evil)",
    "<command:evil> <javascript:alert(1)>",
    '<img src="http://evil.example/x.png" onerror="alert(1)">',
    # a code block holding a ``` line, then markup that must stay inside the code
    "~~~\n```\n[run](command:evil)\n![x](http://evil.example/x.png)\n<img src=x onerror=alert(1)>\n~~~",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_reported_payloads(corpus, payload):
    root, base = corpus
    out = sanitize(payload, base=base, roots=[root])
    assert problems(out, [root]) == [], out
    assert "<img" not in RENDER.render(out)


def test_code_with_fences_inside_stays_code():
    code = "x = 1\n```\n[run](command:evil)\n````\n~~~\ny = 2"
    html = RENDER.render(code_fence(code, "python"))
    assert html.count("<pre>") == 1 and "<a " not in html
    assert "[run](command:evil)" in html and "y = 2" in html
    span = code_span("a ``` b `` c")
    assert RENDER.render(span).strip() == "<p><code>a ``` b `` c</code></p>"


def test_web_and_corpus_links_stay_links(corpus):
    root, base = corpus
    out = sanitize(
        "[paper](https://arxiv.org/abs/2104.09864) <https://example.org/a> "
        "[note](ok.md#L3) [up](../img.png)",
        base=base,
        roots=[root],
    )
    assert "[paper](https://arxiv.org/abs/2104.09864)" in out
    assert "[https://example.org/a](https://example.org/a)" in out
    assert f"[note]({(base / 'ok.md').as_uri()}#L3)" in out
    assert f"[up]({(root / 'img.png').as_uri()})" in out


def test_links_out_of_the_roots_are_text(corpus):
    root, base = corpus
    for url in ["../../../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "missing.md"]:
        assert safe_url(url, base=base, roots=[root]) is None, url
    assert sanitize("[p](../../../../etc/passwd)", base=base, roots=[root]) == "p"
    # no roots (a glossary card before the corpus loads): no file links at all
    assert safe_url("ok.md", base=base, roots=[]) is None


def test_images_become_text():
    out = sanitize("![图 14](http://image.example.com/x.png) and ![](面试题.assets/i.png)")
    assert out == "[image: 图 14](http://image.example.com/x.png) and image"
    assert "<img" not in RENDER.render(out)


def test_html_is_shown_as_text_or_dropped():
    out = sanitize("x <b>bold</b> <pad> token<br>next <script>alert(1)</script>")
    html = RENDER.render(out)
    assert "<b>" not in html and "<script>" not in html
    assert "&lt;pad&gt;" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bold" in html and "<br />" in html


def test_text_keeps_its_meaning():
    """Ordinary notes keep their structure: headings, lists, quotes, tables, emphasis, code."""
    src = (
        "# 标题\n\n**回答**：RMSNorm 去掉了 *均值*。\n\n- 一\n- 二\n  1. 甲\n  2. 乙\n\n"
        "> 引用\n\n| a | b |\n|:-|-:|\n| `x` | 2 |\n\n```python\nx = 1\n```"
    )
    out = sanitize(src)
    html = RENDER.render(out)
    for piece in [
        "<h1>标题</h1>",
        "<strong>回答</strong>",
        "<em>均值</em>",
        "<li>一</li>",
        "<ol>",
        "<blockquote>",
        '<th style="text-align:left">a</th>',
        '<code class="language-python">x = 1',
    ]:
        assert piece in html, (piece, out)
    assert sanitize(out) == out  # sanitizing again changes nothing


def test_escaped_text_is_shown_literally():
    for text in ["[a](command:x)", "*a* _b_ `c`", "&#99;", "<b>", "- item", "1. x", "# h", "a|b"]:
        html = RENDER.render(escape_text(text) if text[0] not in "-1#" else sanitize(f"\\{text}"))
        assert (
            "<a " not in html and "<em>" not in html and "<li>" not in html and "<h1>" not in html
        )


def test_cut_keeps_long_fences_closed():
    code = "````\n" + "\n".join(f"x{i} = '```'" for i in range(40)) + "\n````"
    cut, was_cut = cut_markdown(code, 8)
    assert was_cut and cut.endswith("\n````")
    assert RENDER.render(cut).count("<pre>") == 1


def test_plain_text():
    plain = to_plain(
        "**KV** · 键值  \nSource: [d.md:3](file:///x/d.md#L3) [paper](https://a.b/c) \\*x\\*"
    )
    assert plain == "KV · 键值\nSource: d.md:3 paper <https://a.b/c> *x*"


def test_absurd_nesting_is_plain_text_not_a_crash():
    for text in ["*" * 5000 + "x" + "*" * 5000, "[" * 3000 + "x" + "](command:x)" * 3000]:
        out = sanitize(text)
        assert problems(out, []) == []
        assert "x" in to_plain(out)
    assert sanitize("> " * 30 + "x") is not None  # past markdown-it's nesting limit


def test_citations_and_snippet_docs_are_inert(corpus):
    """Built from escaped text and the entry's own link, without a second sanitizer pass."""
    from llmref.cards import citation
    from llmref.snippets import Snippet, snippet_doc

    root, base = corpus
    for payload in PAYLOADS:
        entry = Entry(
            id="d:1", question=payload, answer=payload, source=payload[:20],
            path=str(base / "ok.md"), line=3, end_line=9,
        )  # fmt: skip
        concept = Concept(id="c", name=payload[:30], zh=[payload[:12]])
        assert problems(citation(concept, entry, payload), [root]) == []
        doc = snippet_doc(Snippet("x", payload + "\n```\n" + payload, "d:1", "python"), entry)
        assert problems(doc, [root]) == []
