"""Markdown (markdown-it block tokens) -> entries: every question, and all the other text.

Question layouts recognized at the top level of a document:

* ``qa-heading``: ``## **提问**：…`` headings, the answer after a ``**回答**：`` label;
* ``numbered-heading``: ``##``-``####`` ``N. …`` headings; not ``2.1 …`` (that numbers
  sections), and not a chapter: a title that does not read as a question, followed by a
  deeper heading that is no question either (``## 2. 模型结构`` over ``### RMSNorm``);
* ``setext``: a line underlined with ``-----``;
* ``bold-q``: paragraphs starting ``**Qn：…**`` (also ``Qn：**…**`` and doubled ``****``);
* ``numbered-line``: paragraphs starting ``N、…`` or ``N …`` under a heading, numbered 1, 2, 3….

A question's answer runs to the next question, or to a heading that is not a question at the
question's level or above (a deeper heading is part of the answer; a paragraph question ends
at any heading).

Everything else is an entry too, so that every piece of text of a note is searchable:

* ``section``: the text under any other heading (``#``…``######``, ``=====`` setext) up to the
  next heading or question. Its question is the heading path, ``Title › Chapter › Section``.
* ``preamble``: the text before the first heading or question; ``file``: a file with no heading
  and no question. Their question is the file name without its suffix.

A section (preamble, file) longer than ``split_chars`` is split between top-level blocks into
parts ``path (2)``, ``path (3)``…, each with the line it starts on (one block is never split).
A heading with no text of its own is not an entry when a deeper heading follows (its text is
in that one's heading path); otherwise it is one, with an empty answer (so the headings above
a run of questions are searchable). Entry ranges [line, end_line] follow each other with
nothing in between. A YAML (``---``) or TOML (``+++``) front matter block at the top is not
indexed. Question ids are given before the other entries' (``-2`` for a repeated question),
so that sections never change them.

Each entry (a question's answer or a section) holds at most ``max_section_chars`` characters;
beyond that its text is cut with a marker and a problem is reported (file and line).

Linear time: one markdown-it block pass (no inline parsing; a long document in pieces of
about ``chunk_chars``, cut where no block can span the cut, to bound memory), one pass over
the top-level blocks to find questions, one to cut the document into block ranges; each
entry's text is built from its own blocks only.
"""

from __future__ import annotations

import hashlib
import html
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import PurePosixPath

from markdown_it import MarkdownIt
from markdown_it.token import Token

from . import clean
from .entry import QUESTION_LAYOUTS, TEXT_LAYOUTS, Entry
from .loader import Problem

__all__ = [
    "CHUNK_CHARS",
    "CUT_MARKER",
    "MAX_SECTION_CHARS",
    "PATH_SEPARATOR",
    "QUESTION_LAYOUTS",
    "SPLIT_CHARS",
    "TEXT_LAYOUTS",
    "parse_markdown",
    "slugify",
]

PATH_SEPARATOR = " › "
SPLIT_CHARS = 4000  # a section longer than this is split between blocks
MAX_SECTION_CHARS = 1_000_000  # text of one entry beyond this is cut (with a warning)
CHUNK_CHARS = 1_000_000  # markdown-it parses a long document in pieces of about this size
CUT_MARKER = "\n\n[… cut here: the rest of this section is longer than llmref indexes]"

