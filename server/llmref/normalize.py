"""One normalization for the index, for queries and for hover.

* ``fold`` — NFKC (full-width -> half-width) and case folding.
* ``split_identifier`` — ``LlamaRMSNorm`` -> ``llama rms norm``, ``flash_attn_func`` ->
  ``flash attn func``, ``KVCache`` -> ``kv cache``, ``FlashAttention2`` -> ``flash attention 2``;
  dtype-like words (``fp16``, ``bf16``, ``int8``, ``nf4``) and sizes (``7B``, ``4k``) stay whole.
* ``segment`` — Chinese word segmentation (rjieba, loaded lazily).
* ``tokens`` — the analyzer stream used by the index and by queries: identifier parts plus
  the catenated identifier (so ``LoRA`` and ``lora``, ``LayerNorm`` and ``layernorm`` meet),
  Chinese words, light plural folding, stop words removed.

Nothing here imports Whoosh, pygls or lsprotocol.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Bump when anything below changes what the analyzer emits: it is part of the index key.
ANALYZER_VERSION = "5"  # 4: Chinese sub-words in the index (复读机 -> 复读); 5: llmref's dictionary

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN_RE = re.compile(rf"(?P<latin>[A-Za-z0-9]+(?:[_\-.][A-Za-z0-9]+)*)|(?P<cjk>[{_CJK}]+)")
LATIN_RUN = re.compile(r"[A-Za-z0-9]+(?:[_\-.][A-Za-z0-9]+)*")  # what ``tokens`` splits
_CHUNK_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# letters that keep their digits: dtypes and short names (fp16, bf16, int8, nf4, t5, v2)
_DTYPE_PREFIXES = frozenset(
    {"fp", "bf", "int", "uint", "float", "bfloat", "nf", "tf", "e4m", "e5m"}
)
# Mixed-case names whose case split yields no words (LoRA -> lo ra): kept whole when they sit
# on case boundaries inside an identifier (QLoRAConfig -> qlora config, LLaMA2 -> llama 2).
KEEP_WHOLE = frozenset(
    """lora qlora dora rope alibi gelu geglu reglu swiglu relu silu llama vllm react zero moe
    deberta roberta pytorch xlnet""".split()
)
_KEEP_WHOLE_MAX = max(map(len, KEEP_WHOLE))
_KEEP_WHOLE_RE = re.compile("|".join(sorted(KEEP_WHOLE)))
IS_CJK = re.compile(rf"[{_CJK}]")

STOP_EN = frozenset(
    """a an the of to in on at by for with and or is are was were be been being it its this that
    these those what which who whom how why when where do does did can could should would will
    shall may might must i you we they he she me my our your their them his her as from into than
    then there here about between vs versus please explain describe introduce""".split()
)
STOP_ZH = frozenset(
    """的 了 是 在 和 与 及 或 有 吗 么 呢 啊 吧 呀 一下 什么 哪些 哪种 如何 怎么 怎样 为什么 为何
    请 简述 介绍 解释 讲讲 讲一下 讲解 说明 一个 这个 那个 这些 那些 之间 中 对 会 能 可以 其 并
    而 被 把 让 给 也 都 就 还 又 上 下 时 后 前 等 及其 以及 之 得 地 着 过 从 向 到 于""".split()
)


# full-width ASCII (U+FF01-U+FF5E) and the ideographic space -> half-width; one char each
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold(text: str) -> str:
    """NFKC + casefold: ``ＫＶ　Ｃａｃｈｅ`` -> ``kv cache``."""
    return unicodedata.normalize("NFKC", text).casefold()


_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]+")


def _width_fold_run(m: re.Match[str]) -> str:
    return m.group().translate(_WIDTH)


def width_fold(text: str) -> str:
    """Full-width -> half-width, keeping case and length (offsets stay valid)."""
    # translate() looks every character up; only the full-width runs need it (~3x faster)
    return _FULL_WIDTH.sub(_width_fold_run, text)


def _merge_digits(parts: list[str]) -> list[str]:
    """Re-join camel-split parts where digits belong to their neighbour."""
    out: list[str] = []
    for part in parts:
        if out and part.isdigit():
            prev = out[-1]
            if prev.isalpha() and (len(prev) <= 2 or prev.lower() in _DTYPE_PREFIXES):
                out[-1] = prev + part  # fp16, bf16, int8, t5, v2
                continue
        if out and part.isalpha() and len(part) <= 2 and out[-1].isdigit():
            out[-1] = out[-1] + part  # 7B, 4k, 175B, 2D
            continue
        out.append(part)
    return out


def _keep_whole(chunk: str, pieces: list[str]) -> list[str]:
    """Merge runs of camel pieces that spell a KEEP_WHOLE name."""
    if len(pieces) < 2:
        return pieces
    lower = chunk.lower()
    if _KEEP_WHOLE_RE.search(lower) is None:
        return pieces  # no name to keep whole anywhere in it (the usual case)
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + len(piece))
    out: list[str] = []
    i = 0
    while i < len(pieces):
        merged = False
        # longest first; pieces are never empty, so a KEEP_WHOLE name spans at most
        # _KEEP_WHOLE_MAX of them (bounded: a long camel run stays linear)
        for j in range(min(len(pieces), i + _KEEP_WHOLE_MAX), i + 1, -1):
            if lower[starts[i] : starts[j]] in KEEP_WHOLE:
                out.append(chunk[starts[i] : starts[j]])
                i = j
                merged = True
                break
        if not merged:
            out.append(pieces[i])
            i += 1
    return out


@lru_cache(maxsize=65536)
def split_identifier(word: str) -> tuple[str, ...]:
    """Split an identifier (or any Latin run) into lower-case parts.

    Separators (``_``, ``-``, ``.``, spaces, anything non-alphanumeric) always split; inside a
    chunk, case changes and letter/digit changes split, except the dtype/size rules above.
    """
    word = width_fold(word)
    parts: list[str] = []
    for chunk in _CHUNK_SPLIT_RE.split(word):
        if not chunk:
            continue
        # non-ASCII letters (é, ß...) are kept as their own chunk, folded
        pieces = _CAMEL_RE.findall(chunk)
        if "".join(pieces) != chunk:
            parts.append(chunk.casefold())
            continue
        parts.extend(p.lower() for p in _merge_digits(_keep_whole(chunk, pieces)))
    return tuple(parts)


def compact(text: str) -> str:
    """The separator-free folded key: ``KV-Cache``, ``kv_cache``, ``KV cache`` -> ``kvcache``."""
    return "".join(ch for ch in fold(text) if ch.isalnum())


def singular(word: str) -> str:
    """Light English plural folding for lower-case ASCII words (caches -> cache)."""
    if len(word) < 4 or not word.isascii() or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "as", "os")):
        return word[:-1]
    return word


# --- Chinese segmentation -------------------------------------------------------------------


DICTIONARY = Path(__file__).resolve().parent / "data" / "zh-dict.txt"


def _dictionary() -> Iterator[tuple[str, int]]:
    """(word, frequency) of llmref's segmentation dictionary (tools/build_zh_dict.py)."""
    with DICTIONARY.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            word, _, freq = line.rstrip("\n").partition(" ")
            if word and freq.isdigit():
                yield word, int(freq)


