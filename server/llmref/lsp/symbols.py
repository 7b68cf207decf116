"""workspace/symbol: the editor's symbol search becomes corpus search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from .definition import entry_location

if TYPE_CHECKING:
    from .server import LlmrefServer

LIMIT = 50


def workspace_symbols(
    ls: LlmrefServer, params: types.WorkspaceSymbolParams
) -> list[types.SymbolInformation] | None:
    ref = ls.ref
    query = params.query.strip()
    if ref is None or not query:
        return []
    out: list[types.SymbolInformation] = []
    found = ref.search(query, limit=LIMIT)
    if found.degraded:
        ls.loader.repair()
    for result in found.results:
        entry = result.entry
        names = [ref.glossary.get(c) for c in entry.question_concepts[:3]]
        container = entry.source + (
            " · " + ", ".join(c.name for c in names if c) if any(names) else ""
        )
        out.append(
            types.SymbolInformation(
                name=entry.question,
                kind=types.SymbolKind.String,
                location=entry_location(entry),
                container_name=container,
            )
        )
    return out
