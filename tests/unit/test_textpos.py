"""The window around the cursor: the same character and the same client columns as a
character-by-character conversion, for UTF-16, UTF-8 and UTF-32 clients, on any line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec

from llmref.lsp import textpos

CHARS = st.sampled_from(list("ab_ Z9") + ["旋", "转", "é", "😋", "𝔸", "\t"])
LINE = st.lists(CHARS, max_size=40).map("".join)
ENCODINGS = {"utf-16": "utf-16-le", "utf-8": "utf-8", "utf-32": "utf-32-le"}
WIDTH = {"utf-16": 2, "utf-8": 1, "utf-32": 4}


def units(text: str, encoding: str) -> int:
    return len(text.encode(ENCODINGS[encoding])) // WIDTH[encoding]


def reference_index(line: str, column: int, encoding: str) -> int:
    """The first index whose column reaches ``column`` (a column inside a character counts
    the whole character), clamped to the line."""
    for i in range(len(line) + 1):
        if units(line[:i], encoding) >= column:
            return i
    return len(line)


def document(lines: list[str], ends: list[str], encoding: str) -> TextDocument:
    source = "".join(line + end for line, end in zip(lines, ends, strict=True))
    return TextDocument("file:///t.md", source=source, position_codec=PositionCodec(encoding))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(LINE, min_size=1, max_size=4),
    data=st.data(),
    encoding=st.sampled_from(list(ENCODINGS)),
)
def test_cursor_matches_a_character_by_character_conversion(lines, data, encoding):
    ends = data.draw(
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines))
    )
    doc = document(lines, ends, encoding)
    lines = re.split(r"\r\n|\r|\n", doc.source)  # "\r" then "\n" is one line end
    n = data.draw(st.integers(0, len(lines) - 1))
    line = lines[n]
    column = data.draw(st.integers(0, units(line, encoding) + 3))
    cursor = textpos.cursor_at(doc, types.Position(line=n, character=column))
    assert cursor is not None
    index = reference_index(line, column, encoding)
    assert cursor.text == line  # short lines: the window is the whole line
    assert cursor.col == index
    assert cursor.units == units(line[:index], encoding)
    start = data.draw(st.integers(0, len(line)))
    end = data.draw(st.integers(start, len(line)))
    assert cursor.range(start, end) == types.Range(
        start=types.Position(line=n, character=units(line[:start], encoding)),
        end=types.Position(line=n, character=units(line[:end], encoding)),
    )


def test_a_line_past_the_end_has_no_cursor():
    doc = document(["one", "two"], ["\n", "\n"], "utf-16")
    assert textpos.cursor_at(doc, types.Position(line=3, character=0)) is None
    # the empty line after the last line end exists (LSP counts it)
    assert textpos.cursor_at(doc, types.Position(line=2, character=0)).text == ""


@pytest.mark.parametrize(
    "unit", ["KV cache and RMSNorm, ", "旋转位置编码和 KV cache，", "KV 😋 cache, "]
)
def test_a_long_line_gives_a_window_around_the_cursor(unit):
    line = (unit * (300_000 // len(unit) + 1))[:300_000]
    doc = TextDocument("file:///t.md", source="first\n" + line + "\nlast")
    index = 250_000
    column = len(line[:index].encode("utf-16-le")) // 2
    cursor = textpos.cursor_at(doc, types.Position(line=1, character=column))
    assert len(cursor.text) == 2 * textpos.SPAN
    assert cursor.text[cursor.col :] == line[index : index + textpos.SPAN]
    assert cursor.units == column
    assert cursor.range(cursor.col - 3, cursor.col + 2) == types.Range(
        start=types.Position(line=1, character=len(line[: index - 3].encode("utf-16-le")) // 2),
        end=types.Position(line=1, character=len(line[: index + 2].encode("utf-16-le")) // 2),
    )
