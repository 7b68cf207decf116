"""Terms in editor text: the term under the cursor (hover, definition) and terms by prefix
(completion). Core: no pygls, no lsprotocol; offsets are Python string indices.

Code and prose differ. In prose (markdown, plain text) any glossary term counts, the longest
covering the cursor wins. In code, silence is a feature: an identifier gets a term only when

* the whole identifier is a term (``past_key_values``, ``kv_cache``, ``LoraConfig``), or
* a part of it is a multi-word term (``LlamaRMSNorm`` -> RMS Norm, ``apply_rotary_pos_emb``
  -> rotary position embedding), or an acronym or brand (``rope_theta`` -> RoPE,
  ``lora_alpha`` -> LoRA, ``GQAConfig`` -> GQA);

and concepts marked ``common_word`` (token, attention, …) only match their ``code``
identifiers exactly. ``hidden_states``, ``value``, ``emb`` stay quiet.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .glossary import Glossary, Match, term_key

WINDOW = 96  # characters either side of the cursor that can hold a term
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KIND_RANK = {"code": 0, "name": 1, "aliases": 2, "zh": 3}
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
_WORD_BEFORE = re.compile(r"[A-Za-z0-9_\-]*$")

PROSE_LANGUAGES = frozenset(
    {"markdown", "plaintext", "text", "restructuredtext", "rst", "latex", "tex", "org", "asciidoc"}
)


@dataclass(frozen=True, slots=True)
class TermHit:
    concept: str
    start: int  # offsets in the line
    end: int
    kind: str


def is_prose(language_id: str | None) -> bool:
    return (language_id or "").lower() in PROSE_LANGUAGES


class TermFinder:
    """Term lookups over one glossary (cheap to build; holds the prefix table)."""

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        # (key, kind rank, form, concept id, kind) of every matchable form, sorted
        rows: list[tuple[str, int, str, str, str]] = glossary.matcher.forms
        self._rows = rows
        self._keys = [r[0] for r in rows]

    # --- hover / definition -------------------------------------------------------------------

    def at(self, line: str, col: int, *, prose: bool) -> TermHit | None:
        """The term under the cursor at ``line[col]``, or None."""
        if not 0 <= col <= len(line):
            return None
        if not prose and (start := _comment_start(line)) is not None and col > start:
            prose = True  # a comment in code reads like notes: "# the KV cache grows"
        lo = max(0, col - WINDOW)
        window = line[lo : col + WINDOW]
        c = col - lo
        matches = self.glossary.matcher.all_matches(window)
        if not matches:
            return None
        ident = None if prose else _identifier_at(window, c)
        best: tuple | None = None
        chosen: Match | None = None
        for m in matches:
            if ident is not None:
                if not (ident[0] <= m.start and m.end <= ident[1]):
                    continue
                if not self._allowed_in_code(m, window, ident):
                    continue
            else:
                if not (m.start <= c < m.end or (c == m.end and c > m.start and not prose)):
                    continue
                if not prose and not self._allowed_outside_identifiers(m):
                    continue
            score = (m.units, m.end - m.start, -_KIND_RANK[m.kind])
            if best is None or score > best:
                best, chosen = score, m
        if chosen is None:
            return None
        start, end = ident if ident is not None else (chosen.start, chosen.end)
        return TermHit(chosen.concept, lo + start, lo + end, chosen.kind)

    def _allowed_in_code(self, m: Match, text: str, ident: tuple[int, int]) -> bool:
        if m.expanded and m.units < 2:  # `emb` alone is a local, not "embedding"
            return False
        whole = (m.start, m.end) == ident
        concept = self.glossary.concepts[m.concept]
        if concept.common_word:
            return whole and m.kind == "code"
        if m.kind == "code" and whole:
            return True
        if whole or m.kind == "code" or m.units >= 2:
            return True
        # a single part of a longer identifier: an acronym or brand (rope_theta, lora_alpha,
        # GQAConfig), never an everyday word
        return (m.key, m.concept) in self.glossary.matcher.acronyms or _capital_part(text, m)

    def _allowed_outside_identifiers(self, m: Match) -> bool:
        # in code files, text outside identifiers (comments in Chinese) counts like prose,
        # except for common words
        return not self.glossary.concepts[m.concept].common_word

    # --- completion ---------------------------------------------------------------------------

    def complete(self, typed: str, limit: int = 50) -> tuple[list[tuple[str, str, str]], bool]:
        """(form, concept id, kind) of terms whose key starts with ``typed``'s key, best first,
        and whether the list was cut."""
        key = term_key(typed)
        if not key:
            return [], False
        i = bisect.bisect_left(self._keys, key)
        out: list[tuple[str, str, str]] = []
        seen: set[tuple[str, str]] = set()
        cut = False
        while i < len(self._rows) and self._keys[i].startswith(key):
            _k, _rank, text, cid, kind = self._rows[i]
            i += 1
            if (text, cid) in seen:
                continue
            if len(out) >= limit:
                cut = True
                break
            seen.add((text, cid))
            out.append((text, cid, kind))
        # shortest keys (closest to what was typed) first, canonical names before aliases
        out.sort(key=lambda r: (len(term_key(r[0])), _KIND_RANK[r[2]], r[0].lower()))
        return out, cut

    def prefix_before(self, line: str, col: int) -> tuple[int, str]:
        """(start, text) of the term prefix being typed before ``col``.

        Latin: the identifier-ish word before the cursor. Chinese: the longest tail of the
        run of Chinese characters that begins some Chinese term (text has no spaces)."""
        before = line[:col]
        m = _CJK_RUN.search(before)
        if m:
            run = m.group()
            for n in range(min(len(run), 12), 0, -1):
                tail = run[-n:]
                if self._has_prefix(tail):
                    return col - n, tail
            return col, ""
        m = _WORD_BEFORE.search(before)
        word = m.group() if m else ""
        # a multi-word term being typed ("KV ca"): the longest run of up to 3 words before the
        # cursor that still begins some term
        start = col - len(word)
        for _ in range(2):
            p = _WORD_BEFORE.search(before[:start].rstrip(" "))
            if p is None or not p.group() or before[p.end() : start].strip(" "):
                break
            candidate_start = p.start()
            if not self._has_prefix(before[candidate_start:col]):
                break
            start = candidate_start
        return start, before[start:col]

    def _has_prefix(self, text: str) -> bool:
        key = term_key(text)
        i = bisect.bisect_left(self._keys, key)
        return i < len(self._keys) and self._keys[i].startswith(key)


def _comment_start(line: str) -> int | None:
    """Where a ``#`` or ``//`` line comment starts, outside string quotes (a heuristic)."""
    quote: str | None = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" or line.startswith("//", i):
            return i
        i += 1
    return None


def _identifier_at(text: str, col: int) -> tuple[int, int] | None:
    for m in _IDENT.finditer(text):
        if m.start() <= col < m.end() or (col == m.end() and col > m.start()):
            return m.start(), m.end()
        if m.start() > col:
            break
    return None


def _capital_part(text: str, m: Match) -> bool:
    """The matched part is written in capitals inside a camel identifier (GQAConfig)."""
    part = text[m.start : m.end]
    return part[:1].isupper() and sum(ch.isupper() for ch in part) >= 2