_NUMBERED_HEADING = re.compile(r"^\s*(\d+)\s*[.、．)）](?!\d)\s*(?=\S)")  # not "2.1 …"
_QUESTION_WORDS = re.compile(
    r"[？?]|什么|为何|为啥|如何|怎么|怎样|哪些|哪个|哪种|哪几|是否|吗|呢|区别|有何|"
    r"^\W*(?:what|why|how|which|when|where|who|whom|whose|is|are|does|do|can|could|should|"
    r"would|will|explain|describe|compare)\b",
    re.I,
)
_BOLD_Q = re.compile(r"^[\s*]*Q\s*(\d+)\s*[：:.、]\s*")
_NUMBERED_LINE = re.compile(r"^(\d{1,3})(?:\s*[、．]\s*|\s+)(?=\S)")
_CJK = re.compile(r"[\u3400-\u9fff]")
_FRONT_MATTER = {"---": ("---", "..."), "+++": ("+++",)}
_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z_][\w.-]*\s*[:=]")
# where a long document may be cut into pieces parsed on their own (see _chunk_starts)
_CONTAINER_START = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)|>")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*$")
_HTML_BLOCKS = tuple(  # CommonMark HTML blocks that run over blank lines: start, end
    (re.compile(start, re.I), re.compile(end, re.I))
    for start, end in (
        (r" {0,3}<(?:script|pre|style|textarea)(?=[\s>]|$)", r"</(?:script|pre|style|textarea)>"),
        (r" {0,3}<!--", r"-->"),
        (r" {0,3}<\?", r"\?>"),
        (r" {0,3}<![A-Za-z]", r">"),
        (r" {0,3}<!\[CDATA\[", r"\]\]>"),
    )
)

# block-level parsing only: inline content is read as text, never parsed (linear, and faster)
_MD = MarkdownIt("commonmark").disable("inline")


@dataclass
class _Start:
    kind: str  # layout name
    line: int  # 0-based line of the question
    body_line: int  # 0-based first line after the question itself
    question_md: str  # the question's markdown (labels and numbering removed)
    level: int  # heading level for heading-based questions, 99 for paragraph ones
    section: str | None


@dataclass(slots=True)
class _Block:
    type: str  # token type of the block's opening token
    markup: str
    level: int  # heading level, 99 for other blocks
    inline: str  # a heading's inline markdown; a paragraph's first line when it may start a
    # question (bold-q, numbered-line); "" otherwise
    begin: int  # 0-based first line
    end: int  # 0-based line after the block
    dedent: bool  # paragraphs, and indented "code" that is Chinese prose
    answer_label: bool = False  # a paragraph starting with a "**回答**：" label


@dataclass
class _Segment:
    kind: str  # a question layout, or section / preamble / file
    first: int  # index of its first block
    stop: int = -1  # index of the block after it
    start: _Start | None = None  # the question
    path: tuple[str, ...] = ()  # heading path of a section
    level: int = 0  # heading level of a section


@dataclass
class _Doc:
    """One document being parsed: its lines, blocks and character offsets of lines."""

    lines: list[str]
    blocks: list[_Block]
    offsets: list[int]  # offsets[i]: characters (newlines included) before line i
    source: str
    path: str
    problems: list[Problem] | None
    max_chars: int
    warned: bool = False
    entries: list[tuple[Entry, bool]] = field(default_factory=list)  # (entry, is a question)

    def line_of_block(self, bi: int) -> int:
        return self.blocks[bi].begin if bi < len(self.blocks) else len(self.lines)


def slugify(name: str) -> str:
    slug = re.sub(r"[^0-9A-Za-z\u3400-\u9fff]+", "-", name).strip("-").lower()
    return slug or "doc"


def _front_matter_lines(lines: list[str]) -> int:
    """How many lines a front matter block at the top takes (0: none)."""
    closers = _FRONT_MATTER.get(lines[0].rstrip()) if lines else None
    if closers is None or len(lines) < 3 or not _FRONT_MATTER_KEY.match(lines[1]):
        return 0
    for i in range(2, len(lines)):
        if lines[i].rstrip() in closers:
            return i + 1
    return 0