def _rjieba_class():
    """rjieba's Jieba class, without importing the ``rjieba`` package: its ``__init__``
    builds a default instance with jieba's full dictionary (~35 MB) at import time."""
    spec = importlib.util.find_spec("rjieba")
    if spec is None or spec.origin is None:
        raise ImportError("rjieba is not installed")
    folder = Path(spec.origin).parent
    binary = next(
        (
            p
            for p in folder.iterdir()
            if p.name.startswith("rjieba.") and p.suffix in (".so", ".pyd")
        ),
        None,
    )
    if binary is None:
        raise ImportError("rjieba's compiled module is missing")
    loader_spec = importlib.util.spec_from_file_location("rjieba.rjieba", binary)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError("rjieba cannot be loaded")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module.Jieba


def _jieba_cache() -> Path:
    """A private folder for jieba's prefix-dictionary cache (it unmarshals what it finds)."""
    try:
        from platformdirs import user_cache_dir

        from .cache import private_dir

        return private_dir(Path(user_cache_dir("llmref")) / "jieba")
    except Exception:
        return Path(tempfile.mkdtemp(prefix="llmref-jieba-"))


class _Segmenter:
    """Lazily loads rjieba with llmref's dictionary (falls back to jieba with the same
    dictionary, then to single characters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cut: Callable[[str], list[str]] | None = None
        self._search: Callable[[str], list[str]] | None = None
        self.name = "unloaded"

    def _load(self) -> Callable[[str], list[str]]:  # pragma: no cover - exercised implicitly
        with self._lock:
            if self._cut is not None:
                return self._cut
            try:
                jieba_rs = _rjieba_class().empty()
                for word, freq in _dictionary():
                    jieba_rs.add_word(word, freq, None)
                self._search = jieba_rs.cut_for_search
                self._cut = jieba_rs.cut
                self.name = "rjieba"
            except Exception:  # not installed, or a wheel for another platform (VSIX)
                try:
                    import logging

                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tokenizer = jieba.Tokenizer(dictionary=str(DICTIONARY))
                    tokenizer.tmp_dir = str(_jieba_cache())  # not /tmp, which others can write
                    tokenizer.initialize()  # now: a failure falls back here, not mid-build
                    self._search = lambda s: list(tokenizer.cut_for_search(s))
                    self._cut = lambda s: list(tokenizer.cut(s))
                    self.name = "jieba"
                except Exception:
                    self._search = lambda s: [s]
                    self._cut = list
                    self.name = "chars"
            return self._cut

    def cut(self, text: str) -> list[str]:
        cut = self._cut or self._load()
        return cut(text)

    def subwords(self, word: str) -> list[str]:
        """Dictionary words inside a longer word (复读机 -> 复读, 生成式 -> 生成)."""
        if self._search is None:
            self._load()
        assert self._search is not None
        return [w for w in self._search(word) if w != word and len(w) > 1]

    def identity(self) -> str:
        """Which segmenter the index is built with (part of the index key): decided without
        loading the dictionary (an unchanged index opens without it)."""
        if self._cut is not None:
            return self.name
        try:
            _rjieba_class()
            return "rjieba"
        except Exception:
            self._load()  # rjieba is missing: see what the fallback is
            return self.name


SEGMENTER = _Segmenter()


def segmenter_version() -> str:
    """Which segmenter is used, with its version and dictionary (part of the index key)."""
    import hashlib
    import importlib.metadata

    name = SEGMENTER.identity()
    digest = hashlib.sha256(DICTIONARY.read_bytes()).hexdigest()[:12]
    try:
        return f"{name}-{importlib.metadata.version(name)}-{digest}"
    except importlib.metadata.PackageNotFoundError:
        return f"{name}-{digest}"


def segment(text: str) -> list[str]:
    """Chinese word segmentation of a CJK run."""
    return SEGMENTER.cut(text)


# --- the analyzer stream ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tok:
    text: str  # normalized token
    pos: int  # position (catenated identifiers share the position of their first part)
    start: int  # character offsets in the original text
    end: int


@lru_cache(maxsize=65536)
def _latin(run: str, keep_stop: bool) -> tuple[tuple[tuple[str, int], ...], int]:
    """The tokens of one Latin run as (text, position offset), and how many positions it
    takes: identifier parts, then the catenated identifier at the first part's position."""
    raw = split_identifier(run)
    parts = [singular(p) for p in raw]
    if not parts:
        return (), 0
    # a stop word is one before plural folding too ("does" is not "doe")
    stop = [
        not keep_stop and (r in STOP_EN or p in STOP_EN) for r, p in zip(raw, parts, strict=True)
    ]
    if len(parts) == 1:
        return ((), 0) if stop[0] else (((parts[0], 0),), 1)
    out: list[tuple[str, int]] = []
    n = 0
    for part, is_stop in zip(parts, stop, strict=True):
        if not is_stop:
            out.append((part, n))
            n += 1
    out.append((singular("".join(raw)), 0))
    return tuple(out), n


