"""textDocument/hover: the card of the glossary term under the cursor, or nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..sense import Context
from ..terms import TermHit, is_prose
from .textpos import cursor_at, open_document

if TYPE_CHECKING:
    from .server import LlmrefServer


def term_at(
    ls: LlmrefServer, uri: str, position: types.Position
) -> tuple[TermHit, types.Range] | None:
    """The term under a client position, with its range in client units. Only documents the
    client has open, and only a window of the line around the cursor, are looked at."""
    if ls.finder is None:
        return None
    doc = open_document(ls, uri)
    if doc is None or not ls.options.language_enabled(doc.language_id):
        return None
    cursor = cursor_at(doc, position)
    if cursor is None:
        return None
    # the document is the context that picks an identifier's sense (top_k in an MoE router)
    context = Context(doc.source, cursor.line, (uri, doc.version))
    hit = ls.finder.at(cursor.text, cursor.col, prose=is_prose(doc.language_id), context=context)
    if hit is None:
        return None
    return hit, cursor.range(hit.start, hit.end)


def hover(ls: LlmrefServer, params: types.HoverParams) -> types.Hover | None:
    if not ls.options.hover_enabled:
        return None
    found = term_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    hit, rng = found
    text = ls.card_text(hit.concept)
    if not text:
        return None
    if hit.note:  # the sense the file chose, under the card's title line
        title, _, rest = text.partition("\n\n")
        plain = ls.markup_kind == types.MarkupKind.PlainText
        note = f"({hit.note})" if plain else f"*{hit.note}*"
        text = f"{title}\n\n{note}\n\n{rest}" if rest else f"{title}\n\n{note}"
    return types.Hover(contents=types.MarkupContent(kind=ls.markup_kind, value=text), range=rng)