def _chunk_starts(lines: list[str], size: int) -> list[int]:
    """Lines where a long document can be cut into pieces that markdown-it parses on their
    own into the same top-level blocks: every ``size`` characters or so, at a line that starts
    in column 0 after a blank line, that starts no list item or quote (it could continue one),
    outside fenced code and outside the HTML blocks that run over blank lines. Such a line
    always starts a new top-level block: every container and leaf block before it has ended.
    (Front matter is already blanked.)"""
    starts = [0]
    fence: tuple[str, int] | None = None
    html_end: re.Pattern[str] | None = None
    since = 0
    blank = True
    for i, line in enumerate(lines):
        since += len(line) + 1
        if fence is not None:
            m = _FENCE_CLOSE.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1]:
                fence = None
            blank = False
            continue
        if html_end is not None:
            if html_end.search(line):
                html_end = None
            blank = False
            continue
        if since > size and blank and line[:1].strip() and _CONTAINER_START.match(line) is None:
            starts.append(i)
            since = len(line) + 1
        if m := _FENCE_OPEN.match(line):
            if m.group(1)[0] == "~" or "`" not in m.group(2):
                fence = (m.group(1)[0], len(m.group(1)))
        else:
            for opener, end in _HTML_BLOCKS:
                if m := opener.match(line):
                    if not end.search(line, m.end()):
                        html_end = end
                    break
        blank = not line.strip()
    return starts


def _parse_blocks(lines: list[str], chunk_chars: int, size: int) -> list[_Block]:
    """The top-level blocks of the document (``size`` characters), parsed in pieces of about
    ``chunk_chars``."""
    starts = _chunk_starts(lines, chunk_chars) if size > chunk_chars else [0]
    ends = [*starts[1:], len(lines)]
    blocks: list[_Block] = []
    for begin, end in zip(starts, ends, strict=True):
        piece = "\n".join(lines[begin:end])
        blocks.extend(_blocks(_MD.parse(piece), begin))
    return blocks


def _blocks(tokens: list[Token], offset: int = 0) -> list[_Block]:
    """Top-level blocks with their line spans and what the layouts need of their text."""
    out: list[_Block] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.type.endswith("_close"):
            continue
        inline = ""
        level = 99
        label = False
        if tok.type == "heading_open":
            inline = tokens[i + 1].content if i + 1 < len(tokens) else ""
            level = int(tok.tag[1]) if tok.tag[1:].isdigit() else 99
        elif tok.type == "paragraph_open" and i + 1 < len(tokens):
            content = tokens[i + 1].content
            first = content.partition("\n")[0]
            if _BOLD_Q.match(first) or _NUMBERED_LINE.match(first):
                inline = first  # kept only when it may be a question (memory)
            label = clean.is_answer_label(content)
        dedent = tok.type == "paragraph_open" or (
            tok.type == "code_block" and _CJK.search(tok.content) is not None
        )
        begin, end = tok.map
        out.append(
            _Block(tok.type, tok.markup, level, inline, begin + offset, end + offset, dedent, label)
        )
    return out


def _numbered(b: _Block) -> re.Match[str] | None:
    """The numbering of a ``### N. …`` heading."""
    return _NUMBERED_HEADING.match(b.inline.partition("\n")[0]) if 2 <= b.level <= 4 else None


def _chapter(blocks: list[_Block], b: _Block, text: str, sub: int | None) -> bool:
    """A numbered heading that is a chapter of notes, not a question: it does not read as a
    question and the next heading (``sub``) is a deeper one that is no question either."""
    if sub is None or _QUESTION_WORDS.search(text):
        return False
    s = blocks[sub]
    return (
        s.level > b.level
        and s.markup != "-"
        and clean.strip_question_label(s.inline) is None
        and _numbered(s) is None
    )


