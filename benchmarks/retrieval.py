"""Retrieval quality: hit@1 and hit@3 of `llmref search` on a query set.

    python benchmarks/retrieval.py [QUERIES.yaml] [--min-hit1 0.90] [--min-hit3 0.97] [-v]

The query set format (tests/data/dev-queries.yaml, the default: a copy of the team's
../shared/eval/dev-queries.yaml): a YAML list of
``{query: "...", expect: ["question text", ...]}``. A result matches when an expected text is
a substring of the result's question, both normalized (lower-cased, markdown and link syntax
removed, whitespace and punctuation dropped). ``expect: []`` marks a question the corpus does
not answer: it passes when the search is not confident (``SearchResult.confident``), and it is
left out of hit@1 / hit@3. Answerable queries whose top result is wrong but confident are
counted too ("confident wrong"). Exits 1 when a threshold is missed.

The team's sets default to ``$LLMREF_EVAL_DIR`` or ``../shared/eval`` next to the checkout.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUERIES = ROOT / "tests" / "data" / "dev-queries.yaml"
EVAL_DIR = Path(os.environ.get("LLMREF_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def norm(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images -> text
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def evaluate(ref, queries: list[dict], *, verbose: bool = False) -> dict:
    hit1 = hit3 = answerable = 0
    unanswerable = refused = confident_wrong = 0
    misses: list[str] = []
    times: list[float] = []
    for item in queries:
        query, expect = item["query"], [norm(e) for e in item["expect"]]
        started = time.perf_counter()
        found = ref.search(query, limit=3)
        times.append(time.perf_counter() - started)
        results = found.results
        top = results[0].entry.question if results else "(nothing)"
        cover = f"{results[0].coverage:.2f}" if results else "-"
        if not expect:
            unanswerable += 1
            refused += not found.confident
            if found.confident:
                misses.append(f"{query!r}: no answer expected, confident top hit {top}")
            if verbose:
                print(f"{'ok ' if not found.confident else 'MISS'} {query!r} [{cover}] -> {top}")
            continue
        answerable += 1
        ranks = [
            n for n, r in enumerate(results, 1) if any(e in norm(r.entry.question) for e in expect)
        ]
        first = ranks[0] if ranks else None
        hit1 += first == 1
        hit3 += first is not None
        if first != 1 and found.confident:
            confident_wrong += 1
        if first != 1:
            got = " | ".join(r.entry.question for r in results) or "(nothing)"
            misses.append(f"{query!r}: rank {first or '>3'}; got {got}")
        if verbose:
            print(f"{'ok ' if first == 1 else 'MISS'} {query!r} [{cover}] -> {top}")
    n = answerable or 1
    times.sort()
    return {
        "queries": len(queries),
        "answerable": answerable,
        "hit@1": hit1 / n,
        "hit@3": hit3 / n,
        "confident_wrong": confident_wrong,
        "unanswerable": unanswerable,
        "refused": refused,
        "median_ms": 1000 * times[len(times) // 2] if times else 0.0,
        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0,
        "misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("queries", nargs="?", default=str(DEFAULT_QUERIES))
    parser.add_argument("--min-hit1", type=float, default=0.0)
    parser.add_argument("--min-hit3", type=float, default=0.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "server"))
    from llmref.config import Settings
    from llmref.lookup import Reference

    queries = yaml.safe_load(Path(args.queries).read_text(encoding="utf-8"))
    ref = Reference.open(Settings())
    report = evaluate(ref, queries, verbose=args.verbose)
    line = (
        f"{report['answerable']} queries: hit@1 {report['hit@1']:.3f}  hit@3 {report['hit@3']:.3f}"
        f"  confident-wrong {report['confident_wrong']}"
    )
    if report["unanswerable"]:
        line += f"; {report['unanswerable']} without answer: {report['refused']} not confident"
    print(f"{line}; median {report['median_ms']:.2f} ms/query, p99 {report['p99_ms']:.2f} ms")
    for miss in report["misses"]:
        print("  miss:", miss)
    ok = (
        report["hit@1"] >= args.min_hit1
        and report["hit@3"] >= args.min_hit3
        and report["refused"] == report["unanswerable"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
