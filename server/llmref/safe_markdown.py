"""Untrusted markdown -> markdown that is safe to show. Core: no pygls, no lsprotocol.

Every corpus and glossary text that reaches the user (hover and completion cards, snippet
documentation, ``llmref.show`` and so the VS Code preview) goes through :func:`sanitize`. It
parses with markdown-it (CommonMark plus the tables and strikethrough that editors render),
walks the tokens and writes markdown again, from scratch:

* links keep their target only when it is http(s), or a file inside the corpus roots
  (a relative link is resolved against the note's folder; ``../../etc/passwd`` is text);
  reference-style links and autolinks are judged the same way;
* images are never embedded: an image becomes ``image: <alt text>`` (a link when its target
  passes the same test);
* raw HTML never passes: ``<img>`` becomes an image text, layout tags (``<div>``, ``<b>``,
  ``<a>`` …) are dropped (their text stays), ``<br>`` is a line break, anything else
  (``<pad>``, ``<script>``) is shown as the text it is;
* every text character with a markdown meaning is escaped, entities included, so nothing in
  the text can become markup when the editor parses the result;
* code blocks are fenced with a fence longer than any backtick run inside the code.

The result renders the same in any CommonMark renderer; :func:`to_plain` turns it into plain
text for clients that ask for plaintext.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

IMAGE_MARKER = "image"  # plain text: every font has it (🖼 rendered as a box without emoji fonts)

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")
_TEXT_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_FTP = re.compile(r"\b(ftp):(?=//)", re.I)
_LINE_START = re.compile(r"^(?:[#+=\-]|\d{1,9}(?=[.)]))")
_URL_SAFE = "/:?#@!$&+,;=%-._~"
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# a tag's scan stops at the next "<" or ">": linear on any input
_HTML_TAG = re.compile(
    r"<!--[^<>]*?-->|<(/?)([A-Za-z][A-Za-z0-9-]*)((?:[^<>\"']|\"[^<>\"]*\"|'[^<>']*')*)>"
)
_HTML_ATTR = re.compile(r"""\b([a-zA-Z_:][-\w:.]*)\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+)""")
# tags that only lay text out: dropped, their text kept
_LAYOUT_TAGS = frozenset(
    "a abbr b big center cite dd details div dl dt em font i ins kbd mark p small span strong "
    "sub summary sup table tbody td tfoot th thead tr u ul ol li code pre blockquote h1 h2 h3 "
    "h4 h5 h6 figure figcaption caption section article header footer".split()
)
_BREAK_TAGS = frozenset({"br", "hr"})


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # type: ignore[method-assign]  # we judge every URL
    return md


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    """Blocks only (no inline parsing): finding code blocks at load time, cheaply."""
    return MarkdownIt("commonmark").disable(["inline", "text_join"])


# --- URLs -----------------------------------------------------------------------------------


def resolve_roots(paths: Iterable[Path]) -> list[Path]:
    """Corpus roots as :func:`safe_url` wants them: resolved (a root that cannot be is left
    out: nothing links into it)."""
    out = []
    for path in paths:
        try:
            out.append(path.expanduser().resolve())
        except (OSError, RuntimeError, ValueError):
            continue
    return out


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """``path`` (resolved) is one of the roots or lies under one."""
    return any(path == root or path.is_relative_to(root) for root in roots)


def safe_url(url: str, *, base: Path | None = None, roots: Sequence[Path] = ()) -> str | None:
    """The URL to link to, rebuilt so that no renderer can read it otherwise, or None when
    the target must not be a link: only http(s) and existing files inside ``roots`` (a
    relative URL is resolved against ``base``, the folder of the file it came from)."""
    url = url.strip()
    if not url or url.startswith("#") or any(ord(ch) < 32 or ch == "\x7f" for ch in url):
        return None
    if url.startswith("//"):
        return None  # protocol-relative: whatever the page's scheme is
    if _SCHEME.match(url):
        scheme = url.split(":", 1)[0].lower()
        if scheme in ("http", "https"):
            try:
                parts = urlsplit(url)
            except ValueError:  # a broken IPv6 host
                return None
            if not parts.netloc or not url[len(scheme) + 1 :].startswith("//"):
                return None
            rest = url[len(scheme) + 3 :]
            return f"{scheme}://" + _ENTITY_LIKE.sub("%26", quote(rest, safe=_URL_SAFE))
        if scheme != "file":
            return None
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.netloc not in ("", "localhost"):
            return None
        target: Path | None = Path(unquote(parts.path))
        fragment = parts.fragment
    else:
        if base is None:
            return None
        path, _, fragment = url.partition("#")
        path = path.split("?", 1)[0]
        target = base / unquote(path) if path else None
    if target is None or not target.is_absolute():
        return None
    try:
        resolved = target.resolve()
        ok = inside(resolved, roots) and resolved.exists()
    except (OSError, ValueError, RuntimeError):
        return None
    if not ok:
        return None
    return resolved.as_uri() + (f"#{quote(unquote(fragment), safe='')}" if fragment else "")


# --- text -------------------------------------------------------------------------------------


def escape_text(text: str) -> str:
    """Plain text -> inline markdown that shows exactly that text (no markup can form)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _TEXT_SPECIAL.sub(r"\\\1", text)
    text = _FTP.sub(r"\1\\:", text)  # GFM renderers would autolink a bare ftp://
    if text.endswith("!"):  # "!" + a link of ours would be an image
        text = text[:-1] + "\\!"
    return text


