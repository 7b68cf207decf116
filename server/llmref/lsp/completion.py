"""textDocument/completion: glossary terms by prefix (case and separators ignored, Chinese
prefixes too), corpus code blocks as snippets in code, citation snippets in notes. The list is
cheap; cards arrive through completionItem/resolve."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..cards import citation
from ..glossary import term_key
from ..snippets import as_snippet_text
from ..terms import is_prose
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
    rows, cut = ls.finder.complete(typed, limit=LIMIT)
    items: list[types.CompletionItem] = []
    glossary = ls.finder.glossary
    for n, (form, cid, kind) in enumerate(rows):
        concept = glossary.get(cid)
        if concept is None:
            continue
        if not prose and concept.common_word and kind != "code":
            continue
        detail = concept.name if form == concept.name else f"{concept.name} ({form})"
        if concept.zh and form not in concept.zh:
            detail += f" · {concept.zh[0]}"
        items.append(
            types.CompletionItem(
                label=form,
                kind=_KIND[kind],
                detail=detail,
                sort_text=f"0{n:03d}",
                # the server has already matched (separators and case ignored): let the
                # client keep the item while the typed text is a prefix of the key
                filter_text=typed if not form.lower().startswith(typed.lower()) else form,
                text_edit=types.TextEdit(range=edit_range, new_text=form),
                data={"concept": cid},
            )
        )
    if ls.options.completion_snippets:
        items.extend(
            _citations(ls, rows, typed, edit_range)
            if prose
            else _code_snippets(ls, typed, edit_range)
        )
    return types.CompletionList(is_incomplete=True if cut or not items else cut, items=items)


def _citations(
    ls: LlmrefServer, rows, typed: str, edit_range: types.Range
) -> list[types.CompletionItem]:
    """In notes: "term — one-line answer — source link" for the best few concepts."""
    ref = ls.ref
    if ref is None:
        return []
    out: list[types.CompletionItem] = []
    seen: set[str] = set()
    for form, cid, _kind in rows:
        if cid in seen or len(out) >= 3:
            continue
        seen.add(cid)
        about = ref.about(cid)
        if not about:
            continue
        text = citation(ref.glossary.get(cid), about[0], form)
        out.append(
            types.CompletionItem(
                label=f"{form} — cite",
                kind=types.CompletionItemKind.Snippet,
                detail=f"citation of {about[0].source}:{about[0].line}",
                sort_text=f"1{len(out):03d}",
                filter_text=typed if not form.lower().startswith(typed.lower()) else form,
                text_edit=types.TextEdit(range=edit_range, new_text=text),
                insert_text_format=types.InsertTextFormat.PlainText,
                documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
            )
        )
    return out


def _code_snippets(
    ls: LlmrefServer, typed: str, edit_range: types.Range
) -> list[types.CompletionItem]:
    """In code: corpus code blocks whose name, or whose question's concepts, match the prefix."""
    ref = ls.ref
    if ref is None or not ref.snippets:
        return []
    key = term_key(typed)
    out: list[types.CompletionItem] = []
    for snippet in ref.snippets:
        entry = ref.entries.get(snippet.entry_id)
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
                    kind=types.MarkupKind.Markdown,
                    value=f"```python\n{snippet.code}\n```\n\n{entry.question}",
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
            item.documentation = types.MarkupContent(kind=ls.markup_kind, value=text)
    return item
