"""The text around the cursor, cheaply and only from documents the editor has open.

Hover, completion and definition look at a document only if the client opened it: an
unopened URI is never read from disk (it could be ``/dev/zero`` or a FIFO). And they look
only at a window of the cursor's line, so a 5 MB single line costs what a short line does:
the line is found by scanning line ends up to it (not by splitting the document), and
columns are converted between the client's units (UTF-16 by default, UTF-8 or UTF-32 when
negotiated) and Python indices inside the window, except when the line holds characters
whose units differ and the cursor is far along it (then the prefix is encoded once, in C).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from .server import LlmrefServer

SPAN = 2048  # characters either side of the cursor that the term finder is given


@dataclass(frozen=True)
class Cursor:
    """A window of one line around the cursor."""

    text: str  # the window (no line end)
    col: int  # the cursor's index in ``text``
    line: int  # the LSP line
    units: int  # client units from the start of the line to text[col]
    encoding: str  # "utf-16", "utf-8" or "utf-32"

    def column(self, index: int) -> int:
        """The client column of ``text[index]``."""
        if index >= self.col:
            return self.units + _units(self.text[self.col : index], self.encoding)
        return self.units - _units(self.text[index : self.col], self.encoding)

    def range(self, start: int, end: int) -> types.Range:
        """The client range of ``text[start:end]``."""
        return types.Range(
            start=types.Position(line=self.line, character=self.column(start)),
            end=types.Position(line=self.line, character=self.column(end)),
        )


def open_document(ls: LlmrefServer, uri: str) -> TextDocument | None:
    """The document if the client has it open (pygls keys them by unquoted URI), else None."""
    return ls.workspace.text_documents.get(unquote(uri))


def cursor_at(doc: TextDocument, position: types.Position) -> Cursor | None:
    """The window around ``position``, or None when the line does not exist."""
    source = doc.source
    start = _line_start(source, position.line)
    if start is None:
        return None
    encoding = _encoding(doc)
    want = position.character
    # each character is at least one unit: the cursor is within `want` characters of the
    # line start, and nothing past SPAN characters after it is ever looked at
    limit = min(len(source), start + want + SPAN)
    line_end = min(
        (i for i in (source.find("\n", start, limit), source.find("\r", start, limit)) if i >= 0),
        default=limit,
    )
    index, units = _index(source, start, line_end, want, encoding)
    lo = max(start, start + index - SPAN)
    hi = min(line_end, start + index + SPAN)
    return Cursor(
        text=source[lo:hi],
        col=start + index - lo,
        line=position.line,
        units=units,
        encoding=encoding,
    )


def _line_start(source: str, line: int) -> int | None:
    """Where LSP line ``line`` starts (after ``\\n``, ``\\r\\n`` or ``\\r``), or None.
    str.find runs at memchr speed; each part of the text is scanned at most twice."""
    if line <= 0:
        return 0
    pos = 0
    nl, cr = source.find("\n"), source.find("\r")
    for _ in range(line):
        if nl < 0 and cr < 0:
            return None
        if cr < 0 or 0 <= nl < cr or cr + 1 == nl:
            pos = nl + 1  # \n or \r\n
        else:
            pos = cr + 1  # a lone \r
        if 0 <= nl < pos:
            nl = source.find("\n", pos)
        if 0 <= cr < pos:
            cr = source.find("\r", pos)
    return pos


def _encoding(doc: TextDocument) -> str:
    name = str(getattr(doc.position_codec, "encoding", "utf-16") or "utf-16").lower()
    return name if name in ("utf-8", "utf-32") else "utf-16"


def _index(source: str, start: int, end: int, units: int, encoding: str) -> tuple[int, int]:
    """(index, its units): the character index in source[start:end] of a client column
    (clamped to the line), and the exact client column of that index."""
    n = min(max(units, 0), end - start)
    if encoding == "utf-32" or source.isascii() or (encoding == "utf-16" and _bmp_only(source)):
        return n, n
    prefix = source[start : start + n]  # the index is at most `units` characters in
    codec, width = ("utf-16-le", 2) if encoding == "utf-16" else ("utf-8", 1)
    data = prefix.encode(codec, "surrogatepass")
    total = len(data) // width
    if total <= units:
        return n, total
    # the column falls inside the prefix: the characters after it are the decoded tail
    tail = data[units * width :].decode(codec, "surrogatepass" if width == 2 else "ignore")
    index = n - len(tail)
    at = total - _units(source[start + index : start + n], encoding)
    if at < units:  # a column inside a character counts the whole character (as pygls does)
        at += _units(source[start + index], encoding)
        index += 1
    return index, at


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _bmp_only(text: str) -> bool:
    """True when ``text`` certainly has no character beyond the BMP (2 UTF-16 units), in
    O(1): CPython stores a string that has one in 4 bytes per character, others in 1 or 2.
    False means "maybe" (then the caller converts exactly)."""
    try:
        return sys.getsizeof(text) < 4 * len(text)
    except TypeError:  # pragma: no cover - not CPython
        return False