def _escape_line_start(text: str) -> str:
    """Escape what would start a block (heading, list, setext underline) at a line start."""
    text = text.lstrip(" \t")
    m = _LINE_START.match(text)
    if m is None:
        return text
    end = m.end()
    return text[:end] + "\\" + text[end:] if m.group()[0].isdigit() else "\\" + text


def code_span(code: str, *, in_table: bool = False) -> str:
    """Inline code with a backtick run longer than any inside it."""
    if in_table:
        code = code.replace("|", "\\|")
    longest = max((len(r) for r in re.findall(r"`+", code)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if code[:1] in ("`", " ") or code[-1:] in ("`", " ") else ""
    if not code.strip(" "):
        pad = ""
    return f"{ticks}{pad}{code}{pad}{ticks}"


def code_fence(code: str, language: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run in the code (so no
    line of the code can close it)."""
    code = code.rstrip("\n")
    longest = max((len(r) for r in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    lang = re.match(r"[A-Za-z0-9_+.#-]*", language.strip()).group()  # type: ignore[union-attr]
    return f"{fence}{lang}\n{code}\n{fence}" if code else f"{fence}{lang}\n{fence}"


# --- the writer -------------------------------------------------------------------------------


MAX_DEPTH = 64  # deeper nesting (5,000 "*" around a word) is shown as plain text


class _TooDeep(Exception):
    pass


class _Node:
    """A token with the tokens it encloses: what the writer walks (markdown-it's own
    SyntaxTreeNode recurses while building and copies lists at every level)."""

    __slots__ = ("children", "token", "type")

    def __init__(self, kind: str, token: Token | None) -> None:
        self.type = kind
        self.token = token
        self.children: list[_Node] = []

    @property
    def tag(self) -> str:
        return self.token.tag if self.token else ""

    @property
    def attrs(self) -> dict:
        return dict(self.token.attrs) if self.token else {}

    @property
    def markup(self) -> str:
        return self.token.markup if self.token else ""

    @property
    def info(self) -> str:
        return self.token.info if self.token else ""

    @property
    def content(self) -> str:
        return self.token.content if self.token else ""

    @property
    def hidden(self) -> bool:
        return bool(self.token and self.token.hidden)


def _tree(tokens: Sequence[Token]) -> list[_Node]:
    """Tokens -> nodes, without recursion; raises _TooDeep past MAX_DEPTH."""
    root = _Node("root", None)
    stack = [root]
    for token in tokens:
        if token.nesting == -1:
            if len(stack) > 1:
                stack.pop()
            continue
        kind = token.type[:-5] if token.nesting == 1 else token.type  # "em_open" -> "em"
        node = _Node(kind, token)
        stack[-1].children.append(node)
        if token.nesting == 1:
            stack.append(node)
            if len(stack) > MAX_DEPTH:
                raise _TooDeep
        elif token.children:  # inline content, an image's alt text: flat lists themselves
            node.children = _tree(token.children)
    return root.children


def _parse(markdown: str) -> list[_Node]:
    return _tree(_parser().parse(markdown))


class _Ctx(NamedTuple):
    one_line: bool  # breaks become spaces (headings, table cells)
    in_table: bool  # "|" in code spans is escaped
    in_link: bool  # no link inside a link: images and links are text


class _Writer:
    """Tokens (as a syntax tree) -> safe markdown lines."""

    def __init__(self, base: Path | None, roots: Sequence[Path]) -> None:
        self.base = base
        self.roots = roots

    # blocks ---------------------------------------------------------------------------------

    def blocks(self, nodes: Sequence[_Node], *, tight: bool = False) -> list[str]:
        out: list[str] = []
        for node in nodes:
            lines = self.block(node)
            if not lines:
                continue
            if out and not tight:
                out.append("")
            out.extend(lines)
        return out

    def block(self, node: _Node) -> list[str]:
        kind = node.type
        if kind == "paragraph":
            return self.inline_lines(node.children[0] if node.children else None)
        if kind == "heading":
            text = self.inline(node.children[0] if node.children else None, one_line=True)
            text = text.strip()
            if text.endswith("#"):
                text = text[:-1] + "\\#"
            return [("#" * int(node.tag[1:]) + " " + text).rstrip()]
        if kind == "blockquote":
            return [f"> {line}" if line else ">" for line in self.blocks(node.children)]
        if kind in ("bullet_list", "ordered_list"):
            return self.list_lines(node)
        if kind in ("fence", "code_block"):
            return code_fence(node.content, node.info.split(" ", 1)[0] if node.info else "").split(
                "\n"
            )
        if kind == "hr":
            return ["***"]
        if kind == "html_block":
            return self.html_lines(node.content)
        if kind == "table":
            return self.table_lines(node)
        # anything else (a plugin's block): its text, escaped
        return [_escape_line_start(escape_text(x)) for x in node.content.splitlines() if x.strip()]

    def list_lines(self, node: _Node) -> list[str]:
        ordered = node.type == "ordered_list"
        start = int(node.attrs.get("start", 1) or 1) if ordered else 1
        tight = any(p.type == "paragraph" and p.hidden for i in node.children for p in i.children)
        out: list[str] = []
        for n, item in enumerate(node.children):
            if ordered:
                marker = f"{start + n}{')' if node.markup == ')' else '.'}"
            else:
                marker = node.markup if node.markup in ("-", "*", "+") else "-"
            lines = self.blocks(item.children, tight=tight)
            if out and not tight:
                out.append("")
            if not lines:
                out.append(marker)
                continue
            pad = " " * (len(marker) + 1)
            out.append(f"{marker} {lines[0]}".rstrip())
            out.extend(pad + line if line else "" for line in lines[1:])
        return out

    def table_lines(self, node: _Node) -> list[str]:
        rows: list[list[str]] = []
        aligns: list[str] = []
        for part in node.children:  # thead, tbody
            for tr in part.children:
                cells = []
                for cell in tr.children:
                    inline = cell.children[0] if cell.children else None
                    cells.append(self.inline(inline, in_table=True).strip())
                    if part.type == "thead":
                        style = str(cell.attrs.get("style", ""))
                        aligns.append(
                            ":---:" if "center" in style
                            else ":---" if "left" in style
                            else "---:" if "right" in style
                            else "---"
                        )  # fmt: skip
                rows.append(cells)
        if not rows:
            return []
        width = len(aligns) or len(rows[0])
        lines = []
        for i, cells in enumerate(rows):
            cells = (cells + [""] * width)[:width]
            lines.append("| " + " | ".join(cells) + " |")
            if i == 0:
                lines.append("| " + " | ".join(aligns or ["---"] * width) + " |")
        return lines

    def html_lines(self, content: str) -> list[str]:
        text = self.html(content, _Ctx(False, False, False))
        return [_escape_line_start(x.strip()) for x in text.split("\n") if x.strip()]

    # inline ---------------------------------------------------------------------------------

    def inline_lines(self, node: _Node | None) -> list[str]:
        text = self.inline(node)
        return text.split("\n") if text.strip() else []

    def inline(self, node: _Node | None, *, one_line: bool = False, in_table: bool = False) -> str:
        """Inline content; ``one_line``: breaks become spaces (headings, table cells)."""
        if node is None:
            return ""
        out: list[str] = []
        self._inline(node.children, out, _Ctx(one_line or in_table, in_table, False))
        return "".join(out)

    def _inline(self, nodes: Sequence[_Node], out: list[str], ctx: _Ctx) -> None:
        for node in nodes:
            kind = node.type
            if kind == "text":
                text = escape_text(node.content)
                at_start = not out or out[-1].endswith("\n")
                out.append(_escape_line_start(text) if at_start else text)
            elif kind == "softbreak":
                out.append(" " if ctx.one_line else "\n")
            elif kind == "hardbreak":
                out.append(" " if ctx.one_line else "  \n")
            elif kind == "code_inline":
                out.append(code_span(node.content, in_table=ctx.in_table))
            elif kind in ("em", "strong", "s"):
                mark = {"em": "*", "strong": "**", "s": "~~"}[kind]
                inner: list[str] = []
                self._inline(node.children, inner, ctx)
                body = "".join(inner)
                out.append(f"{mark}{body}{mark}" if body.strip() else body)
            elif kind == "link":
                inner = []
                self._inline(node.children, inner, ctx._replace(in_link=True))
                out.append(self.link("".join(inner), str(node.attrs.get("href", "")), ctx))
            elif kind == "image":
                src = str(node.attrs.get("src", ""))
                out.append(self.image(_plain_inline(node.children), src, ctx))
            elif kind == "html_inline":
                out.append(self.html(node.content, ctx))
            else:  # a plugin's inline token: its text
                out.append(escape_text(node.content))

    def link(self, text: str, href: str, ctx: _Ctx) -> str:
        url = None if ctx.in_link else safe_url(href, base=self.base, roots=self.roots)
        if url is None:
            return text
        if not text.strip():
            text = escape_text(unquote(url))
        return f"[{text}]({url})"

    def image(self, alt: str, src: str, ctx: _Ctx) -> str:
        alt = " ".join(alt.split())
        label = f"{IMAGE_MARKER}: {escape_text(alt)}" if alt else IMAGE_MARKER
        url = None if ctx.in_link else safe_url(src, base=self.base, roots=self.roots)
        return f"[{label}]({url})" if url else label

    def html(self, content: str, ctx: _Ctx) -> str:
        """Raw HTML -> text: ``<img>`` as an image text, layout tags dropped, ``<br>`` a line
        break, anything else (``<pad>``, ``<script>``) shown as the text it is."""
        out: list[str] = []
        pos = 0
        for m in _HTML_TAG.finditer(content):
            out.append(escape_text(html.unescape(content[pos : m.start()])))
            pos = m.end()
            if m.group(0).startswith("<!--"):
                continue
            name = m.group(2).lower()
            if name == "img" and not m.group(1):
                attrs = {
                    k.lower(): html.unescape(v.strip("\"'"))
                    for k, v in _HTML_ATTR.findall(m.group(3))
                }
                out.append(self.image(attrs.get("alt", ""), attrs.get("src", ""), ctx))
            elif name in _BREAK_TAGS:
                out.append(" " if ctx.one_line else "  \n")
            elif name not in _LAYOUT_TAGS:
                out.append(escape_text(m.group(0)))
        out.append(escape_text(html.unescape(content[pos:])))
        return "".join(out)


def _plain_inline(nodes: Sequence[_Node]) -> str:
    """The text of inline nodes (an image's alt text)."""
    parts: list[str] = []
    for node in nodes:
        if node.type in ("text", "code_inline"):
            parts.append(node.content)
        elif node.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif node.type == "image":
            parts.append(_plain_inline(node.children))
        else:
            parts.append(_plain_inline(node.children))
    return "".join(parts)


def sanitize(markdown: str, *, base: Path | None = None, roots: Sequence[Path] = ()) -> str:
    """Untrusted markdown -> safe markdown (see the module's doc). ``base``: the folder of the
    file the text comes from (relative links); ``roots``: the corpus roots, resolved (file
    links must point inside them)."""
    if not markdown.strip():
        return ""
    try:
        nodes = _parse(markdown)
    except _TooDeep:  # absurd nesting: every line as plain text
        lines = (_escape_line_start(escape_text(x)) for x in markdown.splitlines())
        return "\n".join(x if x.strip() else "" for x in lines).strip("\n")
    return "\n".join(_Writer(base, roots).blocks(nodes))


def sanitize_inline(text: str, *, base: Path | None = None, roots: Sequence[Path] = ()) -> str:
    """Like :func:`sanitize`, on one line (names, definitions in a title): blocks joined."""
    return " ".join(x for x in sanitize(text, base=base, roots=roots).split("\n") if x.strip())


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced code block, as CommonMark reads them (a ``` line
    inside a ~~~ block is code, a ```` fence is a fence)."""
    if "```" not in markdown and "~~~" not in markdown:
        return []
    return [
        (t.info.split(" ", 1)[0].strip() if t.info else "", t.content)
        for t in _block_parser().parse(markdown)
        if t.type == "fence"
    ]


# --- plain text -----------------------------------------------------------------------------


def to_plain(markdown: str) -> str:
    """Markdown (a card) -> plain text: markup gone, http(s) links as ``text <url>``."""
    try:
        nodes = _parse(markdown)
    except _TooDeep:
        return markdown
    return "\n".join(_plain_blocks(nodes)).strip("\n")


def _plain_blocks(nodes: Sequence[_Node]) -> list[str]:
    out: list[str] = []
    for node in nodes:
        lines = _plain_block(node)
        if lines:
            if out:
                out.append("")
            out.extend(lines)
    return out


def _plain_block(node: _Node) -> list[str]:
    kind = node.type
    if kind in ("paragraph", "heading"):
        return _plain_text(node.children[0].children if node.children else []).split("\n")
    if kind == "blockquote":
        return [f"> {x}" if x else ">" for x in _plain_blocks(node.children)]
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1) or 1)
        out: list[str] = []
        for n, item in enumerate(node.children):
            marker = f"{start + n}." if kind == "ordered_list" else "-"
            lines = [x for x in _plain_blocks(item.children) if x] or [""]
            out.append(f"{marker} {lines[0]}")
            out.extend(" " * (len(marker) + 1) + x for x in lines[1:])
        return out
    if kind in ("fence", "code_block", "html_block"):
        return node.content.rstrip("\n").split("\n")
    if kind == "hr":
        return ["—" * 20]
    if kind == "table":
        return [
            " | ".join(
                _plain_text(c.children[0].children if c.children else []) for c in tr.children
            )
            for part in node.children
            for tr in part.children
        ]
    return node.content.splitlines()


def _plain_text(nodes: Sequence[_Node]) -> str:
    parts: list[str] = []
    for node in nodes:
        kind = node.type
        if kind in ("text", "code_inline", "html_inline"):
            parts.append(node.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind == "link":
            text = _plain_text(node.children)
            href = str(node.attrs.get("href", ""))
            web = href.startswith(("http://", "https://")) and unquote(href) != text
            parts.append(f"{text} <{href}>" if web else text)
        elif kind == "image":
            parts.append(_plain_text(node.children))
        else:
            parts.append(_plain_text(node.children))
    return "".join(parts)


__all__ = [
    "IMAGE_MARKER",
    "code_fence",
    "code_span",
    "escape_text",
    "fenced_blocks",
    "inside",
    "resolve_roots",
    "safe_url",
    "sanitize",
    "sanitize_inline",
    "to_plain",
]