def _find_starts(blocks: list[_Block]) -> list[tuple[int, _Start | None]]:
    """(block index, start or None for a heading that is not a question) in document order."""
    marks: list[tuple[int, _Start | None]] = []
    section: str | None = None
    counter = 0
    next_heading: list[int | None] = [None] * len(blocks)  # the next heading after each block
    following: int | None = None
    for bi in range(len(blocks) - 1, -1, -1):
        next_heading[bi] = following
        if blocks[bi].type == "heading_open":
            following = bi
    for bi, b in enumerate(blocks):
        if b.type == "heading_open":
            level = b.level
            first = b.inline.split("\n", 1)[0]
            rest = clean.strip_question_label(first)
            start: _Start | None = None
            if rest is not None:
                start = _Start("qa-heading", b.begin, b.end, rest, level, section)
            elif b.markup == "-":
                start = _Start("setext", b.begin, b.end, b.inline, level, section)
            elif (m := _numbered(b)) and not _chapter(
                blocks, b, first[m.end() :], next_heading[bi]
            ):
                start = _Start("numbered-heading", b.begin, b.end, first[m.end() :], level, section)
            if start is None:
                section = clean.plain_text(b.inline) or section
                counter = 0
                marks.append((bi, None))
            else:
                marks.append((bi, start))
            continue
        if b.type != "paragraph_open":
            continue
        first = b.inline
        if m := _BOLD_Q.match(first):
            marks.append(
                (bi, _Start("bold-q", b.begin, b.begin + 1, first[m.end() :], 99, section))
            )
        elif section is not None and (m := _NUMBERED_LINE.match(first)):
            number = int(m.group(1))
            if number == counter + 1 and _question_like(first[m.end() :]):
                counter = number
                q = first[m.end() :]
                marks.append((bi, _Start("numbered-line", b.begin, b.begin + 1, q, 99, section)))
    return marks


def _question_like(text: str) -> bool:
    """A numbered line reads as a question, not as a numbered statement in an answer."""
    text = text.strip()
    return bool(text) and len(text) <= 200 and not text.startswith(("http", "!["))


def _segments(blocks: list[_Block], marks: list[tuple[int, _Start | None]]) -> list[_Segment]:
    """The document cut into consecutive block ranges, one pass over the marks."""
    segments: list[_Segment] = []
    # the text before the first heading or question (it may have no block: only
    # link reference definitions, say); dropped later when it has no text
    current = _Segment("preamble" if marks else "file", 0)
    segments.append(current)
    stack: list[tuple[int, str]] = []  # (level, text) of the headings above
    for bi, start in marks:
        if start is None:
            level = blocks[bi].level
            question = current.start
            if question is not None and question.level != 99 and level > question.level:
                continue  # a sub-heading of an answer: part of it
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, _heading_text(blocks[bi].inline)))
            path = (*(_short(t) for _, t in stack[:-1]), stack[-1][1])
            nxt = _Segment("section", bi, path=path, level=level)
        else:
            nxt = _Segment(start.kind, bi, start=start)
        current.stop = bi
        segments.append(nxt)
        current = nxt
    current.stop = len(blocks)
    return segments


def _heading_text(inline: str) -> str:
    """A heading's plain text, character references (``&#x20;``, ``&amp;``) decoded."""
    return clean.plain_text(html.unescape(clean.clean_markdown(inline)))


def _short(heading: str, width: int = 200) -> str:
    """A heading as an ancestor in a path: long ones shortened (every subsection repeats it)."""
    return heading if len(heading) <= width else heading[: width - 1] + "…"


def _body(doc: _Doc, lo: int, hi: int, begin: int, end: int, cut: tuple[int, int] | None) -> str:
    """Source lines [begin, end) as markdown, from the blocks lo..hi that hold them: paragraph
    continuation lines and indented "code" blocks of Chinese prose (notes indented by
    accident) are dedented. ``cut``: (line, column) where the text stops, when it does."""
    if cut is not None and cut[0] < begin:
        return CUT_MARKER.lstrip()
    stop = end if cut is None else min(end, cut[0])
    out = doc.lines[begin:stop]
    for b in doc.blocks[lo:hi]:
        if not b.dedent:
            continue
        for i in range(max(b.begin, begin), min(b.end, stop)):
            out[i - begin] = out[i - begin].lstrip(" \t")
    if cut is not None and cut[0] < end:
        out.append(doc.lines[cut[0]][: cut[1]])
        return "\n".join(out) + CUT_MARKER
    return "\n".join(out)


