"""textDocument/completion: glossary terms by prefix (case and separators ignored, Chinese
prefixes too), corpus code blocks as snippets in code, citation snippets in notes. The list is
cheap; cards arrive through completionItem/resolve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsprotocol import types

from ..cards import card_title, citation, without_title
from ..glossary import term_key
from ..snippets import as_snippet_text, snippet_doc
from ..terms import Completion, is_prose
from .textpos import cursor_at, open_document

if TYPE_CHECKING:
    from .server import LlmrefServer

LIMIT = 40
_KIND = {
    "code": types.CompletionItemKind.Reference,
    "name": types.CompletionItemKind.Keyword,
    "aliases": types.CompletionItemKind.Keyword,
    "zh": types.CompletionItemKind.Text,
}


def complete(ls: LlmrefServer, params: types.CompletionParams) -> types.CompletionList | None:
    if not ls.options.completion_enabled or ls.finder is None:
        return None
    # only documents the client has open, and only a window of the line around the cursor
    doc = open_document(ls, params.text_document.uri)
    if doc is None or not ls.options.language_enabled(doc.language_id):
        return None
    cursor = cursor_at(doc, params.position)
    if cursor is None:
        return None
    start, typed = ls.finder.prefix_before(cursor.text, cursor.col)
    if not typed or not term_key(typed):
        return None
    edit_range = cursor.range(start, cursor.col)
    prose = is_prose(doc.language_id)
    rows, cut = ls.finder.complete(typed, limit=LIMIT, prose=prose)
    items: list[types.CompletionItem] = []
    glossary = ls.finder.glossary
    for n, row in enumerate(rows):
        concept = glossary.get(row.concept)
        if concept is None:
            continue
        items.append(
            types.CompletionItem(
                label=row.label,
                kind=_KIND[row.kind],
                detail=card_title(concept),
                sort_text=f"0{n:03d}",
                filter_text=_filter_text(typed, row.forms),
                text_edit=types.TextEdit(range=edit_range, new_text=row.label),
                data={"concept": row.concept},
            )
        )
    if ls.options.completion_snippets:
        items.extend(
            _citations(ls, rows, typed, edit_range)
            if prose
            else _code_snippets(ls, typed, edit_range)
        )
    return types.CompletionList(is_incomplete=True if cut or not items else cut, items=items)


def _filter_text(typed: str, forms: Sequence[str]) -> str:
    """Every matching form of the concept, one that starts with what was typed first (the
    server has already matched, ignoring case and separators: the client must keep the row
    while the typed text is a prefix of any form)."""
    lowered = typed.lower()
    lead = next((f for f in forms if f.lower().startswith(lowered)), typed)
    return " ".join(dict.fromkeys([lead, *forms]))


def _citations(
    ls: LlmrefServer, rows: Sequence[Completion], typed: str, edit_range: types.Range
) -> list[types.CompletionItem]:
    """In notes: "term — one-line answer — source link" for the best few concepts."""
    ref = ls.ref
    if ref is None:
        return []
    out: list[types.CompletionItem] = []
    for row in rows:
        if len(out) >= 3:
            break
        best = ref.cited(row.concept)
        if best is None:
            continue
        text = citation(ref.glossary.get(row.concept), best, row.label)
        out.append(
            types.CompletionItem(
                label=f"{row.label} — cite",
                kind=types.CompletionItemKind.Snippet,
                detail=f"citation of {best.source}:{best.line}",
                sort_text=f"1{len(out):03d}",
                filter_text=_filter_text(typed, row.forms),
                text_edit=types.TextEdit(range=edit_range, new_text=text),
                insert_text_format=types.InsertTextFormat.PlainText,
                # built of escaped text and the entry's own link: safe markdown already
                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            )
        )
    return out


def _code_snippets(
    ls: LlmrefServer, typed: str, edit_range: types.Range
) -> list[types.CompletionItem]:
    """In code: corpus code blocks whose name, or whose question's concepts, match the prefix."""
    ref = ls.ref
    if ref is None or ls.finder is None:
        return []
    key = term_key(typed)
    rows, _cut = ls.finder.complete(typed, limit=20)
    concepts = list(dict.fromkeys(row.concept for row in rows))
    out: list[types.CompletionItem] = []
    snippets = ref.snippets_for(key, concepts)
    entries = ref.store.entries([s.entry_id for s in snippets])
    for snippet in snippets:
        entry = entries.get(snippet.entry_id)
        if entry is None:
            continue
        names = [snippet.name] + [
            form
            for c in entry.question_concepts
            if (concept := ref.glossary.get(c))
            for form, _ in concept.forms()
        ]
        if not any(term_key(n).startswith(key) for n in names):
            continue
        out.append(
            types.CompletionItem(
                label=snippet.name,
                kind=types.CompletionItemKind.Snippet,
                detail=f"code from {entry.source}:{entry.line} — {entry.question}",
                sort_text=f"1{len(out):03d}",
                filter_text=typed,
                text_edit=types.TextEdit(range=edit_range, new_text=as_snippet_text(snippet.code)),
                insert_text_format=types.InsertTextFormat.Snippet,
                documentation=types.MarkupContent(
                    kind=types.MarkupKind.Markdown, value=snippet_doc(snippet, entry)
                ),
            )
        )
    return out


def resolve(ls: LlmrefServer, item: types.CompletionItem) -> types.CompletionItem:
    data = item.data if isinstance(item.data, dict) else None
    concept = data.get("concept") if data else None
    if isinstance(concept, str) and item.documentation is None:
        text = ls.card_text(concept)
        if text:
            # the item's detail is the card's title already: the card without it
            item.documentation = types.MarkupContent(kind=ls.markup_kind, value=without_title(text))
    return item
