"""Sense from context: which concept an identifier means *in this file*.

``top_k`` is a sampling parameter in generation code and the number of experts per token in an
MoE router; ``beta`` is DPO's KL strength in a preference trainer and a plain coefficient
elsewhere; ``scaling`` is LoRA's alpha/r next to lora_A/lora_B and 1/sqrt(d) next to queries
and keys. The glossary says which identifiers depend on context (``context_code``) and which
words show a concept's context (``context``); this module reads the words of the file (its
identifier parts, the ones near the cursor counting more) and picks the sense, or none when
the file speaks for several.

Hover only: nothing here searches or loads query-time data. Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from .glossary import Glossary
from .normalize import singular, split_identifier

NEAR_LINES = 20  # lines either side of the cursor that count as "near"
W_NEAR = 3  # a context word near the cursor counts this many times a word elsewhere
CLEAR_RATIO = 2.0  # the best sense must score this many times the runner-up
MIN_SCORE = 2  # one context word near the cursor, or two elsewhere in the file
FILES_KEPT = 8  # documents whose words are kept (by uri and version)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=65536)
def parts(identifier: str) -> tuple[str, ...]:
    """The lower-case singular parts of an identifier (``router_logits`` -> router logit)."""
    return tuple(singular(p) for p in split_identifier(identifier))


def word_key(identifier: str) -> str:
    """How a context word is looked up: its parts joined (``per_token_kl``, ``router``)."""
    return "_".join(parts(identifier))


def words_of(text: str) -> frozenset[str]:
    """Every identifier part in ``text``, and every multi-part identifier whole (so a context
    word ``per_token_kl`` needs that identifier, not three parts found anywhere)."""
    out: set[str] = set()
    for ident in set(_IDENT.findall(text)):
        ps = parts(ident)
        out.update(ps)
        if len(ps) > 1:
            out.add("_".join(ps))
    return frozenset(out)


@dataclass(frozen=True)
class Context:
    """Where the cursor is: the document's text and line (0-based). ``key`` (e.g. uri and
    version) lets the file's words be computed once per document version."""

    text: str
    line: int
    key: Hashable | None = None


class FileWords:
    """The words of one document, for sense decisions (computed on first need)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: list[str] | None = None
        self._all: frozenset[str] | None = None

    @property
    def all(self) -> frozenset[str]:
        if self._all is None:
            self._all = words_of(self._text)
        return self._all

    def near(self, line: int, radius: int = NEAR_LINES) -> frozenset[str]:
        if self._lines is None:
            self._lines = self._text.splitlines()
        lo, hi = max(0, line - radius), line + radius + 1
        return words_of("\n".join(self._lines[lo:hi]))


@dataclass(frozen=True)
class Sense:
    concept: str | None  # None: the file does not say which sense (stay silent)
    contextual: bool  # chosen because of the file (say so on the card)


class Senses:
    """The glossary's context-dependent identifiers and context words, and a small cache of
    documents' words."""

    def __init__(self, glossary: Glossary) -> None:
        self.glossary = glossary
        # identifier parts (as a tuple) -> concepts it may mean in context
        self.terms: dict[tuple[str, ...], list[str]] = {}
        self.words: dict[str, list[str]] = {}
        for concept in glossary.concepts.values():
            for ident in concept.context_code:
                key = parts(ident)
                if key and concept.id not in self.terms.setdefault(key, []):
                    self.terms[key].append(concept.id)
            if concept.context:
                self.words[concept.id] = [word_key(w) for w in concept.context if parts(w)]
        self.longest = max((len(k) for k in self.terms), default=0)
        self._files: OrderedDict[Hashable, FileWords] = OrderedDict()

    def in_identifier(self, identifier: str) -> list[tuple[int, int, list[str]]]:
        """(first part, end part, concepts) of the context-dependent terms in an identifier."""
        if not self.terms:
            return []
        ps = parts(identifier)
        found = []
        for i in range(len(ps)):
            for n in range(min(self.longest, len(ps) - i), 0, -1):
                cids = self.terms.get(ps[i : i + n])
                if cids:
                    found.append((i, i + n, cids))
                    break
        return found

    def file(self, context: Context) -> FileWords:
        if context.key is None:
            return FileWords(context.text)
        words = self._files.get(context.key)
        if words is None:
            words = FileWords(context.text)
            self._files[context.key] = words
            while len(self._files) > FILES_KEPT:
                self._files.popitem(last=False)
        else:
            self._files.move_to_end(context.key)
        return words

    def score(self, concept: str, near: frozenset[str], everywhere: frozenset[str]) -> int:
        score = 0
        for word in self.words.get(concept, ()):
            if word in near:
                score += W_NEAR
            elif word in everywhere:
                score += 1
        return score

    def decide(
        self, default: str | None, candidates: Iterable[str], context: Context | None
    ) -> Sense:
        """The sense of an identifier: ``default`` is what it means anywhere (or None), the
        candidates what it means in some context. Without context the default stands."""
        others = [c for c in dict.fromkeys(candidates) if c != default]
        if not others:
            return Sense(default, False)
        if context is None:
            return Sense(default, False)
        words = self.file(context)
        near, everywhere = words.near(context.line), words.all
        options = ([default] if default else []) + others
        scores = {c: self.score(c, near, everywhere) for c in options}
        ranked = sorted(options, key=lambda c: -scores[c])
        best = ranked[0]
        if scores[best] < MIN_SCORE:
            return Sense(default, False)
        if len(ranked) > 1 and scores[ranked[1]] * CLEAR_RATIO > scores[best]:
            return Sense(None, False)  # the file speaks for two senses: say nothing
        return Sense(best, best != default)


def note(glossary: Glossary, sense: Sense) -> str | None:
    """What the card says about a sense chosen from the file."""
    if not sense.contextual or sense.concept is None:
        return None
    concept = glossary.get(sense.concept)
    return f"in this file: {concept.name}" if concept is not None else None
