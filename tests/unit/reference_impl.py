"""The term matcher and the duplicate grouping as they were before they were made linear:
the reference the property tests compare the fast implementations with. Do not optimize."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from llmref.corpus.entry import Entry
from llmref.corpus.group import _ASPECTS, _NON_WORD, _SYNONYMS
from llmref.glossary import ABBREVIATIONS, MAX_UNITS, Concept, Match
from llmref.normalize import IS_CJK, fold, singular, split_identifier, width_fold

THRESHOLD = 0.85
CONCEPT_THRESHOLD = 0.6

_UNIT_RUN = re.compile(r"[A-Za-z0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_JOIN_GAP = re.compile(r"[\s_\-/.]*")


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    start: int
    end: int
    joinable: bool


def _units(text: str) -> list[_Unit]:
    text = width_fold(text)
    out: list[_Unit] = []
    prev_end = 0
    for m in _UNIT_RUN.finditer(text):
        gap = text[prev_end : m.start()]
        joinable = bool(out) and _JOIN_GAP.fullmatch(gap) is not None
        run = m.group()
        if IS_CJK.match(run):
            out.append(_Unit(run, m.start(), m.end(), joinable))
        else:
            offset = m.start()
            for k, part in enumerate(split_identifier(run)):
                out.append(_Unit(part, offset, offset + len(part), joinable if k == 0 else True))
                offset += len(part)
        prev_end = m.end()
    return out


def term_key(text: str) -> str:
    return "".join(singular(u.text) for u in _units(text))


def _matchable(key: str) -> bool:
    return len(key) >= 2 or (bool(key) and not key.isascii())


def _alternatives(unit: str) -> tuple[str, ...]:
    alts = [unit]
    s = singular(unit)
    if s != unit:
        alts.append(s)
    for expansion in ABBREVIATIONS.get(unit, ()):
        alts.append(term_key(expansion))
    return tuple(alts)


class TermMatcher:
    def __init__(self, concepts: Iterable[Concept]) -> None:
        self.keys: dict[str, list[tuple[str, str]]] = {}
        concepts_list = list(concepts)
        for concept in concepts_list:
            for text, kind in concept.forms():
                key = term_key(text)
                if not _matchable(key):
                    continue
                bucket = self.keys.setdefault(key, [])
                if (concept.id, kind) not in bucket:
                    bucket.append((concept.id, kind))
        self.acronyms: set[tuple[str, str]] = set()
        for concept in concepts_list:
            for text, _kind in concept.forms():
                if " " not in text and sum(ch.isupper() for ch in text) >= 2 and text.isascii():
                    self.acronyms.add((term_key(text), concept.id))
        self.prefixes: set[str] = set()
        for key in self.keys:
            for i in range(1, len(key) + 1):
                self.prefixes.add(key[:i])

    def all_matches(self, text: str) -> list[Match]:
        units = _units(text)
        found: list[Match] = []
        for i in range(len(units)):
            self._extend(units, i, i, "", found)
        return found

    def _extend(self, units, first, j, acc, found, expanded=False) -> None:
        if j >= len(units) or j - first >= MAX_UNITS:
            return
        if j > first and not units[j].joinable:
            return
        for n, alt in enumerate(_alternatives(units[j].text)):
            key = acc + alt
            if key not in self.prefixes:
                continue
            exp = expanded or (n > 0 and singular(units[j].text) != alt)
            for concept, kind in self.keys.get(key, ()):
                found.append(
                    Match(units[first].start, units[j].end, concept, kind, j - first + 1, key, exp)
                )
            self._extend(units, first, j + 1, key, found, exp)

    def find(self, text: str) -> list[Match]:
        chosen: list[Match] = []
        taken: list[tuple[int, int]] = []
        best = sorted(self.all_matches(text), key=lambda m: (-(m.end - m.start), -m.units, m.start))
        for m in best:
            if any(m.start < e and s < m.end for s, e in taken):
                if not any(c.start == m.start and c.end == m.end for c in chosen):
                    continue
            chosen.append(m)
            taken.append((m.start, m.end))
        return sorted(chosen, key=lambda m: (m.start, m.end))

    def exact(self, text: str) -> list[str]:
        return [c for c, _ in self.keys.get(term_key(text), ())]


# --- duplicate grouping: every pair ------------------------------------------------------------


# the rules are the grouping's own (only the all-pairs algorithm is the reference's)


def intent_key(question: str) -> str:
    text = fold(question)
    for pattern, repl in _SYNONYMS:
        text = re.sub(pattern, repl, text)
    return _NON_WORD.sub("", text)


def aspects(question: str) -> frozenset[str]:
    text = fold(question)
    return frozenset(name for name, pattern in _ASPECTS.items() if re.search(pattern, text))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def group_duplicates(
    entries: list[Entry], question_concepts: list[frozenset[str]] | None = None
) -> None:
    grams = [_bigrams(intent_key(e.question)) for e in entries]
    kinds = [aspects(e.question) for e in entries]
    concepts = question_concepts or [frozenset()] * len(entries)
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            if kinds[i] != kinds[j]:
                continue
            gi, gj = grams[i], grams[j]
            dice = 2 * len(gi & gj) / (len(gi) + len(gj))
            same_concepts = bool(concepts[i]) and concepts[i] == concepts[j]
            if dice >= THRESHOLD or (same_concepts and dice >= CONCEPT_THRESHOLD):
                parent[find(j)] = find(i)

    members: dict[int, list[int]] = {}
    for i in range(len(entries)):
        members.setdefault(find(i), []).append(i)
    for e in entries:
        e.group, e.also_in = None, []
    for idx in members.values():
        if len(idx) < 2:
            continue
        key = entries[idx[0]].id
        for i in idx:
            entries[i].group = key
            entries[i].also_in = [entries[j].id for j in idx if j != i]
