"""Code blocks of the corpus as snippets (the DeepNorm layer, the cosine schedule …).
Core: no pygls, no lsprotocol."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cards import location_link
from .corpus.entry import Entry
from .safe_markdown import code_fence, escape_text, fenced_blocks
from .store import SnippetRow

_NAME = re.compile(r"^\s*(?:class|def)\s+([A-Za-z_]\w*)", re.M)
_CODE_HINT = re.compile(r"^\s*(?:import |from \S+ import |def |class |\w+\s*=)", re.M)
CODE_LANGS = frozenset({"", "python", "py", "python3", "text-plain", "text", "pytorch", "torch"})


@dataclass(frozen=True)
class Snippet:
    name: str  # the class/def it defines, else a name made from the question
    code: str
    entry_id: str
    language: str


def extract(entry: Entry) -> list[Snippet]:
    """The fenced code blocks of an entry's answer that look like Python code."""
    out: list[Snippet] = []
    for lang, code in fenced_blocks(entry.answer):
        body = code.rstrip("\n")
        if lang.lower() not in CODE_LANGS or not _CODE_HINT.search(body):
            continue
        if len(body.splitlines()) < 3:
            continue
        names = _NAME.findall(body)
        name = names[0] if names else f"snippet {len(out) + 1}"
        out.append(Snippet(name, body, entry.id, "python"))
    return out


def snippet_doc(snippet: Snippet | SnippetRow, entry: Entry) -> str:
    """A snippet's documentation (safe markdown): the code, fenced so that nothing in it can
    close the fence, then the question it answers and its source."""
    question = escape_text(" ".join(entry.question.split()))
    return f"{code_fence(snippet.code, snippet.language)}\n\n{question} — {location_link(entry)}"


def as_snippet_text(code: str) -> str:
    """Code -> LSP snippet syntax (``$``, ``}`` and ``\\``` escaped), with a final tab stop."""
    escaped = code.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")
    return escaped + "\n$0"
