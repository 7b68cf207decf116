"""Code blocks of the corpus as snippets (the DeepNorm layer, the cosine schedule …).
Core: no pygls, no lsprotocol."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .corpus.entry import Entry

_BLOCK = re.compile(
    r"^(?P<indent>\s{0,3})(?P<fence>```|~~~)(?P<lang>[^\n`]*)\n(?P<body>.*?)^\s{0,3}(?P=fence)\s*$",
    re.M | re.S,
)
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
    """The code blocks of an entry's answer that look like Python code."""
    out: list[Snippet] = []
    for m in _BLOCK.finditer(entry.answer):
        lang = m.group("lang").strip().lower()
        body = m.group("body").rstrip("\n")
        if lang not in CODE_LANGS or not _CODE_HINT.search(body) or len(body.splitlines()) < 3:
            continue
        names = _NAME.findall(body)
        name = names[0] if names else f"snippet {len(out) + 1}"
        out.append(Snippet(name, body, entry.id, "python"))
    return out


def as_snippet_text(code: str) -> str:
    """Code -> LSP snippet syntax (``$``, ``}`` and ``\\`` escaped), with a final tab stop."""
    escaped = code.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")
    return escaped + "\n$0"
