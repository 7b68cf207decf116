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
from typing import NamedTuple

from .glossary import Glossary, Match, term_key
from .sense import Context, Senses, note
from .sense import parts as sense_parts

WINDOW = 96  # characters either side of the cursor that can hold a term
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KIND_RANK = {"code": 0, "name": 1, "aliases": 2, "zh": 3}
_PROSE_RANK = {"name": 0, "aliases": 1, "zh": 2, "code": 3}  # notes: the canonical name first
_SCAN_LIMIT = 5000  # prefix rows looked at per completion (bounded on a huge glossary)
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
_WORD_BEFORE = re.compile(r"[A-Za-z0-9_\-]*$")

PROSE_LANGUAGES = frozenset(
    {"markdown", "plaintext", "text", "restructuredtext", "rst", "latex", "tex", "org", "asciidoc"}
)


@dataclass(frozen=True, slots=True)
class Completion:
    """One completion row: a concept, the form to insert, and every form of the concept that
    matched the prefix (the label first): what a client filters on."""

    concept: str
    label: str
    kind: str  # the label's kind: name, aliases, zh, code
    forms: tuple[str, ...]


class _Ranked(NamedTuple):
    row: Completion
    rank: int  # of the label's kind

    @property
    def concept(self) -> str:
        return self.row.concept

    @property
    def label(self) -> str:
        return self.row.label


@dataclass(frozen=True, slots=True)
class TermHit:
    concept: str
    start: int  # offsets in the line
    end: int
    kind: str  # name / aliases / zh / code, or "context" (a sense the file chose)
    note: str | None = None  # "in this file: MoE router" when the file chose the sense


# Identifiers that are plumbing whatever concept they spell: outputs and their dataclasses
# (attn_output, CausalLMOutputWithPast), flags that only ask for them (output_attentions,
# return_dict), helper modules and mixins (modeling_rope_utils, GenerationMixin), typed kwargs
# (FlashAttentionKwargs), warnings.
_PLUMBING_LAST = frozenset({"output", "util", "mixin", "warning", "error", "exception"})
_PLUMBING_FIRST = frozenset({"output", "return"})
_FAMILY_CODE = ("ForCausalLM", "ForConditionalGeneration", "ForMaskedLM", "LMHeadModel", "Model")


def _plumbing(identifier: str) -> bool:
    ps = sense_parts(identifier)
    if not ps:
        return False
    if ps[-1] in _PLUMBING_LAST or "output" in ps:
        return True
    if len(ps) > 1 and ps[0] in _PLUMBING_FIRST:
        return True
    return ps[-1] == "kwarg" and any(ch.isupper() for ch in identifier)


def is_prose(language_id: str | None) -> bool:
    return (language_id or "").lower() in PROSE_LANGUAGES


