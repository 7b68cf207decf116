"""Cards: concept + best Q&A -> markdown (or plain text) for hovers, completion docs and
``llmref.show``. Core: no pygls, no lsprotocol.

Corpus text is untrusted data. Cards never carry ``command:`` (or any non-web, non-file)
links, never embed images (an image becomes its alt text, linked), and raw HTML is escaped.
Formulas (LaTeX) are rewritten into readable Unicode, since editors do not render LaTeX.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .corpus.entry import Entry
from .glossary import Concept

SAFE_SCHEMES = ("http://", "https://", "file://")

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.\-]*:[^>\s]*)>")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
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
            return "\n```text\n" + re.sub(r"\n{2,}", "\n", text) + "\n```\n"
        return "`" + text + "`"

    return _MATH.sub(render, markdown)


# --- safety ----------------------------------------------------------------------------------


def _safe_url(url: str, base: Path | None) -> str | None:
    """An http(s)/file URL for a link target, or None when it must not be a link."""
    if url.startswith(SAFE_SCHEMES):
        return url
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:", url):  # command:, javascript:, vscode:, data: …
        return None
    if base is not None and url and not url.startswith("#"):
        from urllib.parse import unquote

        target = (base / unquote(url.split("#", 1)[0])).resolve()
        return target.as_uri() if target.exists() else None
    return None


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sanitize(markdown: str, base: Path | None = None) -> str:
    """Untrusted markdown -> markdown safe to show: no command links, no image embeds,
    no raw HTML. Fenced code blocks are left as they are (editors render them inert)."""
    out: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(line)
            continue
        if in_fence:
            out.append(line)
            continue
        out.append(_sanitize_line(line, base))
    if in_fence:
        out.append("```")
    return "\n".join(out)


def _sanitize_line(line: str, base: Path | None) -> str:
    def image(m: re.Match[str]) -> str:
        alt = m.group(1).strip() or "image"
        url = _safe_url(m.group(2), base)
        alt = alt.replace("[", "").replace("]", "")
        return f"[🖼 {alt}]({url})" if url else f"🖼 {alt}"

    def link(m: re.Match[str]) -> str:
        url = _safe_url(m.group(2), base)
        return f"[{m.group(1)}]({url})" if url else m.group(1)

    line = _escape_text(line)
    # _escape_text turned "<url>" autolinks into "&lt;url&gt;": restore the safe ones
    line = re.sub(
        r"&lt;([a-zA-Z][a-zA-Z0-9+.\-]*:[^\s&]*)&gt;",
        lambda m: f"<{m.group(1)}>" if m.group(1).startswith(SAFE_SCHEMES) else f"`{m.group(1)}`",
        line,
    )
    line = _IMAGE.sub(image, line)
    line = _LINK.sub(link, line)
    return line


# --- cutting ----------------------------------------------------------------------------------


def cut_markdown(markdown: str, max_lines: int) -> tuple[str, bool]:
    """The answer up to about ``max_lines`` lines, cut at a paragraph (block) boundary.
    Returns (text, was_cut). A fenced block that must be cut is closed."""
    blocks: list[list[str]] = []
    current: list[str] = []
    in_fence = False
    for line in markdown.strip("\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
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
            if sum(bool(_FENCE.match(x)) for x in part) % 2:
                part.append(part[0].lstrip()[:3] if _FENCE.match(part[0]) else "```")
            kept.append("\n".join(part))
            return "\n\n".join(kept), True
        kept.append("\n".join(block))
        used += height
        if used >= max_lines and i < len(blocks) - 1:
            return "\n\n".join(kept), True
    return "\n\n".join(kept), False


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
    more: int  # how many more answers beyond the one shown
    loading: bool = False  # the corpus is still being indexed


def entry_uri(entry: Entry) -> str:
    return Path(entry.path).as_uri() if entry.path else ""


def location_link(entry: Entry) -> str:
    label = f"{entry.source}:{entry.line}"
    uri = entry_uri(entry)
    return f"[{label}]({uri}#L{entry.line})" if uri else label


def _code_span(text: str) -> str:
    return f"`{text}`" if "`" not in text else text


def render_entry(entry: Entry, max_lines: int = 12, *, heading: str = "####") -> str:
    """An entry's question and (cut) answer as safe markdown."""
    base = Path(entry.path).parent if entry.path else None
    parts = [f"{heading} {_escape_text(entry.question)}"]
    if entry.detail:
        detail, _ = cut_markdown(sanitize(_formulas(entry.detail), base), max(3, max_lines // 3))
        parts.append(detail)
    if entry.external:
        parts.append("*The answer is external:* " + sanitize(entry.answer, base))
    elif not entry.has_answer:
        answer = sanitize(entry.answer, base) if entry.answer else ""
        parts.append("*No answer text in the source.*" + (f" {answer}" if answer else ""))
    else:
        body, was_cut = cut_markdown(sanitize(_formulas(entry.answer), base), max_lines)
        parts.append(body + ("\n\n…" if was_cut else ""))
    return "\n\n".join(parts)


def render_card(card: CardInput, max_lines: int = 12) -> str:
    """The hover card, in markdown."""
    parts: list[str] = []
    c = card.concept
    if c is not None:
        title = f"**{_escape_text(c.name)}**"
        if c.zh:
            title += " · " + _escape_text(" / ".join(c.zh[:2]))
        parts.append(title)
        if c.definition:
            parts.append(_escape_text(c.definition))
    if card.entry is not None:
        parts.append("---")
        parts.append(render_entry(card.entry, max_lines))
        where = "Source: " + location_link(card.entry)
        if card.others:
            where += " · also in " + ", ".join(location_link(o) for o in card.others)
        parts.append(where)
    elif card.loading:
        parts.append("*Indexing the corpus…*")
    elif c is not None:
        parts.append("*No Q&A about this in the corpus.*")
    tail: list[str] = []
    if card.related:
        tail.append("Related: " + " · ".join(_escape_text(r.name) for r in card.related))
    if card.more:
        tail.append(f"{card.more} more answer{'s' if card.more != 1 else ''} in the corpus")
    if tail:
        parts.append("  \n".join(tail))
    return "\n\n".join(parts)


def to_plain(markdown: str) -> str:
    """Markdown card -> plain text (for clients that ask for plaintext)."""
    text = re.sub(r"^#{1,6}\s*", "", markdown, flags=re.M)
    text = re.sub(
        r"!?\[([^\]\n]*)\]\(([^)\s]*)\)",
        lambda m: f"{m.group(1)} <{m.group(2)}>" if m.group(2).startswith("http") else m.group(1),
        text,
    )
    text = (
        text.replace("**", "")
        .replace("`", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )
    text = re.sub(r"^---$", "—" * 20, text, flags=re.M)
    text = text.replace("  \n", "\n")
    return text


def citation(concept: Concept | None, entry: Entry, term: str) -> str:
    """A citation snippet for notes: term, one-line answer, source link."""
    from .corpus.clean import excerpt

    name = concept.name if concept else term
    zh = f"（{concept.zh[0]}）" if concept and concept.zh else ""
    one_line = excerpt(entry.answer, 120) if entry.has_answer else entry.question
    uri = entry_uri(entry)
    link = (
        f"[{entry.source}:{entry.line}]({uri}#L{entry.line})"
        if uri
        else f"{entry.source}:{entry.line}"
    )
    return f"**{name}**{zh}：{one_line} — {link}"


__all__ = [
    "CardInput",
    "citation",
    "cut_markdown",
    "latex_to_text",
    "location_link",
    "render_card",
    "render_entry",
    "sanitize",
    "to_plain",
]