@lru_cache(maxsize=65536)
def _subwords(word: str) -> tuple[str, ...]:
    return tuple(SEGMENTER.subwords(word))


def tokens(text: str, *, keep_stop: bool = False, subwords: bool = False) -> Iterator[Tok]:
    """The token stream of ``text``, as indexed and as queried.

    ``subwords`` (the index): a Chinese word longer than two characters also yields the
    dictionary words inside it, at its position (复读机 -> 复读 复读机), so a query word
    finds the compound that contains it."""
    for word, pos, start, end in token_tuples(text, keep_stop=keep_stop, subwords=subwords):
        yield Tok(word, pos, start, end)


def token_tuples(
    text: str, *, keep_stop: bool = False, subwords: bool = False
) -> Iterator[tuple[str, int, int, int]]:
    """``tokens`` as plain (text, pos, start, end) tuples: what indexing reads, a million
    times a build (a frozen dataclass costs several times a tuple to make)."""
    pos = 0
    text = width_fold(text)
    for m in _RUN_RE.finditer(text):
        latin = m.group("latin")
        if latin is not None:
            toks, taken = _latin(latin, keep_stop)
            start, end = m.start(), m.end()
            for word, offset in toks:
                yield word, pos + offset, start, end
            pos += taken
        else:
            offset = m.start()
            for word in segment(m.group("cjk")):
                start = offset
                offset += len(word)
                if not word.strip() or (not keep_stop and word in STOP_ZH):
                    continue
                if subwords and len(word) > 2 and IS_CJK.match(word):
                    for sub in _subwords(word):
                        if keep_stop or sub not in STOP_ZH:
                            yield sub, pos, start, offset
                yield word, pos, start, offset
                pos += 1


def token_texts(text: str, *, subwords: bool = False) -> list[str]:
    return [t.text for t in tokens(text, subwords=subwords)]