class TermFinder:
    """Term lookups over one glossary (cheap to build; holds the prefix table)."""

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        self.senses = Senses(glossary)
        # model families (their code names a model class): a prefix that names no component
        self._families = frozenset(
            c.id
            for c in glossary.concepts.values()
            if any(x.endswith(_FAMILY_CODE) and not x.startswith(("Auto", "Peft")) for x in c.code)
        )
        # one-word code forms written in lower case (logps, entropy, autocast): identifier
        # vocabulary that may be a part of a longer name; class names (Trainer) may not
        self._lower_code = frozenset(
            (term_key(x), c.id) for c in glossary.concepts.values() for x in c.code if x.islower()
        )
        # (key, kind rank, form, concept id, kind) of every matchable form, sorted
        rows: list[tuple[str, int, str, str, str]] = glossary.matcher.forms
        self._rows = rows
        self._keys = [r[0] for r in rows]

    # --- hover / definition -------------------------------------------------------------------

    def at(
        self, line: str, col: int, *, prose: bool, context: Context | None = None
    ) -> TermHit | None:
        """The term under the cursor at ``line[col]``, or None.

        ``context`` (the document and the cursor's line) lets code identifiers whose meaning
        depends on the file (``top_k``, ``beta``, ``scaling``) take the sense the file shows;
        without it they keep the sense they have anywhere, or stay silent."""
        if not 0 <= col <= len(line):
            return None
        if not prose and (start := _comment_start(line)) is not None and col > start:
            prose = True  # a comment in code reads like notes: "# the KV cache grows"
        lo = max(0, col - WINDOW)
        window = line[lo : col + WINDOW]
        c = col - lo
        ident = None if prose else _identifier_at(window, c)
        matches = self.glossary.matcher.all_matches(window)
        if not matches and ident is None:
            return None
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
        if ident is None:
            if chosen is None:
                return None
            return TermHit(chosen.concept, lo + chosen.start, lo + chosen.end, chosen.kind)
        text = window[ident[0] : ident[1]]
        start, end = lo + ident[0], lo + ident[1]
        whole_code = (
            chosen is not None and chosen.kind == "code" and ((chosen.start, chosen.end) == ident)
        )
        if not whole_code and _plumbing(text):
            return None
        default = chosen.concept if chosen is not None else None
        kind = chosen.kind if chosen is not None else "context"
        candidates: list[str] = []
        if chosen is not None and chosen.start == ident[0] and chosen.end < ident[1]:
            # <Family><Component> (Qwen2MLP, GPT2Attention): the component, not the family
            component = self._component(chosen, window[chosen.end : ident[1]])
            if component is not None:
                default, kind, chosen = component, "code", None
            elif self.senses.terms.get(sense_parts(window[chosen.end : ident[1]])) and (
                chosen.concept in self._families
            ):
                candidates = self.senses.terms[sense_parts(window[chosen.end : ident[1]])]
                default, chosen = None, None
        spans = [candidates] if candidates else []
        for i, j, cids in self.senses.in_identifier(text):
            # a context-dependent term competes with the match it spells, or stands alone
            if chosen is None or term_key("".join(sense_parts(text)[i:j])) == chosen.key:
                spans.append(cids)
        if spans:
            # several context-dependent terms (get_constant_schedule_with_warmup): the first
            # whose sense the file makes clear
            for cids in spans:
                sense = self.senses.decide(default, cids, context)
                if sense.concept is not None:
                    hit_kind = kind if sense.concept == default else "context"
                    return TermHit(sense.concept, start, end, hit_kind, note(self.glossary, sense))
            return None
        if default is None:
            return None
        return TermHit(default, start, end, kind)

    def _component(self, family: Match, rest: str) -> str | None:
        """The concept ``rest`` names when ``family`` is a model family prefix."""
        if family.concept not in self._families or not rest.strip("_"):
            return None
        found = self.glossary.matcher.keys.get(term_key(rest), ())
        ranked = sorted(found, key=lambda ck: _KIND_RANK[ck[1]])
        return ranked[0][0] if ranked else None

    def _allowed_in_code(self, m: Match, text: str, ident: tuple[int, int]) -> bool:
        if m.expanded and m.units < 2:  # `emb` alone is a local, not "embedding"
            return False
        whole = (m.start, m.end) == ident
        concept = self.glossary.concepts[m.concept]
        if concept.common_word:
            return whole and m.kind == "code"
        if whole or m.units >= 2:
            return True
        if m.kind == "code" and (m.key, m.concept) in self._lower_code:
            return True  # chosen_logps, entropy_sum, maybe_autocast
        if m.start == ident[0] and m.concept in self._families:
            return True  # MixtralPreTrainedModel
        # a single part of a longer identifier: an acronym or brand (rope_theta, lora_alpha,
        # GQAConfig), never an everyday word (Trainer in TrainerCallback)
        return (m.key, m.concept) in self.glossary.matcher.acronyms or _capital_part(text, m)

    def _allowed_outside_identifiers(self, m: Match) -> bool:
        # in code files, text outside identifiers (comments in Chinese) counts like prose,
        # except for common words
        return not self.glossary.concepts[m.concept].common_word

    # --- completion ---------------------------------------------------------------------------

    def complete(
        self, typed: str, limit: int = 50, *, prose: bool = True
    ) -> tuple[list[Completion], bool]:
        """One row per concept whose forms (name, aliases, Chinese names, identifiers) have a
        key starting with ``typed``'s key, best first, and whether the list was cut.

        A row's label is the form to insert: the canonical one in notes (name, else the
        first matching alias; for a Chinese prefix the first matching Chinese name), in code
        the identifier closest to what was typed. In code, ``common_word`` concepts match only
        their identifiers."""
        key = term_key(typed)
        if not key:
            return [], False
        if len(key) > 2:
            return self._complete(typed, key, limit, prose)
        # one or two letters (what an editor asks for first) match hundreds of rows: remembered
        cache: dict = self.__dict__.setdefault("_short_prefixes", {})  # per finder (glossary)
        found = cache.get((typed, limit, prose))
        if found is None:
            if len(cache) > 4096:
                cache.clear()
            found = cache[(typed, limit, prose)] = self._complete(typed, key, limit, prose)
        return list(found[0]), found[1]

    def _complete(
        self, typed: str, key: str, limit: int, prose: bool
    ) -> tuple[list[Completion], bool]:
        i = bisect.bisect_left(self._keys, key)
        found: dict[str, list[tuple[str, str, str]]] = {}  # concept -> (text, kind, key)
        closeness: dict[str, int] = {}  # concept -> its shortest matching key
        stop = min(len(self._rows), i + _SCAN_LIMIT)
        while i < stop and self._keys[i].startswith(key):
            k, _rank, text, cid, kind = self._rows[i]
            i += 1
            if not prose and kind != "code" and self.glossary.concepts[cid].common_word:
                continue
            found.setdefault(cid, []).append((text, kind, k))
            closeness[cid] = min(closeness.get(cid, len(k)), len(k))
        cut = i < len(self._rows) and self._keys[i].startswith(key)  # a huge glossary
        # rows only for the closest concepts (ties at the limit included): the rest is cut
        ids = sorted(found, key=closeness.__getitem__)
        if len(ids) > limit:
            edge = closeness[ids[limit - 1]]
            ids = [c for c in ids if closeness[c] <= edge]
        chinese = _CJK_CHAR.search(typed) is not None
        rows = [self._row(c, found[c], typed, prose, chinese) for c in ids]
        rows.sort(key=lambda r: (closeness[r.concept], r.rank, r.label.lower()))
        if len(rows) > limit or len(found) > limit:
            cut = True
        return [r.row for r in rows[:limit]], cut

    def _row(
        self, cid: str, forms: list[tuple[str, str, str]], typed: str, prose: bool, chinese: bool
    ) -> _Ranked:
        concept = self.glossary.concepts[cid]
        lowered = typed.lower()

        def order(text: str, kind: str) -> int:  # canonical first: the glossary's own order
            names = [] if kind == "name" else getattr(concept, kind)
            return names.index(text) if text in names else 0

        def preference(form: tuple[str, str, str]) -> tuple:
            text, kind, k = form
            if chinese:
                return (kind != "zh", order(text, kind))
            if prose:
                return (_PROSE_RANK[kind], not text.lower().startswith(lowered), order(text, kind))
            return (
                _IDENT.fullmatch(text) is None, len(k), not text.startswith(typed),
                not text.lower().startswith(lowered), _KIND_RANK[kind], order(text, kind),
            )  # fmt: skip

        # a text in two kinds (RMSNorm: name and code): the preferred kind first
        ranked = sorted(forms, key=preference) if len(forms) > 1 else forms
        text, kind, _k = ranked[0]
        rank = (_PROSE_RANK if prose else _KIND_RANK)[kind]
        texts = tuple(dict.fromkeys(t for t, _, _ in ranked))
        return _Ranked(Completion(cid, text, kind, texts), rank)

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
