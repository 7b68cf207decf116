"""The team corpus on PostgreSQL at scale: publish, re-publish, search through `llmref serve`
against Whoosh at the same size, concurrent servers, and retrieval quality on both engines.

    python benchmarks/team.py [--entries 100000] [--notes DIR] [--servers 8] [--rounds 3]
                              [--skip-local] [--skip-quality] [--bound] [--json]

Starts its own throwaway PostgreSQL cluster (tests/team/cluster.py: initdb + pg_ctl on a
loopback port, stopped at the end), generates ``--entries`` entries of notes with
benchmarks/corpus_gen.py (or uses ``--notes``), then measures:

* publish: ``llmref publish`` of the whole folder into an empty database (time, entries,
  of which in database writes), then the re-publish of one changed file (median of 3);
  for comparison, the local Whoosh index build of the same folder (``llmref index``);
* search: ``llmref.search`` through ``llmref serve`` over stdio, p50/p99, one server with the
  notes as a local corpus (Whoosh) and one with them in the database, same queries
  (tests/data/dev-queries.yaml + benchmarks/extra-queries.yaml; then, reported apart, the
  plain-English questions of dev-nl-queries.yaml + nl-queries.yaml), interleaved; and whether
  the two rank the notes alike (same first result, overlap of the top 10);
* concurrency: ``--servers`` servers against the one database, all searching at once;
* ``--bound``: the statement's candidate bound (each term's best 1,500 postings, 300
  candidates scored exactly) against reading every posting (the 5,000 entries with the
  highest impact sums over whole posting lists scored exactly): how often the best-scoring
  entry is found, and the best hit's share of the best score;
* quality: the bundled corpus published to a second database and searched without any local
  corpus, hit@1/hit@3 against the local Whoosh index, on the dev sets and our larger sets.

Targets (reported, never asserted): publish 100k <= 3 min, one-file re-publish <= 1 s,
search p99 <= 50 ms at 100k, quality within 0.02 of Whoosh.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "team"))

import cluster  # noqa: E402
from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from lsp_latency import server_env, stop_client, summary  # noqa: E402

READER, WRITER = "bench-reader-pw", "bench-writer-pw"


# the query sets, terms and plain English (tests/data: the dev sets; benchmarks: ours)
SETS = {
    "dev-queries.yaml": ROOT / "tests/data/dev-queries.yaml",
    "dev-nl-queries.yaml": ROOT / "tests/data/dev-nl-queries.yaml",
    "extra-queries.yaml": ROOT / "benchmarks/extra-queries.yaml",
    "nl-queries.yaml": ROOT / "benchmarks/nl-queries.yaml",
}


def queries(plain: bool = False) -> list[str]:
    """The term queries (dev + extra), or with ``plain`` the plain-English questions (dev +
    ours): longer plans, the slower half of what people type."""
    names = (
        ("dev-nl-queries.yaml", "nl-queries.yaml")
        if plain
        else ("dev-queries.yaml", "extra-queries.yaml")
    )
    out: list[str] = []
    for name in names:
        out += [q["query"] for q in yaml.safe_load(SETS[name].read_text(encoding="utf-8"))]
    return out


def make_db(node: cluster.Node, name: str) -> tuple[str, str]:
    import psycopg

    from llmref.team.db import init_db

    with psycopg.connect(node.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    init_db(node.url(db=name), reader_password=READER, writer_password=WRITER)
    return node.url("llmref_writer", WRITER, name), node.url("llmref_reader", READER, name)


# --- publish -----------------------------------------------------------------------------------


def measure_publish(notes: Path, writer: str) -> dict:
    from llmref.team.publish import publish

    started = time.perf_counter()
    report = publish([notes], writer)
    total = time.perf_counter() - started
    out = {
        "entries": report.entries,
        "files": report.added,
        "seconds": total,
        "write_seconds": report.write_seconds,
        "workers": report.workers,
        "problems": len(report.problems),
    }
    # one changed file, three times
    files = sorted(notes.rglob("*.md"))
    target = files[len(files) // 2]
    original = target.read_text(encoding="utf-8")
    times = []
    for n in range(3):
        target.write_text(original + f"\n\n## 追加的问题 {n}\n\n新的回答 {n}。\n", encoding="utf-8")
        t0 = time.perf_counter()
        again = publish([notes], writer)
        times.append(time.perf_counter() - t0)
        assert again.changed == 1, again
    target.write_text(original, encoding="utf-8")
    publish([notes], writer)
    out["republish_one_s"] = statistics.median(times)
    return out


def measure_local_build(notes: Path, cache: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "llmref", "index", "--corpus", str(notes)],
        env=server_env(cache, None),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


# --- llmref serve ----------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, env: dict[str, str], options: dict) -> None:
        self.name = name
        self.env = env
        self.options = options
        self.client = LanguageClient("team-bench", "1")
        client = self.client
        for method in (types.WINDOW_WORK_DONE_PROGRESS_CREATE, types.CLIENT_REGISTER_CAPABILITY):
            client.feature(method)(lambda *_a: None)

        @client.feature(types.WORKSPACE_CONFIGURATION)
        def _configuration(params):
            return [None for _ in params.items]

        for note in (types.PROGRESS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE):
            client.feature(note)(lambda *_a: None)

    async def start(self, folder: Path) -> None:
        await self.client.start_io(sys.executable, "-m", "llmref", "serve", "--stdio", env=self.env)
        await self.client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                capabilities=types.ClientCapabilities(),
                root_uri=folder.as_uri(),
                initialization_options=self.options,
            )
        )
        self.client.initialized(types.InitializedParams())

    async def search(self, query: str):
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="llmref.search", arguments=[query])
        )

    async def ready(self, probe: str, team: bool, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = await self.search(probe)
            if isinstance(result, list) and (
                not team or any(r["id"].startswith("team:") for r in result)
            ):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} did not become ready")

    async def close(self) -> None:
        await stop_client(self.client)


async def _timed(servers: list[Server], qs: list[str], rounds: int) -> dict[str, list[float]]:
    """Each query on every server in turn (interleaved), ``rounds`` times: seconds per server."""
    times: dict[str, list[float]] = {s.name: [] for s in servers}
    for _ in range(rounds):
        for q in qs:
            for s in servers:
                t0 = time.perf_counter()
                result = await s.search(q)
                times[s.name].append(time.perf_counter() - t0)
                if not isinstance(result, list):
                    raise RuntimeError(f"{s.name}: {result}")
    return times


async def measure_search(
    notes: Path, reader: str, caches: tuple[Path, Path], rounds: int, local: bool
) -> dict:
    qs = queries()
    team = Server(
        "postgres", server_env(caches[1], None), {"database": reader, "databaseTimeoutMs": 2000}
    )
    servers = [team]
    whoosh = None
    if local:
        whoosh = Server("whoosh", server_env(caches[0], None), {"corpus": [str(notes)]})
        servers.append(whoosh)
    try:
        for s in servers:
            await s.start(notes)
        await team.ready("KV cache", team=True)
        if whoosh is not None:
            await whoosh.ready("KV cache", team=False)
        same_first, overlap = 0, []
        for q in qs:  # warm-up pass; with Whoosh: do both engines rank the notes alike?
            ids = [[r["id"].removeprefix("team:") for r in await s.search(q)] for s in servers]
            if len(ids) == 2 and ids[1]:
                same_first += bool(ids[0]) and ids[0][0] == ids[1][0]
                top = set(ids[1][:10])
                overlap.append(len(top & set(ids[0][:10])) / len(top))
        out: dict = {name: summary(v) for name, v in (await _timed(servers, qs, rounds)).items()}
        plain = queries(plain=True)  # the plain-English questions, timed alike
        for q in plain:  # warm-up
            for s in servers:
                await s.search(q)
        timed = await _timed(servers, plain, rounds)
        out.update({f"{name}, plain English": summary(v) for name, v in timed.items()})
        if overlap:
            out["agreement"] = {
                "queries": len(overlap),
                "same_first": same_first,
                "top10_overlap_mean": round(sum(overlap) / len(overlap), 3),
            }
        return out
    finally:
        for s in servers:
            await s.close()


async def measure_concurrent(notes: Path, reader: str, cache: Path, n: int, rounds: int) -> dict:
    qs = queries()
    servers = [
        Server(f"s{i}", server_env(cache, None), {"database": reader, "databaseTimeoutMs": 2000})
        for i in range(n)
    ]
    try:
        for s in servers:
            await s.start(notes)
        await asyncio.gather(*(s.ready("KV cache", team=True) for s in servers))
        times: list[float] = []
        missed = 0

        async def loop(s: Server) -> None:
            nonlocal missed
            for _ in range(rounds):
                for q in qs:
                    t0 = time.perf_counter()
                    result = await s.search(q)
                    times.append(time.perf_counter() - t0)
                    if not isinstance(result, list):
                        missed += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(s) for s in servers))
        wall = time.perf_counter() - started
        return {**summary(times), "servers": n, "qps": len(times) / wall, "errors": missed}
    finally:
        for s in servers:
            await s.close()


# --- the candidate bound ---------------------------------------------------------------------


def measure_bound(reader: str, cache: Path, k: int, m: int) -> dict:
    """What the statement's bound (each term's best ``k`` postings, ``m`` candidates) costs
    against reading every posting, per query set: how often the best-scoring entry is found,
    and the best hit's score as a share of the best score (1.0: exact)."""
    import psycopg

    from llmref.config import Settings
    from llmref.lookup import Reference
    from llmref.team.search import compile_plan, run

    ref = Reference.open(Settings(database=reader, database_timeout_ms=5000, cache=cache))
    deadline = time.monotonic() + 30
    while ref.team is not None and not ref.team.concepts.items and time.monotonic() < deadline:
        time.sleep(0.1)  # the planner's concept statistics come from the team's concept map
    out: dict = {}
    try:
        with psycopg.connect(reader, autocommit=True) as conn:
            for path in SETS.values():
                found, shares = 0, []
                for item in yaml.safe_load(path.read_text(encoding="utf-8")):
                    planned = ref._prepare(item["query"], None, stats=ref.team)
                    plan = compile_plan(planned.clauses)
                    best = run(conn, plan, k=10**9, m=5000, r=1).hits
                    if not best:
                        continue
                    got = run(conn, plan, k=k, m=m, r=1).hits
                    share = got[0][0].score / best[0][0].score if got else 0.0
                    found += share >= 1 - 1e-6
                    shares.append(share)
                shares.sort()
                out[path.name] = {
                    "queries": len(shares),
                    "best_found": found,
                    "share_mean": round(sum(shares) / max(len(shares), 1), 3),
                    "share_p10": round(shares[len(shares) // 10], 3) if shares else None,
                }
    finally:
        ref.close()
    return out


# --- quality -----------------------------------------------------------------------------------


def measure_quality(writer: str, reader: str, cache: Path) -> dict:
    import retrieval
    from llmref.config import Settings, bundled_corpus_dir
    from llmref.lookup import Reference
    from llmref.team.publish import publish

    publish([bundled_corpus_dir()], writer)
    local = Reference.open(Settings(cache=cache / "q-local"))
    team = Reference.open(
        Settings(bundled=False, database=reader, database_timeout_ms=5000, cache=cache / "q-team")
    )
    deadline = time.monotonic() + 30
    while not team.team.concepts.items and time.monotonic() < deadline:
        time.sleep(0.1)
    out: dict = {}
    try:
        for path in SETS.values():
            items = yaml.safe_load(path.read_text(encoding="utf-8"))
            w = retrieval.evaluate(local, items)
            p = retrieval.evaluate(team, items)
            out[path.name] = {
                "whoosh": [round(w["hit@1"], 3), round(w["hit@3"], 3)],
                "postgres": [round(p["hit@1"], 3), round(p["hit@3"], 3)],
            }
    finally:
        local.close()
        team.close()
    return out


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--notes", type=Path, help="a notes folder to use instead of generating")
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-local", action="store_true", help="no Whoosh build/server")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--bound",
        action="store_true",
        help="also compare the statement's 1,500-posting bound with reading every posting",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    bindir = cluster.bindir()
    if bindir is None:
        print("no PostgreSQL binaries (tests/team/install.sh installs them)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="llmref-team-bench-"))
    report: dict = {"cpus": os.cpu_count()}
    c = cluster.Cluster(
        bindir,
        settings={"shared_buffers": "256MB", "max_wal_size": "4GB", "max_connections": "60"},
    )
    try:
        notes = args.notes
        if notes is None:
            from corpus_gen import generate

            notes = work / "notes"
            files = generate(notes, args.entries, seed=1)
            print(f"generated {files} files under {notes}", file=sys.stderr)
        writer, reader = make_db(c.primary, "bench")
        print("publishing…", file=sys.stderr)
        report["publish"] = measure_publish(notes, writer)
        print(json.dumps(report["publish"]), file=sys.stderr)
        caches = (work / "cache-whoosh", work / "cache-team")
        if not args.skip_local:
            print("building the local Whoosh index of the same notes…", file=sys.stderr)
            report["local_build_s"] = measure_local_build(notes, caches[0])
        print("searching through llmref serve…", file=sys.stderr)
        report["search"] = asyncio.run(
            measure_search(notes, reader, caches, args.rounds, not args.skip_local)
        )
        if args.servers > 1:
            print(f"{args.servers} servers at once…", file=sys.stderr)
            report["concurrent"] = asyncio.run(
                measure_concurrent(notes, reader, caches[1], args.servers, 1)
            )
        if args.bound:
            print("the candidate bound against every posting…", file=sys.stderr)
            from llmref.team.search import DEFAULT_K, DEFAULT_M

            report["bound"] = measure_bound(reader, work / "cache-bound", DEFAULT_K, DEFAULT_M)
        if not args.skip_quality:
            print("retrieval quality…", file=sys.stderr)
            qw, qr = make_db(c.primary, "quality")
            report["quality"] = measure_quality(qw, qr, work)
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    p = report["publish"]
    print(
        f"publish {p['entries']} entries ({p['files']} files): {p['seconds']:.1f}s "
        f"({p['write_seconds']:.1f}s in database writes, {p['workers']} parsing workers, "
        f"{report['cpus']} CPUs); one changed file re-published: {p['republish_one_s']:.2f}s"
    )
    if "local_build_s" in report:
        print(f"local Whoosh index of the same notes: {report['local_build_s']:.1f}s")
    agreement = report["search"].pop("agreement", None)
    for name, s in report["search"].items():
        print(
            f"search via llmref serve, {name}: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"
        )
    if agreement:
        a = agreement
        print(
            f"same notes, both engines (with the bundled corpus): same first result for "
            f"{a['same_first']}/{a['queries']} queries, top-10 overlap {a['top10_overlap_mean']}"
        )
    if "concurrent" in report:
        s = report["concurrent"]
        print(
            f"{s['servers']} servers at once: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
            f"{s['qps']:.0f} searches/s, {s['errors']} errors"
        )
    for name, b in report.get("bound", {}).items():
        print(
            f"bound {name}: best entry found for {b['best_found']}/{b['queries']}, "
            f"best hit's share of the best score mean {b['share_mean']}, p10 {b['share_p10']}"
        )
    for name, q in report.get("quality", {}).items():
        print(f"quality {name}: Whoosh hit@1/hit@3 {q['whoosh']}, PostgreSQL {q['postgres']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
