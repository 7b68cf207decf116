"""A real notes folder size, through the real server: a generated folder of 3,500+ entries
(past the size where builds go to worker processes) becomes ready and answers, an edited file
is visible to a running server without a rebuild, and no process outlives a killed server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import ROOT, server_env, start

sys.path.insert(0, str(ROOT / "benchmarks"))
from corpus_gen import generate  # noqa: E402

ENTRIES = 3_600


@pytest.fixture(scope="module")
def big_notes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big") / "vault"
    generate(folder, ENTRIES, seed=7)
    return folder


CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / f"llmref-scale-{os.getpid()}"
CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(CACHE),
)


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def search(client: LanguageClient, query: str):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="llmref.search", arguments=[query, 20])
    )


async def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise TimeoutError


async def test_a_big_notes_folder_becomes_ready_and_stays_current(client, big_notes):
    await start(client, {"corpus": [str(big_notes)], "bundled": False})

    async def ready():
        result = await search(client, "KV cache")
        return result if isinstance(result, list) and result else None

    results = await wait_for(ready, timeout=600)
    assert all(r["source"].startswith("vault/") for r in results)

    # the build was reported as progress, begin to end
    assert any(
        reports and isinstance(reports[-1], types.WorkDoneProgressEnd)
        for reports in client.progress_reports.values()
    )

    # one file edited: visible without a rebuild
    note = sorted(big_notes.rglob("*.md"))[3]
    with note.open("a", encoding="utf-8") as f:
        f.write("\n\n## 蜂鸟解码是什么\n\nHummingbird decoding 是一种虚构的解码方法。\n")
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=note.as_uri(), type=types.FileChangeType.Changed)]
        )
    )

    async def visible():
        result = await search(client, "蜂鸟解码")
        return isinstance(result, list) and any("蜂鸟解码" in r["question"] for r in result)

    await wait_for(visible, timeout=30)


def _children(pid: int) -> set[int]:
    """All descendants of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts processes through /proc")
def test_no_process_outlives_a_killed_server(big_notes, tmp_path):
    """kill -9 the server while it builds: its build process and workers go with it, and
    the next start finds nothing it trips over."""
    env = server_env(tmp_path / "cache")
    server = subprocess.Popen(
        [sys.executable, "-m", "llmref", "serve", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert server.stdin is not None
    server.stdin.write(
        _frame(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": os.getpid(),
                    "rootUri": None,
                    "capabilities": {},
                    "initializationOptions": {"corpus": [str(big_notes)], "bundled": False},
                },
            }
        )
        + _frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    )
    server.stdin.flush()
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline:
        seen |= _children(server.pid)
        if len(seen) >= 2:  # the build process and at least one worker
            break
        time.sleep(0.05)
    assert seen, "the server started no build process"
    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in seen):
        time.sleep(0.05)
    assert not [p for p in seen if _alive(p)], "processes outlived the server"

    # the next start builds cleanly from what the killed one left
    done = subprocess.run(
        [sys.executable, "-m", "llmref", "index", "--corpus", str(big_notes), "--no-bundled"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_concurrent_builders_make_one_build(tmp_path):
    """Three CLIs on one empty cache at once: no error, no corrupt index, one build."""
    folder = tmp_path / "notes"
    generate(folder, 600, seed=3)
    env = server_env(tmp_path / "cache")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "llmref", "index", "--corpus", str(folder), "--no-bundled"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum("Index built" in out for out, _err in outputs) == 1, outputs
    (slot,) = [p for p in (tmp_path / "cache" / "index").iterdir() if p.name.startswith("ix-")]
    assert len([p for p in slot.iterdir() if p.name.startswith("g-")]) == 1
