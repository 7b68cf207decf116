"""Build server/llmref/data/zh-dict.txt: the Chinese word list llmref segments with.

    python tools/build_zh_dict.py [--jieba-dict FILE] [--words N]

jieba's full dictionary (349k words, MIT, in the `jieba` sdist) costs ~35 MB of memory once
rjieba loads it; the language server's budget is twice a bare pygls server (~80 MB). The
N most frequent words (default 80k: retrieval quality on every query set measured equal to
the full dictionary) plus the Chinese names of the bundled glossary and the Chinese words of
the curated bridge (server/llmref/data/en-zh.tsv) cost ~7 MB. Words outside it are still
segmented (rjieba's HMM), the same way in the index and in queries. Development time only.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "server"))
from build_cedict_bridge import read_jieba  # noqa: E402

OUT = ROOT / "server" / "llmref" / "data" / "zh-dict.txt"
_CJK_WORD = re.compile(r"^[\u3400-\u9fff]{2,}$")


def domain_words() -> set[str]:
    import yaml

    words: set[str] = set()
    for item in yaml.safe_load((ROOT / "corpus" / "glossary.yaml").read_text("utf-8")) or []:
        for name in item.get("zh") or []:
            if _CJK_WORD.match(str(name)):
                words.add(str(name))
    for line in (ROOT / "server/llmref/data/en-zh.tsv").read_text("utf-8").splitlines():
        if line.startswith("#"):
            continue
        for word in re.findall(r"[\u3400-\u9fff]{2,}", line):
            words.add(word)
    return words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jieba-dict", type=Path)
    parser.add_argument("--words", type=int, default=80_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        freq = read_jieba(args.jieba_dict, Path(tmp))
    ranked = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[: args.words]
    keep = dict(ranked)
    median = sorted(keep.values())[len(keep) // 2]
    for word in sorted(domain_words()):
        keep.setdefault(word, freq.get(word, median))
    # jieba's own format (it reads this file where rjieba is missing): "word freq" lines only;
    # where it comes from is said in the README and above
    lines = [f"{w} {f}" for w, f in sorted(keep.items(), key=lambda kv: (-kv[1], kv[0]))]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(keep)} words -> {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
