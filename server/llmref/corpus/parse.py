"""Markdown (markdown-it-py tokens) -> question/answer entries.

Layouts recognized, at the top level of a document:

* ``qa-heading``: ``## **提问**：…`` headings, the answer after a ``**回答**：`` label;
* ``numbered-heading``: ``### N. …`` headings;
* ``setext``: a line underlined with ``-----``;
* ``bold-q``: paragraphs starting ``**Qn：…**`` (also ``Qn：**…**`` and doubled ``****``);
* ``numbered-line``: paragraphs starting ``N、…`` or ``N …`` under a heading, numbered 1, 2, 3…;
* ``heading``: documents with none of the above: every ``##``/``###`` section is an entry.

Headings that are not questions end the current entry (when at its level or above) and
become the section of the questions that follow.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from . import clean
from .entry import Entry

_NUMBERED_HEADING = re.compile(r"^\s*(\d+)\s*[.、．)）]\s*(?=\S)")
_BOLD_Q = re.compile(r"^[\s*]*Q\s*(\d+)\s*[：:.、]\s*")
_NUMBERED_LINE = re.compile(r"^(\d{1,3})(?:\s*[、．]\s*|\s+)(?=\S)")
_CJK = re.compile(r"[\u3400-\u9fff]")

_MD = MarkdownIt("commonmark")


@dataclass
class _Start:
    kind: str  # layout name
    line: int  # 0-based line of the question
    body_line: int  # 0-based first line after the question itself
    question_md: str  # the question's markdown (labels and numbering removed)
    level: int  # heading level for heading-based questions, 99 for paragraph ones
    section: str | None


@dataclass
class _Block:
    token: Token
    inline: str  # inline markdown content (headings and paragraphs)
    begin: int
    end: int


def slugify(name: str) -> str:
    slug = re.sub(r"[^0-9A-Za-z\u3400-\u9fff]+", "-", name).strip("-").lower()
    return slug or "doc"


def _blocks(tokens: list[Token]) -> list[_Block]:
    """Top-level blocks with their line spans and inline content."""
    out: list[_Block] = []
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None or tok.type.endswith("_close"):
            continue
        inline = ""
        if tok.type in ("heading_open", "paragraph_open") and i + 1 < len(tokens):
            inline = tokens[i + 1].content
        out.append(_Block(tok, inline, tok.map[0], tok.map[1]))
    return out


def _heading_level(tok: Token) -> int:
    return int(tok.tag[1]) if tok.tag.startswith("h") and tok.tag[1:].isdigit() else 99


def _find_starts(blocks: list[_Block], *, plain_headings: bool) -> list[tuple[int, _Start | None]]:
    """(block index, start or None for an ending heading) in document order."""
    marks: list[tuple[int, _Start | None]] = []
    section: str | None = None
    counter = 0
    for bi, b in enumerate(blocks):
        tok = b.token
        if tok.type == "heading_open":
            level = _heading_level(tok)
            first = b.inline.split("\n", 1)[0]
            rest = clean.strip_question_label(first)
            start: _Start | None = None
            if rest is not None:
                start = _Start("qa-heading", b.begin, b.end, rest, level, section)
            elif tok.markup == "-":
                start = _Start("setext", b.begin, b.end, b.inline, level, section)
            elif 2 <= level <= 4 and (m := _NUMBERED_HEADING.match(first)):
                start = _Start("numbered-heading", b.begin, b.end, first[m.end() :], level, section)
            elif plain_headings and 2 <= level <= 3:
                start = _Start("heading", b.begin, b.end, b.inline, level, section)
            if start is None:
                section = clean.plain_text(b.inline) or section
                counter = 0
                marks.append((bi, None))
            else:
                marks.append((bi, start))
            continue
        if tok.type != "paragraph_open":
            continue
        first, _, _ = b.inline.partition("\n")
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


def _body(lines: list[str], blocks: list[_Block], begin: int, end: int) -> str:
    """Source lines [begin, end) as markdown: paragraph continuation lines and indented
    "code" blocks of Chinese prose (notes indented by accident) are dedented."""
    out = lines[begin:end]
    for b in blocks:
        lo, hi = max(b.begin, begin), min(b.end, end)
        if lo >= hi:
            continue
        dedent = b.token.type == "paragraph_open" or (
            b.token.type == "code_block" and _CJK.search(b.token.content)
        )
        if dedent:
            for i in range(lo, hi):
                out[i - begin] = out[i - begin].lstrip(" \t")
    return "\n".join(out)


def _last_text_line(lines: list[str], begin: int, end: int) -> int:
    """0-based index of the last non-blank line in [begin, end), or begin - 1."""
    for i in range(end - 1, begin - 1, -1):
        if lines[i].strip():
            return i
    return begin - 1


def parse_markdown(text: str, source: str, path: str = "") -> list[Entry]:
    """Every question of one document, in order."""
    lines = text.splitlines()
    tokens = _MD.parse(text)
    blocks = _blocks(tokens)
    marks = _find_starts(blocks, plain_headings=False)
    if not any(s for _, s in marks):
        marks = _find_starts(blocks, plain_headings=True)
    doc_title = next(
        (clean.plain_text(b.inline) for b in blocks if _heading_level(b.token) == 1), None
    )
    slug = slugify(source.rsplit(".", 1)[0])

    entries: list[Entry] = []
    seen_ids: set[str] = set()
    for k, (_bi, start) in enumerate(marks):
        if start is None:
            continue
        # the entry runs until the next question, or a heading at its level or above
        stop = len(lines)
        for bj, nxt in marks[k + 1 :]:
            b = blocks[bj]
            if nxt is not None or _heading_level(b.token) <= start.level or start.level == 99:
                stop = b.begin
                break
        body_begin = start.body_line
        entry_blocks = [b for b in blocks if b.begin >= start.line and b.begin < stop]
        question_md = start.question_md
        detail = ""
        if start.kind == "qa-heading":
            label = next(
                (
                    b
                    for b in entry_blocks
                    if b.begin >= body_begin and clean.is_answer_label(b.inline)
                ),
                None,
            )
            if label is not None:
                detail = clean.clean_markdown(_body(lines, blocks, body_begin, label.begin))
                body_begin = label.begin
        answer_md = _body(lines, blocks, body_begin, stop)
        if start.kind == "qa-heading":
            answer_md = clean.strip_answer_label(answer_md.lstrip("\n"))
        answer = clean.clean_markdown(answer_md).strip()
        question = clean.plain_text(clean.clean_markdown(question_md))
        if not question:
            continue
        last = _last_text_line(lines, start.line, stop)
        digest = hashlib.sha1(question.encode("utf-8")).hexdigest()[:8]
        entry_id = f"{slug}:{digest}"
        n = 2
        while entry_id in seen_ids:
            entry_id = f"{slug}:{digest}-{n}"
            n += 1
        seen_ids.add(entry_id)
        external = clean.is_link_only(answer)
        entries.append(
            Entry(
                id=entry_id,
                question=question,
                answer=answer,
                source=source,
                path=path,
                line=start.line + 1,
                end_line=max(last, start.line) + 1,
                section=start.section or doc_title,
                layout=start.kind,
                detail=detail,
                has_answer=clean.has_text(answer),
                external=external,
            )
        )
    return entries
