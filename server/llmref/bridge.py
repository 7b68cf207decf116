"""The cross-lingual bridge: English query words and phrases -> the Chinese words the corpus
uses (pretrain -> 预训练, repeat -> 重复 / 复读, memory -> 显存 / 内存, bias -> 偏见 ...).

Two tables, both under ``data/``, loaded lazily on the first search (never on the hover path):

* ``en-zh.tsv`` — our curated map of the ordinary words and phrases of ML / LLM discussion
  (training, memory, cost, speed, evaluation, problems and fixes ...): broad field vocabulary;
* ``cedict-en-zh.tsv`` — CC-CEDICT (CC BY-SA 4.0) reversed by ``tools/build_cedict_bridge.py``,
  keeping only glosses that *are* the English word, for everyday words the curated map lacks.
  Its translations weigh less.

English words are tried as typed, then as lemmas (repeats / repeating / repeated -> repeat,
quickly -> quick, knows -> know), phrases of up to three words first. Function words and
generic words ("model", "use", "make") get a low weight so they never decide the ranking.

Core: no Whoosh, no pygls.
"""

from __future__ import annotations

import re
import threading
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .normalize import STOP_EN

CURATED = "en-zh.tsv"
CEDICT = "cedict-en-zh.tsv"
W_CURATED = 1.0
W_CEDICT = 0.6
CEDICT_PER_WORD = 4
MAX_PHRASE = 3

