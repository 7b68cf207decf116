"""Cards: concept + best Q&A -> markdown (or plain text) for hovers, completion docs and
``llmref.show``. Core: no pygls, no lsprotocol.

Corpus and glossary text is untrusted data: every piece of it goes through
:func:`llmref.safe_markdown.sanitize` (links only to the web and into the corpus roots, no
image embeds, no raw HTML); names and questions are escaped as text. Formulas (LaTeX) are
rewritten into readable Unicode, since editors do not render LaTeX.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .corpus.entry import Entry
from .glossary import Concept
from .safe_markdown import code_fence, code_span, escape_text, sanitize, to_plain

MORE_SHOWN = 99  # "99+ more answers" from here (the store counts up to 100)

# a fence line: any container prefix (quote markers, list indentation), then ``` or ~~~
_FENCE = re.compile(r"^(?P<prefix>[ \t>]*)(?P<fence>`{3,}|~{3,})(?P<rest>.*)$")
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(?!\s)([^$]{1,4000}?)\$", re.S)

# --- formulas ------------------------------------------------------------------------------

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ",
    "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ",
    "Theta": "Θ", "Lambda": "Λ", "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
_SYMBOLS = {
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "leq": "≤", "le": "≤", "geq": "≥",
    "ge": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "infty": "∞", "sum": "Σ", "prod": "Π",
    "int": "∫", "partial": "∂", "nabla": "∇", "rightarrow": "→", "to": "→", "leftarrow": "←",
    "Rightarrow": "⇒", "in": "∈", "sqrt": "√", "log": "log", "exp": "exp", "max": "max",
    "min": "min", "quad": " ", "qquad": "  ", ",": " ", ";": " ", "!": "", "left": "",
    "right": "", "big": "", "Big": "", "mathbb": "", "mathrm": "", "mathbf": "", "ldots": "…",
    "cdots": "⋯", "odot": "⊙", "otimes": "⊗", "top": "ᵀ", "sim": "~",
}  # fmt: skip
_SUP = str.maketrans("0123456789+-=()nTi", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀⁱ")
_SUB = str.maketrans("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")


def latex_to_text(tex: str) -> str:
    """A readable plain form of a LaTeX formula (\\frac{a}{b} -> (a)/(b), \\sigma -> σ …)."""
    s = tex.replace("\\\\", "\\")  # exports that doubled every backslash
    s = re.sub(r"\\([_*\-])", r"\1", s)  # markdown escapes inside the formula (p\_{w})
    s = re.sub(
        r"\\(?:text|textbf|textit|operatorname|mathrm|mathbf|mathit)\s*\{([^{}]*)\}", r"\1", s
    )

    def command(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in ("frac", "sqrt"):
            return m.group(0)
        return _GREEK.get(name, _SYMBOLS.get(name, name))

    s = re.sub(r"\\([A-Za-z]+|[,;!])", command, s)

    def sup(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        trans = body.translate(_SUP)
        return trans if all(ch not in body for ch in "abcdefghjklmopqrsuvwxyz") else f"^({body})"

    def sub(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        trans = body.translate(_SUB)
        return trans if trans != body else f"_{body}"

    s = re.sub(r"\^\{([^{}]*)\}|\^(\w)", sup, s)
    s = re.sub(r"_\{([^{}]*)\}|_(\w)", sub, s)
    for _ in range(4):  # nested fractions and roots, innermost first
        s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", s)
        s = re.sub(r"\\sqrt\s*\{([^{}]*)\}", r"√(\1)", s)
    s = s.replace("{", "").replace("}", "")
    return re.sub(r"[ \t]{2,}", " ", s).strip()


def _formulas(markdown: str) -> str:
    def render(m: re.Match[str]) -> str:
        body = m.group(1) or m.group(2)
        if not re.search(r"[\\^_{}]", body):  # "$5 and $10": not a formula
            return m.group(0)
        text = latex_to_text(body)
        if "\n" in text:  # a display formula: keep its lines, as a plain block
            return "\n" + code_fence(re.sub(r"\n{2,}", "\n", text), "text") + "\n"
        return code_span(" ".join(text.split()))

    return _MATH.sub(render, markdown)


# --- cutting ----------------------------------------------------------------------------------


def cut_markdown(markdown: str, max_lines: int) -> tuple[str, bool]:
    """The answer up to about ``max_lines`` lines, cut at a paragraph (block) boundary.
    Returns (text, was_cut). A fenced block that must be cut is closed with its own fence.
    Cutting inside a block can leave half a construct: sanitize the result again."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fence: tuple[str, str] | None = None  # (prefix, fence) of the open code block
    for line in markdown.strip("\n").split("\n"):
        fence = _next_fence(line, fence)
        if not line.strip() and fence is None:
            if current:
                blocks.append(current)
                current = []
            continue
        current.append(line)
    if current:
        blocks.append(current)
    kept: list[str] = []
    used = 0
    for i, block in enumerate(blocks):
        # a long line wraps: count the lines a reader sees (about 80 columns each)
        height = sum(max(1, -(-_width(x) // 80)) for x in block)
        if used and used + height > max_lines:
            return "\n\n".join(kept), True
        if height > max_lines - used:  # the first block alone is too long: cut inside it
            part = _take_lines(block, max(max_lines - used, 3))
            still_open: tuple[str, str] | None = None
            for line in part:
                still_open = _next_fence(line, still_open)
            if still_open is not None:
                part.append(still_open[0] + still_open[1])
            kept.append("\n".join(part))
            return "\n\n".join(kept), True
        kept.append("\n".join(block))
        used += height
        if used >= max_lines and i < len(blocks) - 1:
            return "\n\n".join(kept), True
    return "\n\n".join(kept), False


def _next_fence(line: str, fence: tuple[str, str] | None) -> tuple[str, str] | None:
    """The open code fence after ``line`` (CommonMark: a fence closes with the same
    character, at least as long, and nothing after it)."""
    m = _FENCE.match(line)
    if m is None:
        return fence
    mark, rest = m.group("fence"), m.group("rest")
    if fence is None:
        if mark[0] == "`" and "`" in rest:
            return None  # ```a``` is inline code, not a fence
        return m.group("prefix"), mark
    if mark[0] == fence[1][0] and len(mark) >= len(fence[1]) and not rest.strip():
        return None
    return fence


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _take_lines(block: list[str], budget: int) -> list[str]:
    """The first lines of a block worth ``budget`` visual lines (a long line is shortened)."""
    out: list[str] = []
    for line in block:
        height = max(1, -(-_width(line) // 80))
        if height > budget:
            if budget > 0 and not _FENCE.match(line):
                out.append(_shorten(line, budget * 80))
            break
        out.append(line)
        budget -= height
    return out or block[:1]


def _shorten(line: str, columns: int) -> str:
    used = 0
    for i, ch in enumerate(line):
        used += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if used > columns - 1:
            return line[:i].rstrip() + "…"
    return line


# --- cards ------------------------------------------------------------------------------------


@dataclass
class CardInput:
    concept: Concept | None
    entry: Entry | None
    others: list[Entry]  # same-group entries ("also in …")
    related: list[Concept]
    more: int  # how many more answers beyond the one shown (MORE_SHOWN and up: "99+")
    loading: bool = False  # the corpus is still being indexed
    others_more: int = 0  # same-group entries beyond ``others`` ("and 12 more")
    others_capped: bool = False  # the group was listed up to a cap: "and 45+ more"
    roots: Sequence[Path] = field(default_factory=list)  # resolved corpus roots (file links)


def entry_uri(entry: Entry) -> str:
    return Path(entry.path).as_uri() if entry.path else ""


def location_link(entry: Entry) -> str:
    """``[source:line](file:///…#Lline)``: the entry's own file (found under a corpus root)."""
    label = escape_text(f"{entry.source}:{entry.line}")
    uri = entry_uri(entry)
    return f"[{label}]({uri}#L{entry.line})" if uri else label


def _safe(markdown: str, base: Path | None, roots: Sequence[Path]) -> str:
    return sanitize(_formulas(markdown), base=base, roots=roots)


def _head(markdown: str, max_lines: int) -> tuple[str, bool]:
    """The start of a long answer, enough for ``max_lines`` lines and more (parsing the whole
    of a huge answer for a 12-line card would cost seconds); cut at a line end."""
    limit = max_lines * 400 + 2000
    if len(markdown) <= limit:
        return markdown, False
    end = markdown.rfind("\n", 0, limit)
    return markdown[: end if end > 0 else limit], True


def _cut(
    markdown: str, max_lines: int, base: Path | None, roots: Sequence[Path]
) -> tuple[str, bool]:
    text, was_cut = cut_markdown(markdown, max_lines)
    # a cut inside a block can leave half a code span or link: make the rest text again
    return (sanitize(text, base=base, roots=roots) if was_cut else text), was_cut


def render_entry(
    entry: Entry, max_lines: int = 12, *, heading: str = "####", roots: Sequence[Path] = ()
) -> str:
    """An entry's question and (cut) answer as safe markdown. ``roots``: the corpus roots,
    resolved; links into other files must stay inside them."""
    base = Path(entry.path).parent if entry.path else None
    question = " ".join(entry.question.split())
    parts = [f"{heading} {escape_text(question)}".rstrip()]
    if entry.detail:
        lines = max(3, max_lines // 3)
        detail = _safe(_head(entry.detail, lines)[0], base, roots)
        parts.append(_cut(detail, lines, base, roots)[0])
    head, long = _head(entry.answer, max_lines)
    answer = _safe(head, base, roots) if head else ""
    if entry.external:
        parts.append("*The answer is external:*" + (f"\n\n{answer}" if answer else ""))
    elif not entry.has_answer:
        parts.append("*No answer text in the source.*" + (f"\n\n{answer}" if answer else ""))
    elif answer:
        body, was_cut = _cut(answer, max_lines, base, roots)
        parts.append(body + ("\n\n…" if was_cut or long else ""))
    return "\n\n".join(p for p in parts if p)


def card_title(concept: Concept) -> str:
    """The card's title as plain text: name · Chinese names (completion details show it)."""
    title = concept.name.strip()
    if concept.zh:
        title += " · " + " / ".join(concept.zh[:2])
    return title


def _title(concept: Concept) -> str:
    name = escape_text(" ".join(concept.name.split()))
    title = f"**{name}**" if name else ""
    if concept.zh:
        title += " · " + escape_text(" / ".join(" ".join(z.split()) for z in concept.zh[:2]))
    return title


def render_card(card: CardInput, max_lines: int = 12) -> str:
    """The hover card, in markdown: the title, under it the source (or why there is none) and
    how many more answers there are — the first two lines, what an editor shows without
    scrolling — then the definition, the best Q&A, related concepts."""
    c = card.concept
    head: list[str] = [_title(c)] if c is not None else []
    if card.entry is not None:
        where = "Source: " + location_link(card.entry)
        if card.others:
            where += " · also in " + ", ".join(location_link(o) for o in card.others)
            if card.others_more:
                where += f" and {card.others_more}{'+' if card.others_capped else ''} more"
        if card.more >= MORE_SHOWN:  # counted up to a cap (store.about_count)
            where += f" · {MORE_SHOWN}+ more answers"
        elif card.more:
            where += f" · {card.more} more answer{'s' if card.more != 1 else ''}"
        head.append(where)
    elif card.loading:
        head.append("*Indexing the corpus…*")
    elif c is not None:
        head.append("*No Q&A about this in the corpus.*")
    parts = ["  \n".join(x for x in head if x)]
    if c is not None and c.definition:
        base = Path(c.file).parent if c.file else None
        parts.append(_safe(c.definition, base, card.roots))
    if card.entry is not None:
        parts.append("---")
        parts.append(render_entry(card.entry, max_lines, roots=card.roots))
    if card.related:
        names = (escape_text(" ".join(r.name.split())) for r in card.related)
        parts.append("Related: " + " · ".join(names))
    return "\n\n".join(p for p in parts if p)


def without_title(card_text: str) -> str:
    """A card (markdown or plain) without its first line, the title: for completion details,
    where the item's ``detail`` already shows it."""
    _title_line, _, rest = card_text.partition("\n")
    return rest.lstrip("\n")


def citation(concept: Concept | None, entry: Entry, term: str) -> str:
    """A citation snippet for notes: term, one-line answer, source link (markdown, escaped)."""
    from .corpus.clean import excerpt

    name = escape_text(concept.name if concept else term)
    zh = f"（{escape_text(concept.zh[0])}）" if concept and concept.zh else ""
    one_line = excerpt(entry.answer, 120) if entry.has_answer else entry.question
    # a team entry's file is a copy in this user's cache: notes get its name, not that path
    where = (
        escape_text(f"{entry.source}:{entry.line}")
        if entry.id.startswith("team:")
        else location_link(entry)
    )
    return f"**{name}**{zh}：{escape_text(one_line)} — {where}"


__all__ = [
    "CardInput",
    "card_title",
    "citation",
    "cut_markdown",
    "latex_to_text",
    "location_link",
    "render_card",
    "render_entry",
    "sanitize",
    "to_plain",
    "without_title",
]
