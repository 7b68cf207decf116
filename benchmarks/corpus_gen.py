"""Generate a notes folder of about N entries from varied markdown (for benchmarks and tests).

The text is real: paragraphs, lists, code blocks and formulas of the bundled corpus' answers
(and of any extra folders given), recombined under varied heading structures the way people
write notes — a ``#`` title with an intro and ``##``/``###``/``####`` sections, ``### N.``
question lists, bold ``**Q1：…**`` questions, plain paragraphs with no heading. Deterministic
for a given seed. Each generated file holds 5-30 entries, so 100k entries is ~6k files.

    python benchmarks/corpus_gen.py OUT_DIR --entries 10000 [--seed 1] [--source DIR ...]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

TOPICS = [
    "注意力机制", "位置编码", "归一化", "量化", "推理加速", "微调", "强化学习", "数据处理",
    "分布式训练", "评测", "Tokenizer", "MoE", "长上下文", "RAG", "Agent", "多模态",
    "KV cache", "LoRA", "RLHF", "DPO", "FlashAttention", "vLLM", "DeepSpeed", "RoPE",
]  # fmt: skip
ASPECTS = [
    "是什么", "的原理", "的优缺点", "如何实现", "和其他方法的区别", "常见问题", "实践经验",
    "代码解读", "公式推导", "适用场景", "overview", "implementation notes", "pitfalls",
]  # fmt: skip


def _blocks(texts: list[str]) -> list[str]:
    """Paragraph-level blocks (code fences kept whole) of the source texts."""
    out: list[str] = []
    for text in texts:
        current: list[str] = []
        fence = False
        for line in text.splitlines():
            if re.match(r"^\s{0,3}(```|~~~)", line):
                fence = not fence
            if not line.strip() and not fence:
                if current:
                    out.append("\n".join(current))
                    current = []
                continue
            current.append(line)
        if current:
            out.append("\n".join(current))
    return [b for b in out if b.strip() and not b.lstrip().startswith("#")]


def source_blocks(extra: list[Path]) -> list[str]:
    from llmref.config import bundled_corpus_dir
    from llmref.corpus.loader import load_corpus

    roots = [(bundled_corpus_dir(), "")] + [(p, p.name) for p in extra]
    corpus = load_corpus(roots)
    return _blocks([e.answer for e in corpus.entries])


def _body(rng: random.Random, blocks: list[str]) -> str:
    n = rng.choice([1, 1, 2, 2, 3, 4])
    return "\n\n".join(rng.choice(blocks) for _ in range(n))


def _title(rng: random.Random, k: int) -> str:
    return f"{rng.choice(TOPICS)}{rng.choice(ASPECTS)} {k}"


def _file(rng: random.Random, blocks: list[str], k: int) -> tuple[str, int]:
    """(markdown, entries it should give)."""
    shape = rng.choice(["sections", "sections", "questions", "bold", "deep", "flat"])
    n = rng.randint(5, 30)
    parts: list[str] = []
    if shape == "sections":
        parts.append(f"# {_title(rng, k)}\n\n{_body(rng, blocks)}")
        for i in range(n - 1):
            level = rng.choice(["##", "##", "###"])
            parts.append(f"{level} {i + 1}. {_title(rng, k * 100 + i)}\n\n{_body(rng, blocks)}")
    elif shape == "questions":
        parts.append(f"# {_title(rng, k)}")
        for i in range(n):
            q = f"{rng.choice(TOPICS)}{rng.choice(ASPECTS)}？({k}-{i})"
            parts.append(f"### {i + 1}. {q}\n\n{_body(rng, blocks)}")
    elif shape == "bold":
        parts.append(f"## {_title(rng, k)}")
        for i in range(n):
            q = f"{rng.choice(TOPICS)}{rng.choice(ASPECTS)}？({k}-{i})"
            parts.append(f"**Q{i + 1}：{q}**\n\n{_body(rng, blocks)}")
    elif shape == "deep":
        parts.append(f"# {_title(rng, k)}\n\n{_body(rng, blocks)}")
        for i in range(n - 1):
            level = "#" * rng.choice([2, 3, 4, 4, 5])
            parts.append(f"{level} {_title(rng, k * 100 + i)}\n\n{_body(rng, blocks)}")
    else:  # no heading at all: one entry
        parts.append(_body(rng, blocks) + "\n\n" + _body(rng, blocks))
        n = 1
    return "\n\n".join(parts) + "\n", n


def generate(out: Path, entries: int, seed: int = 1, extra: list[Path] | None = None) -> int:
    """Write about ``entries`` entries of notes under ``out``; returns the files written."""
    rng = random.Random(seed)
    blocks = source_blocks(extra or [])
    out.mkdir(parents=True, exist_ok=True)
    total = files = 0
    while total < entries:
        text, n = _file(rng, blocks, files)
        folder = out / f"area-{files % 17:02d}" / f"topic-{files % 113:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{files:05d}.md").write_text(text, encoding="utf-8")
        total += n
        files += 1
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", type=Path, action="append", default=[])
    args = parser.parse_args()
    files = generate(args.out, args.entries, args.seed, args.source)
    print(f"{files} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
