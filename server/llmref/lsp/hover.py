"""textDocument/hover: the card of the glossary term under the cursor, or nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from ..sense import Context
from ..terms import TermHit, is_prose

if TYPE_CHECKING:
    from .server import LlmrefServer


def term_at(
    ls: LlmrefServer, uri: str, position: types.Position
) -> tuple[TermHit, types.Range] | None:
    """The term under a client position, with its range in client units."""
    if ls.finder is None:
        return None
    doc = ls.workspace.get_text_document(uri)
    if not ls.options.language_enabled(doc.language_id):
        return None
    lines = doc.lines
    pos = doc.position_codec.position_from_client_units(lines, position)
    if pos.line >= len(lines):
        return None
    line = lines[pos.line].rstrip("\r\n")
    # the document is the context that picks an identifier's sense (top_k in an MoE router)
    context = Context(doc.source, pos.line, (uri, doc.version))
    hit = ls.finder.at(line, pos.character, prose=is_prose(doc.language_id), context=context)
    if hit is None:
        return None
    rng = doc.position_codec.range_to_client_units(
        lines,
        ServerTextRange(
            ServerTextPosition(pos.line, hit.start), ServerTextPosition(pos.line, hit.end)
        ),
    )
    return hit, rng


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
