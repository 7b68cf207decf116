"""Large note collections: build, one-file edits, search, hover and memory at 1k/10k/100k entries.

    python benchmarks/scale.py [--sizes 1000,10000,100000] [--quick] [--json] [--keep DIR]

For each size a notes folder is generated from varied markdown (benchmarks/corpus_gen.py: the
bundled answers' paragraphs, code and formulas under varied heading structures), then:

* first build: ``llmref index --corpus DIR --no-bundled`` on an empty cache (wall time);
* one-file edit -> visible, CLI: a section appended to one note, then ``llmref search`` for it
  (wall time of the command, which syncs the changed file before answering);
* through ``llmref serve`` (a real LSP client over stdio, the corpus as the server option):
  RSS once loaded and warmed up, hover and completion p50/p99 (the documents of
  lsp_latency.py), ``llmref.search`` and ``workspace/symbol`` p50/p99 over term and
  plain-English queries, and one-file edit -> visible (``didChangeWatchedFiles`` sent, then
  ``llmref.search`` polled until the new section is found).

The same run measures the baselines the targets are ratios of: a bare pygls server's RSS, and
the bundled-corpus server's RSS and hover/completion p99. Targets (reported, never asserted):
build 100k <= 120 s; edit visible <= 1.5 s (CLI) and <= 1 s (server); search and symbol p99 <=
100 ms; hover and completion p99 <= 1.5x the bundled corpus'; RSS bundled <= 2x bare pygls, RSS
at 100k <= 3x bundled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from lsprotocol import types

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import lsp_latency as lat  # noqa: E402
from corpus_gen import generate  # noqa: E402

QUERIES = [q["query"] for q in yaml.safe_load((ROOT / "tests/data/dev-queries.yaml").read_text())]
QUERIES += [
    q["query"] for q in yaml.safe_load((ROOT / "tests/data/dev-nl-queries.yaml").read_text())
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def env_for(cache: Path) -> dict[str, str]:
    env = lat.server_env(cache, None)
    return env


def cli(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "llmref", *args], env=env, capture_output=True, text=True
    )
    return time.perf_counter() - started, proc


def append_section(folder: Path, marker: str) -> Path:
    note = sorted(folder.rglob("*.md"))[len(marker) % 7]
    with note.open("a", encoding="utf-8") as f:
        f.write(f"\n\n## {marker} 的定义\n\n{marker} 是这次基准测试新加的一节。\n")
    return note


class ScaleSession(lat.Session):
    def __init__(self, spec: lat.ServerSpec, docs: lat.Docs, options: dict) -> None:
        super().__init__(spec, docs)
        self.options = options

    async def initialize(self) -> types.InitializeResult:
        folder = self.docs.folder
        return await self.client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                capabilities=lat.client_capabilities(),
                root_uri=folder.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
                initialization_options=self.options,
            )
        )

    @property
    def pid(self) -> int:
        return self.client._server.pid  # type: ignore[union-attr]  # noqa: SLF001

    async def search(self, query: str) -> list:
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="llmref.search", arguments=[query, 20])
        )
        return result if isinstance(result, list) else []

    async def symbols(self, query: str) -> list:
        result = await self.client.workspace_symbol_async(types.WorkspaceSymbolParams(query=query))
        return list(result or [])


async def timed(fn, *args) -> float:
    started = time.perf_counter()
    await fn(*args)
    return time.perf_counter() - started


async def server_metrics(
    spec: lat.ServerSpec, docs: lat.Docs, options: dict, notes: Path | None, rounds: int
) -> dict:
    session = ScaleSession(spec, docs, options)
    await session.start()
    out: dict = {}
    try:
        started = time.perf_counter()
        await session.wait_indexed(timeout=1800)
        out["ready_s"] = time.perf_counter() - started
        hover_specs = [docs.hover_params(h) for h in lat.HOVERS]
        completion_specs = [docs.completion_params(c) for c in lat.COMPLETIONS]
        for params in hover_specs:  # warm-up
            await session.hover(params)
        for q in QUERIES[:5]:
            await session.search(q)
        hovers = [await timed(session.hover, p) for _ in range(rounds) for p in hover_specs]
        completions = [
            await timed(session.complete, p) for _ in range(rounds) for p in completion_specs
        ]
        searches = [await timed(session.search, q) for q in QUERIES]
        symbols = [await timed(session.symbols, q) for q in QUERIES]
        out["rss_mb"] = rss_mb(session.pid)
        out["hover"] = lat.summary(hovers)
        out["completion"] = lat.summary(completions)
        out["search"] = lat.summary(searches)
        out["symbols"] = lat.summary(symbols)
        if notes is not None:
            visible = []
            for k in range(3):
                marker = f"蜂鸟解码{k}号{int(time.time() * 1000) % 100000}"
                note = append_section(notes, marker)
                started = time.perf_counter()
                session.client.workspace_did_change_watched_files(
                    types.DidChangeWatchedFilesParams(
                        changes=[
                            types.FileEvent(uri=note.as_uri(), type=types.FileChangeType.Changed)
                        ]
                    )
                )
                deadline = started + 60
                while time.perf_counter() < deadline:
                    if any(marker in r["question"] for r in await session.search(marker)):
                        break
                    await asyncio.sleep(0.02)
                visible.append(time.perf_counter() - started)
            out["edit_visible_s"] = statistics.median(visible)
            out["rss_after_edits_mb"] = rss_mb(session.pid)
    finally:
        await session.close()
    return out


async def bare_rss(docs: lat.Docs, env: dict[str, str]) -> float:
    session = ScaleSession(lat.baseline_spec(env), docs, {})
    await session.start()
    try:
        for params in [docs.hover_params(h) for h in lat.HOVERS]:
            await session.hover(params)
        return rss_mb(session.pid)
    finally:
        await session.close()


async def run(args) -> dict:
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="llmref-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    docs_dir = work / "workspace"
    docs_dir.mkdir(exist_ok=True)
    docs = lat.Docs.write(docs_dir)
    report: dict = {"sizes": {}}
    env = env_for(work / "cache-bundled")
    report["bare_rss_mb"] = await bare_rss(docs, env)
    cli(["index"], env)
    report["bundled"] = await server_metrics(lat.llmref_spec(env), docs, {}, None, args.rounds)
    for size in args.sizes:
        notes = work / f"notes-{size}"
        if not notes.exists():
            generate(notes, size, seed=11)
        env = env_for(work / f"cache-{size}")
        shutil.rmtree(work / f"cache-{size}", ignore_errors=True)
        row: dict = {}
        seconds, proc = cli(["index", "--corpus", str(notes), "--no-bundled"], env)
        row["build_s"] = seconds
        row["build_output"] = (proc.stdout + proc.stderr).strip().splitlines()[:1]
        row["entries"] = _entries(proc.stdout)
        cli_visible = []
        for k in range(3):
            marker = f"蜂鸟编码{k}号{int(time.time() * 1000) % 100000}"
            append_section(notes, marker)
            seconds, proc = cli(["search", marker, "--corpus", str(notes), "--no-bundled"], env)
            found = marker in proc.stdout
            cli_visible.append(seconds if found else float("inf"))
        row["cli_edit_visible_s"] = statistics.median(cli_visible)
        seconds, _ = cli(["search", "KV cache", "--corpus", str(notes), "--no-bundled"], env)
        row["cli_search_s"] = seconds
        options = {"corpus": [str(notes)], "bundled": False}
        row["server"] = await server_metrics(
            lat.llmref_spec(env), docs, options, notes, args.rounds
        )
        report["sizes"][str(size)] = row
        if args.json:
            continue
        print_size(size, row, report)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _entries(output: str) -> int | None:
    for word in output.split():
        if word.isdigit():
            return int(word)
    return None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_size(size: int, row: dict, report: dict) -> None:
    s = row["server"]
    b = report["bundled"]
    hover_ratio = s["hover"]["p99_ms"] / max(b["hover"]["p99_ms"], 1e-9)
    completion_ratio = s["completion"]["p99_ms"] / max(b["completion"]["p99_ms"], 1e-9)
    rss_ratio = s["rss_mb"] / max(b["rss_mb"], 1e-9)
    print(f"\n== {size} entries asked ({row['entries']} indexed)")
    print(f"  first build (CLI)          {row['build_s']:8.1f} s   {row['build_output']}")
    print(f"  edit -> visible, CLI       {row['cli_edit_visible_s']:8.2f} s   target <= 1.5 s "
          f"{verdict(row['cli_edit_visible_s'] <= 1.5)}")  # fmt: skip
    print(f"  edit -> visible, server    {s['edit_visible_s']:8.2f} s   target <= 1 s "
          f"{verdict(s['edit_visible_s'] <= 1.0)}")  # fmt: skip
    for name in ("search", "symbols"):
        m = s[name]
        print(f"  {name:<10} p50/p99        {m['p50_ms']:6.1f} / {m['p99_ms']:6.1f} ms   "
              f"target p99 <= 100 ms {verdict(m['p99_ms'] <= 100)}")  # fmt: skip
    print(f"  hover p99                  {s['hover']['p99_ms']:8.2f} ms  {hover_ratio:.2f}x bundled "
          f"(target <= 1.5x) {verdict(hover_ratio <= 1.5)}")  # fmt: skip
    print(f"  completion p99             {s['completion']['p99_ms']:8.2f} ms  "
          f"{completion_ratio:.2f}x bundled (target <= 1.5x) {verdict(completion_ratio <= 1.5)}")  # fmt: skip
    print(f"  server RSS                 {s['rss_mb']:8.1f} MB  {rss_ratio:.2f}x bundled "
          f"(target <= 3x) {verdict(rss_ratio <= 3)}")  # fmt: skip


def print_header(report: dict) -> None:
    b = report["bundled"]
    ratio = b["rss_mb"] / max(report["bare_rss_mb"], 1e-9)
    print(f"bare pygls server RSS {report['bare_rss_mb']:.1f} MB; bundled-corpus server RSS "
          f"{b['rss_mb']:.1f} MB = {ratio:.2f}x (target <= 2x) {verdict(ratio <= 2)}")  # fmt: skip
    print(f"bundled: hover p99 {b['hover']['p99_ms']:.2f} ms, completion p99 "
          f"{b['completion']['p99_ms']:.2f} ms, search p99 {b['search']['p99_ms']:.1f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="1k entries only, fewer rounds")
    parser.add_argument("--rounds", type=int, default=20, help="passes over the hover positions")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", help="work folder to keep (generated notes are reused)")
    args = parser.parse_args(argv)
    args.sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    if args.quick:
        args.rounds = min(args.rounds, 5)
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print()
        print_header(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
