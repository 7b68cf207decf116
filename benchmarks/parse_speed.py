"""Parse time and peak memory of ``parse_markdown`` on large and repetitive notes.

    python benchmarks/parse_speed.py [--mb 50] [--runs 3] [--json]

Cases (generated, deterministic):

* ``10k sections``: 10,000 ``## Heading N`` sections of one short paragraph each;
* ``10k empty headings``: 10,000 ``## Heading N`` lines and nothing else;
* ``10k questions``: 10,000 ``### N. …？`` questions, each with a ``####`` sub-heading;
* ``note N MB``: one note of about N MB: headings at levels 1-4, Chinese and English
  paragraphs, code blocks, lists, tables;
* ``one section N MB``: one heading and N MB of paragraphs (cut at the section cap).

Each case runs in a fresh process, so that peak RSS is its own. Reported: the median parse
time, the same for markdown-it's block parse alone of the same text (the baseline: the part
no parser of ours can avoid) and the ratio, entries, and peak RSS above the process's RSS
before parsing (text generated, modules loaded).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time

WORDS = (
    "attention cache rotary position embedding 旋转位置编码 注意力 缓存 张量并行 layer norm "
    "token 模型 训练 推理 梯度 quantization 量化 lora 微调 pipeline 流水线"
).split()


def _para(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def note(mb: float, seed: int = 7) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    h = 0
    while size < mb * 1e6:
        h += 1
        block = [f"{'#' * rng.randint(1, 4)} {h}.{rng.randint(1, 9)} {_para(rng, 4)}\n"]
        for _ in range(rng.randint(2, 12)):
            r = rng.random()
            if r < 0.6:
                block.append(_para(rng, rng.randint(20, 120)) + "\n")
            elif r < 0.75:
                code = (f"x{i} = attention(q, k, v)  # {_para(rng, 3)}" for i in range(20))
                block.append("```python\n" + "\n".join(code) + "\n```\n")
            elif r < 0.9:
                block.append("\n".join(f"- {_para(rng, 8)}" for _ in range(5)) + "\n")
            else:
                rows = (f"| {_para(rng, 3)} | {_para(rng, 3)} |" for _ in range(5))
                block.append("| a | b |\n|---|---|\n" + "\n".join(rows) + "\n")
        text = "\n".join(block) + "\n"
        out.append(text)
        size += len(text.encode())
    return "".join(out)


def one_section(mb: float) -> str:
    rng = random.Random(3)
    paras = [_para(rng, 80) for _ in range(200)]
    return "# Big\n\n" + "".join(paras[i % 200] + "\n\n" for i in range(int(mb * 1e6 / 700)))


def make(case: str, mb: float) -> str:
    if case == "10k sections":
        return "".join(f"## Heading {i}\n\nSome text about heading {i}.\n\n" for i in range(10_000))
    if case == "10k empty headings":
        return "".join(f"## Heading {i}\n\n" for i in range(10_000))
    if case == "10k questions":
        return "# 面试题\n\n" + "".join(
            f"### {i}. 什么是第 {i} 个问题？\n\n答案 {i}。\n\n#### 补充\n\n更多。\n\n"
            for i in range(10_000)
        )
    if case.startswith("note"):
        return note(mb)
    return one_section(mb)


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(case: str, mb: float, runs: int) -> dict:
    from markdown_it import MarkdownIt

    from llmref.corpus.parse import parse_markdown

    text = make(case, mb)
    before = _rss_kb()
    problems: list = []
    times = []
    entries = 0
    for _ in range(runs):
        started = time.perf_counter()
        entries = len(parse_markdown(text, "bench.md", "", problems))
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the baseline runs
    md = MarkdownIt("commonmark").disable("inline")
    base = []
    for _ in range(runs):
        started = time.perf_counter()
        md.parse(text)
        base.append(time.perf_counter() - started)
    return {
        "case": case,
        "chars": len(text),
        "entries": entries,
        "parse_s": statistics.median(times),
        "markdown_it_s": statistics.median(base),
        "peak_rss_mb": max(peak - before, 0) / 1024,
        "warnings": len(problems) // max(runs, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=50.0, help="size of the big notes (MB)")
    ap.add_argument("--runs", type=int, default=3, help="runs of the 10k cases (median)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        case, mb, runs = args.child
        print(json.dumps(child(case, float(mb), int(runs))))
        return 0
    cases = [
        ("10k sections", args.runs),
        ("10k empty headings", args.runs),
        ("10k questions", args.runs),
        (f"note {args.mb:g} MB", 1),
        (f"one section {args.mb:g} MB", 1),
    ]
    rows = []
    for case, runs in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, str(args.mb), str(runs)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out.splitlines()[-1])
        rows.append(row)
        if not args.json:
            print(
                f"{case:<22} {row['chars'] / 1e6:7.1f} M chars  {row['entries']:>7,} entries  "
                f"parse {row['parse_s']:6.2f} s  markdown-it alone {row['markdown_it_s']:6.2f} s "
                f"(x{row['parse_s'] / max(row['markdown_it_s'], 1e-9):.2f})  "
                f"peak +{row['peak_rss_mb']:.0f} MB  warnings {row['warnings']}"
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
