"""Cleaning of answer markdown and question text. Corpus text is data: nothing here fetches."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qs, unquote, urlsplit

# Link patterns stay linear on any input (a long line of "[[[[" or "[a]([a]([a](…"): link text
# holds no bracket and a URL no "]", so the text scanned from one "[" never holds another start.
_TEXT = r"\[([^\[\]\n]*)\]"  # [text], group 1
_URL = r"\(([^)\s\]]*)(?:\s+\"[^\"]*\")?\)"  # (url "title"), group 2
# [text](https://zhida.zhihu.com/search?...) — links into search-entity pages: keep the text
_ENTITY_LINK = re.compile(_TEXT + r"\(\s*https?://zhida\.zhihu\.com/search[^)\s\]]*\s*\)")
# [text](https://link.zhihu.com/?target=https%3A//...) — redirect wrappers: point at the target
_REDIRECT_LINK = re.compile(r"\]\(\s*(https?://link\.zhihu\.com/\?target=[^)\s\]]+)\s*\)")
_LINK = re.compile("!?" + _TEXT + _URL)
_IMAGE = re.compile("!" + _TEXT + _URL)
_ANSWER_LABEL = re.compile(r"^\s*(?:\*\*\s*回答\s*[：:]?\s*\*\*\s*[：:]?|回答\s*[：:])\s*")
_QUESTION_LABEL = re.compile(r"^\s*(?:\*\*\s*提问\s*[：:]?\s*\*\*\s*[：:]?|提问\s*[：:])\s*")
_STRAY_EMPHASIS = re.compile(r"(?<!\\)\*{2,}|(?<![\w\\])_{2,}|(?<=\s)\*(?=\s)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>$])")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w")


def _unwrap_redirect(match: re.Match[str]) -> str:
    url = match.group(1)
    target = parse_qs(urlsplit(url).query).get("target", [""])[0]
    return f"]({unquote(target) or url})"


def clean_markdown(text: str) -> str:
    """Entity-search links become their text; redirect links point at their target."""
    if "zhihu.com" in text:
        text = _ENTITY_LINK.sub(r"\1", text)
        text = _REDIRECT_LINK.sub(_unwrap_redirect, text)
    return text.strip("\n")


def strip_answer_label(text: str) -> str:
    return _ANSWER_LABEL.sub("", text, count=1)


def is_answer_label(text: str) -> bool:
    return bool(_ANSWER_LABEL.match(text))


def strip_question_label(text: str) -> str | None:
    """The question after a ``**提问**：`` label, or None when there is no such label."""
    m = _QUESTION_LABEL.match(text)
    return text[m.end() :] if m else None


def plain_text(markdown: str) -> str:
    """Markdown inline text -> plain text (links keep their text, images their alt text)."""
    text = _LINK.sub(lambda m: m.group(1), markdown)
    text = _STRAY_EMPHASIS.sub("", text)
    text = text.replace("**", "").replace("`", "")
    text = _ESCAPE.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def is_link_only(markdown: str) -> bool:
    """True when, images aside, the text is nothing but links: the answer lives elsewhere."""
    if "](" not in markdown:
        return False
    text = _IMAGE.sub("", markdown)
    return bool(_LINK.search(text)) and not _LINK.sub("", text).strip()


def has_text(markdown: str) -> bool:
    """True when the markdown says something besides image references."""
    rest = _IMAGE.sub("", markdown) if "![" in markdown else markdown
    return bool(_WORD.search(rest))


_LINE_MARKER = re.compile(r"^\s{0,3}(?:[-*+]\s+|\d+[.)]\s+|>\s?|#{1,6}\s+)")


def excerpt(markdown: str, width: int = 100) -> str:
    """A one-line plain-text excerpt of at most ``width`` columns (CJK counts double);
    images and list/quote markers dropped, cut at a character boundary with "…"."""
    lines = [_LINE_MARKER.sub("", line) for line in _IMAGE.sub("", markdown).splitlines()]
    text = plain_text(" ".join(line for line in lines if line.strip()))
    out: list[str] = []
    used = 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if used + w > width - 1:
            return "".join(out).rstrip() + "…"
        out.append(ch)
        used += w
    return "".join(out)
