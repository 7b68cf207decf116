"""workspace/executeCommand: llmref.search, llmref.show, llmref.reindex (the VS Code
extension's command palette and any other client call these; no logic lives client-side)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cards import location_link, render_entry
from ..corpus.entry import result_json
from ..safe_markdown import escape_text

if TYPE_CHECKING:
    from .server import LlmrefServer

SEARCH = "llmref.search"
SHOW = "llmref.show"
REINDEX = "llmref.reindex"


def _first(args: Any) -> Any:
    if isinstance(args, (list, tuple)):
        return args[0] if args else None
    return args


def search(ls: LlmrefServer, args: Any) -> list[dict] | dict:
    """args: [query] or [query, limit] or [{"query": …, "limit": …}] -> results as the CLI's --json."""
    first = _first(args)
    limit = 10
    if isinstance(first, dict):
        query, limit = first.get("query", ""), first.get("limit", limit)
    else:
        query = first or ""
        if isinstance(args, (list, tuple)) and len(args) > 1 and isinstance(args[1], int):
            limit = args[1]
    if not isinstance(query, str) or not isinstance(limit, int) or limit < 1:
        return {"error": "llmref.search takes a query string and an optional positive limit"}
    ref = ls.ref
    if ref is None:
        return {"error": "the corpus is still loading", "loading": True}
    result = ref.search(query, limit=min(limit, 100))
    if result.degraded:
        ls.loader.repair()
    out = []
    for r in result.results:
        data = result_json(r.entry, r.score)
        names = (ref.glossary.get(c) for c in r.entry.question_concepts or r.entry.concepts[:3])
        data["concept_names"] = [c.name for c in names if c is not None]
        out.append(data)
    return out


def show(ls: LlmrefServer, args: Any) -> dict:
    """args: [id] -> {"id", "markdown", "entry"}: the full entry as markdown."""
    entry_id = _first(args)
    if isinstance(entry_id, dict):
        entry_id = entry_id.get("id")
    ref = ls.ref
    if ref is None:
        return {"error": "the corpus is still loading", "loading": True}
    entry = ref.get(entry_id) if isinstance(entry_id, str) else None
    if entry is None:
        return {"error": f"no entry with id {entry_id!r}"}
    # every corpus text in it goes through the sanitizer (the VS Code preview renders this)
    entry_md = render_entry(entry, max_lines=10_000, heading="#", roots=ref.roots)
    parts = [entry_md, "Source: " + location_link(entry)]
    others = [ref.entries[i] for i in entry.also_in if i in ref.entries]
    if others:
        parts.append("Also in: " + ", ".join(location_link(o) for o in others))
    names = [ref.glossary.get(c) for c in entry.concepts[:8]]
    if any(names):
        parts.append("Concepts: " + ", ".join(escape_text(c.name) for c in names if c))
    return {"id": entry.id, "markdown": "\n\n".join(parts), "entry": result_json(entry)}