# Generic words: weight of the word in the ranking (1.0 for every other content word).
GENERIC: dict[str, float] = {
    **dict.fromkeys(
        """model llm lm thing something anything stuff way kind sort lot get got give make
        made do done use used using one ones really actually also just very much still even
        only ever always often way like want well try sure say said tell go going come let
        put take mean possible okay ok thing things example instance exactly simply basically
        usually generally typically not no too so quite rather thing things stuff itself while
        whether if else also either neither via per etc e g eg ie i e
        themselves yourself myself ourselves someone somebody anyone everyone""".split(),
        0.15,
    ),
    **dict.fromkeys(
        """work works problem problems issue question method methods approach good bad new
        large big small need needs help better best common certain part""".split(),
        0.5,
    ),
}
# Interrogatives are stop words, but a few hint at what the answer is about.
QUESTION_WORDS: dict[str, tuple[tuple[str, ...], float]] = {
    "why": (("原因",), 0.3),
    "when": (("情况", "什么情况"), 0.3),
    "where": (("位置",), 0.2),
}

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['\-][A-Za-z0-9]+)*")

# irregular forms the suffix rules below cannot undo
_IRREGULAR = {
    "knew": "know", "known": "known", "knows": "know", "got": "get", "gotten": "get",
    "gave": "give", "given": "give", "made": "make", "took": "take", "taken": "take",
    "chose": "choose", "fell": "fall", "fallen": "fall", "grew": "grow", "grown": "grow",
    "ran": "run", "went": "go", "gone": "go", "did": "do", "done": "do", "saw": "see",
    "seen": "see", "thought": "thought", "brought": "bring", "taught": "teach", "built": "build",
    "began": "begin", "begun": "begin", "kept": "keep", "held": "hold", "lost": "lose",
    "left": "leave", "led": "lead", "met": "meet", "paid": "pay", "said": "say", "sent": "send",
    "spent": "spend", "stood": "stand", "understood": "understand", "wrote": "write",
    "written": "write", "worse": "worse", "worst": "worse", "better": "better", "best": "best",
    "larger": "large", "largest": "large", "bigger": "big", "biggest": "big",
    "smaller": "small", "smallest": "small", "longer": "longer", "data": "data",
    "heads": "heads", "less": "less", "fewer": "fewer", "lower": "lower", "higher": "higher",
    "faster": "fast", "slower": "slow", "cheaper": "cheap", "easier": "easy", "harder": "hard",
}  # fmt: skip


@lru_cache(maxsize=8192)
def lemmas(word: str) -> tuple[str, ...]:
    """Candidate base forms of an English word, the word itself first."""
    w = word.lower()
    out = [w]
    if w in _IRREGULAR:
        out.append(_IRREGULAR[w])
    n = len(w)

    def add(*forms: str) -> None:
        out.extend(f for f in forms if len(f) >= 2)

    if n > 4 and w.endswith("ies"):
        add(w[:-3] + "y")
    if n > 3 and w.endswith("es"):
        add(w[:-2], w[:-1])
    elif n > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        add(w[:-1])
    if n > 5 and w.endswith("ing"):
        stem = w[:-3]
        add(stem, stem + "e")
        if len(stem) > 2 and stem[-1] == stem[-2]:
            add(stem[:-1])
    if n > 4 and w.endswith("ied"):
        add(w[:-3] + "y")
    elif n > 4 and w.endswith("ed"):
        stem = w[:-2]
        add(stem, w[:-1])
        if len(stem) > 2 and stem[-1] == stem[-2]:
            add(stem[:-1])
    if n > 4 and w.endswith("ily"):
        add(w[:-3] + "y")
    elif n > 4 and w.endswith("ly"):
        add(w[:-2])
    if n > 5 and w.endswith("ization"):
        add(w[:-7] + "ize")
    if n > 4 and w.endswith("er"):
        add(w[:-2], w[:-1])
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Word:
    """One English word or phrase of a query and the Chinese words it may be written as."""

    text: str  # the key that matched (a lemma or phrase), or the word as typed
    start: int  # character offsets in the query
    end: int
    weight: float  # how much the word may count in the ranking
    chinese: tuple[tuple[str, float], ...] = ()  # (Chinese word, translation weight)
    lemma: str | None = None  # the base form, when it differs from the typed word


class Bridge:
    """English -> Chinese lookups; the tables load on first use (thread-safe).

    The curated map is parsed (it is small); the CC-CEDICT table (~34k keys, sorted) stays
    text and is searched per word, so the first search pays ~1 ms, not a parse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._curated: dict[str, tuple[str, ...]] | None = None
        self._cedict: _TextTable | None = None

    def _tables(self) -> tuple[dict[str, tuple[str, ...]], _TextTable]:
        if self._curated is None or self._cedict is None:
            with self._lock:
                if self._curated is None or self._cedict is None:
                    self._cedict = _TextTable(_read_text(CEDICT))
                    self._curated = _read_table(CURATED)
        return self._curated, self._cedict

    def curated_keys(self) -> list[str]:
        """The English words and phrases of the curated map."""
        return list(self._tables()[0])

    def known(self, word: str) -> bool:
        """Whether ``word`` (any inflection) is an English word the tables know."""
        curated, cedict = self._tables()
        return any(f in curated or f in cedict for f in lemmas(word))

    def translate(self, key: str) -> tuple[tuple[str, float], ...]:
        """Chinese words for one English key (exact: lemmatize first)."""
        curated, cedict = self._tables()
        if key in curated:
            return tuple((zh, W_CURATED) for zh in curated[key])
        found = cedict.get(key)
        if found:
            return tuple((zh, W_CEDICT) for zh in found[:CEDICT_PER_WORD])
        return ()

    def words(self, query: str) -> list[Word]:
        """The query's English words and phrases, longest phrases first, with translations."""
        curated, cedict = self._tables()
        found = list(_WORD.finditer(query))
        out: list[Word] = []
        i = 0
        while i < len(found):
            matched = None
            for n in range(min(MAX_PHRASE, len(found) - i), 1, -1):
                run = found[i : i + n]
                if any(
                    query[a.end() : b.start()].strip() for a, b in zip(run, run[1:], strict=False)
                ):
                    continue  # punctuation between: not a phrase
                head = " ".join(m.group().lower() for m in run[:-1])
                for last in lemmas(run[-1].group()):
                    key = f"{head} {last}"
                    if key in curated:
                        matched = Word(key, run[0].start(), run[-1].end(), 1.0, self.translate(key))
                        break
                if matched:
                    i += n
                    break
            if matched is None:
                m = found[i]
                matched = self._word(m.group(), m.start(), m.end(), curated, cedict)
                i += 1
            if matched is not None:
                out.append(matched)
        return out

    def _word(
        self, typed: str, start: int, end: int, curated: dict, cedict: _TextTable
    ) -> Word | None:
        low = typed.lower()
        if low in STOP_EN:
            if low in QUESTION_WORDS:
                zh, weight = QUESTION_WORDS[low]
                return Word(low, start, end, weight, tuple((z, 1.0) for z in zh))
            return None
        forms = lemmas(low)
        weight = min((GENERIC.get(f, 1.0) for f in forms[:2]), default=1.0)
        for table in (curated, cedict):  # our map first, in any inflection
            for form in forms:
                if form in table:
                    lemma = form if form != low else None
                    return Word(form, start, end, weight, self.translate(form), lemma)
        return Word(low, start, end, weight, (), None)


class _TextTable:
    """A sorted ``key<TAB>values`` table kept as text (``#`` comment lines first), with the
    offsets of its lines: a lookup is a binary search (a substring search of the 0.8 MB text
    took 0.3 ms, several per query)."""

    def __init__(self, text: str) -> None:
        self._text = text
        starts = array("I")
        at = 0
        while at < len(text):
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            if end > at and text[at] != "#":
                starts.append(at)
            at = end + 1
        self._starts = starts

    def _key(self, at: int) -> str:
        tab = self._text.find("\t", at)
        return self._text[at:tab] if tab >= 0 else ""

    def get(self, key: str) -> tuple[str, ...] | None:
        if not key or "\t" in key or "\n" in key:
            return None
        i = bisect_left(self._starts, key, key=self._key)
        if i >= len(self._starts) or self._key(self._starts[i]) != key:
            return None
        start = self._starts[i] + len(key) + 1
        end = self._text.find("\n", start)
        return tuple(self._text[start : end if end >= 0 else None].split())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


def _read_text(name: str) -> str:
    return resources.files("llmref.data").joinpath(name).read_text(encoding="utf-8")


def _read_table(name: str) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    text = _read_text(name)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, values = line.partition("\t")
        words = tuple(values.split())
        if key and words:
            table[key] = tuple(dict.fromkeys(table.get(key, ()) + words))
    return table