def _last_text_line(lines: list[str], begin: int, end: int) -> int:
    """0-based index of the last non-blank line in [begin, end), or begin - 1."""
    for i in range(end - 1, begin - 1, -1):
        if lines[i].strip():
            return i
    return begin - 1


def _has_text(lines: list[str], begin: int, end: int) -> bool:
    return _last_text_line(lines, begin, end) >= begin


def _cut(doc: _Doc, begin: int, end: int) -> tuple[int, int] | None:
    """Where the text of lines [begin, end) stops when longer than the cap: (line, column)."""
    if doc.offsets[end] - doc.offsets[begin] <= doc.max_chars:
        return None
    limit = doc.offsets[begin] + doc.max_chars
    line = bisect_right(doc.offsets, limit) - 1
    if not doc.warned and doc.problems is not None:
        doc.problems.append(
            Problem(
                doc.path or doc.source,
                begin + 1,
                f"section longer than {doc.max_chars:,} characters: "
                f"indexed up to line {line + 1}, the rest is left out",
            )
        )
    doc.warned = True
    return line, limit - doc.offsets[line]


def _add(doc: _Doc, question: str, layout: str, line: int, end: int, answer_md: str, **kw) -> None:
    answer = clean.clean_markdown(answer_md).strip()
    last = _last_text_line(doc.lines, line, end)
    entry = Entry(
        id="",
        question=question,
        answer=answer,
        source=doc.source,
        path=doc.path,
        line=line + 1,
        end_line=max(last, line) + 1,
        layout=layout,
        has_answer=clean.has_text(answer),
        external=clean.is_link_only(answer),
        **kw,
    )
    doc.entries.append((entry, layout in QUESTION_LAYOUTS))


def _question(doc: _Doc, seg: _Segment, stop: int, doc_title: str | None) -> None:
    """One question and its answer (never split; cut at the cap)."""
    start = seg.start
    assert start is not None
    body_begin = start.body_line
    detail = ""
    if start.kind == "qa-heading":
        label = next(
            (
                bi
                for bi in range(seg.first, seg.stop)
                if doc.blocks[bi].begin >= body_begin and doc.blocks[bi].answer_label
            ),
            None,
        )
        if label is not None:
            label_line = doc.blocks[label].begin
            cut = _cut(doc, body_begin, label_line)
            detail = clean.clean_markdown(
                _body(doc, seg.first, seg.stop, body_begin, label_line, cut)
            )
            body_begin = label_line
    answer_md = _body(doc, seg.first, seg.stop, body_begin, stop, _cut(doc, body_begin, stop))
    if start.kind == "qa-heading":
        answer_md = clean.strip_answer_label(answer_md.lstrip("\n"))
    question = clean.plain_text(clean.clean_markdown(start.question_md))
    section = start.section or doc_title
    if question:
        _add(doc, question, start.kind, start.line, stop, answer_md, section=section, detail=detail)
    else:  # an empty question: its text still belongs to an entry
        text = _body(doc, seg.first, seg.stop, start.line, stop, _cut(doc, start.line, stop))
        _add(doc, section or _stem(doc.source), "section", start.line, stop, text, section=section)


