"""textDocument/definition: the best Q&A about the term under the cursor, in its corpus file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from ..corpus.entry import Entry
from .hover import term_at

if TYPE_CHECKING:
    from .server import LlmrefServer


def entry_location(entry: Entry) -> types.Location:
    """The question's line through the answer's last line (LSP lines are 0-based)."""
    start = types.Position(line=entry.line - 1, character=0)
    end = types.Position(line=max(entry.end_line - 1, entry.line - 1), character=0)
    return types.Location(uri=Path(entry.path).as_uri(), range=types.Range(start=start, end=end))


def definition(ls: LlmrefServer, params: types.DefinitionParams) -> types.Location | None:
    ref = ls.ref
    if ref is None:
        return None
    found = term_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    best = ref.cited(found[0].concept)
    return entry_location(best) if best is not None else None