def _text(doc: _Doc, seg: _Segment, begin: int, stop: int, name: str, split: int) -> None:
    """A section, preamble or file: split between blocks every ``split`` characters."""
    cut = _cut(doc, begin, stop)
    end = stop if cut is None else cut[0] + 1  # lines whose text is kept
    if seg.kind == "section":  # the heading is the question, the text starts after it
        body_first, text_from = seg.first + 1, doc.blocks[seg.first].end
    else:
        body_first, text_from = seg.first, begin
    parts = [(begin, text_from, body_first)]  # (entry line, text line, first block) of each
    size_from = doc.offsets[begin]
    blocks_in_part = 0
    for bi in range(body_first, seg.stop):
        b = doc.blocks[bi]
        if b.begin >= end:
            break
        after = doc.offsets[min(doc.line_of_block(bi + 1), stop)]
        if blocks_in_part and after - size_from > split:
            parts.append((b.begin, b.begin, bi))
            size_from = doc.offsets[b.begin]
            blocks_in_part = 0
        blocks_in_part += 1
    section = seg.path[-2] if len(seg.path) > 1 else None
    for k, (line, text_from, lo) in enumerate(parts):
        last = k + 1 == len(parts)
        part_end, hi = (stop, seg.stop) if last else (parts[k + 1][0], parts[k + 1][2])
        text = _body(doc, lo, hi, text_from, part_end, cut if last else None)
        question = name if k == 0 else f"{name} ({k + 1})"
        _add(doc, question, seg.kind, line, part_end, text, section=section)


def _stem(source: str) -> str:
    return PurePosixPath(source.replace("\\", "/")).stem or source


def _assign_ids(entries: list[tuple[Entry, bool]], slug: str) -> None:
    """``<slug>:<sha1(question)[:8]>``, ``-2``, ``-3``… for repeats in the file; questions
    first, so that the other entries never change a question's id."""
    seen: dict[str, int] = {}  # digest -> how many entries have it so far
    for questions in (True, False):
        for entry, is_question in entries:
            if is_question != questions:
                continue
            digest = hashlib.sha1(entry.question.encode("utf-8")).hexdigest()[:8]
            n = seen[digest] = seen.get(digest, 0) + 1
            entry.id = f"{slug}:{digest}" if n == 1 else f"{slug}:{digest}-{n}"


def parse_markdown(
    text: str,
    source: str,
    path: str = "",
    problems: list[Problem] | None = None,
    *,
    split_chars: int = SPLIT_CHARS,
    max_section_chars: int = MAX_SECTION_CHARS,
    chunk_chars: int = CHUNK_CHARS,
) -> list[Entry]:
    """Every entry of one document, in order. ``problems``: gets a warning when a section is
    cut at ``max_section_chars`` (one per document)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    skip = _front_matter_lines(lines)
    lines[:skip] = [""] * skip
    offsets = [0, *accumulate(len(line) + 1 for line in lines)]
    blocks = _parse_blocks(lines, max(chunk_chars, 1), offsets[-1])
    doc = _Doc(
        lines,
        blocks,
        offsets,
        source,
        path,
        problems,
        max(max_section_chars, 1),
    )
    marks = _find_starts(blocks)
    doc_title = next((clean.plain_text(b.inline) for b in blocks if b.level == 1), None)
    segments = _segments(blocks, marks)
    for k, seg in enumerate(segments):
        begin = 0 if seg.kind in ("preamble", "file") else blocks[seg.first].begin
        stop = doc.line_of_block(seg.stop)
        if seg.start is not None:
            _question(doc, seg, stop, doc_title)
            continue
        if seg.kind == "section":
            if not _has_text(lines, blocks[seg.first].end, stop):
                nxt = segments[k + 1] if k + 1 < len(segments) else None
                if nxt is not None and nxt.start is None and nxt.level > seg.level:
                    continue  # its text is in the heading path of what follows
            name = PATH_SEPARATOR.join(p for p in seg.path if p) or _stem(source)
        else:
            if not _has_text(lines, begin, stop):
                continue
            begin = next(i for i in range(begin, stop) if lines[i].strip())
            name = _stem(source)
        _text(doc, seg, begin, stop, name, max(split_chars, 1))
    _assign_ids(doc.entries, slugify(source.rsplit(".", 1)[0]))
    return [entry for entry, _ in doc.entries]
