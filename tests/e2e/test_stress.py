"""Under load, from outside: every frame arrives whole and byte-exact, every request is
answered, a shutdown with replies pending is quick and quiet, a lost client ends the
server, and memory does not grow per request.

The search results here are ~100 KB each (a generated notes folder with long answers,
``--corpus``), asked 50 at a time; the server's stdout is a non-blocking pipe, where a big
write comes back partial — the condition in which frames from worker threads used to
interleave (another frame inside a body at byte 65,454) or get lost.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from .conftest import CACHE
from .rawlsp import RawServer, write_long_notes

SEARCH = "workspace/executeCommand"
QUERIES = ["KV cache", "PagedAttention 显存", "自回归解码", "decoding step token"]


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    return write_long_notes(tmp_path_factory.mktemp("long-notes"), entries=60, answer_chars=3900)


def search(s: RawServer, query: str, limit: int = 20) -> int:
    return s.send_request(SEARCH, {"command": "llmref.search", "arguments": [query, limit]})


def stderr_lines(s: RawServer) -> list[str]:
    return [line for line in s.stderr().splitlines() if line.strip()]


def test_50_concurrent_100_kb_responses_arrive_whole(notes, tmp_path):
    nonblocking = sys.platform != "win32"
    with RawServer(
        CACHE, "--corpus", str(notes), stderr_path=tmp_path / "err", nonblocking_stdout=nonblocking
    ) as s:
        s.initialize()
        s.wait_loaded()
        expected = {}
        for query in QUERIES:  # one at a time first: what each answer must be
            reply = s.response(search(s, query), timeout=60)
            expected[query] = json.dumps(reply["result"], ensure_ascii=False)
            assert (
                len(expected[query].encode()) > 66_000
            )  # more than a pipe buffer (64 KiB): written in parts
        for _round in range(2):
            s.reading.clear()  # a slow client: the pipe fills, writes come back partial
            sent = {
                search(s, QUERIES[n % len(QUERIES)]): QUERIES[n % len(QUERIES)] for n in range(50)
            }
            time.sleep(1.0)
            s.reading.set()
            for msg_id, query in sent.items():
                reply = s.response(msg_id, timeout=120)
                assert reply is not None, f"no answer to request {msg_id}"
                assert json.dumps(reply["result"], ensure_ascii=False) == expected[query]
        assert s.corrupt == []
        big = [body for body in s.frames if len(body) > 66_000]
        assert len(big) >= 100 + len(QUERIES)
        assert s.shutdown_and_exit() == 0
        assert s.corrupt == []
        assert stderr_lines(s) == []


def test_shutdown_with_replies_pending_is_quick_and_quiet(notes, tmp_path):
    with RawServer(CACHE, "--corpus", str(notes), stderr_path=tmp_path / "err") as s:
        s.initialize()
        s.wait_loaded()
        for n in range(50):
            search(s, QUERIES[n % len(QUERIES)], limit=100)
        shutdown = s.send_request("shutdown")
        s.notify("exit")
        started = time.monotonic()
        assert s.wait(30) == 0
        took = time.monotonic() - started
        assert s.response(shutdown, timeout=5) is not None
        assert s.corrupt == []
        assert len(stderr_lines(s)) <= 1, stderr_lines(s)[:5]
        assert took < 15, f"exit took {took:.1f}s"


def test_a_client_that_goes_away_ends_the_server(notes, tmp_path):
    with RawServer(CACHE, "--corpus", str(notes), stderr_path=tmp_path / "err") as s:
        s.initialize()
        s.wait_loaded()
        s.reading.clear()
        for n in range(30):
            search(s, QUERIES[n % len(QUERIES)], limit=100)
        s.stdout.close()  # the client's end of the server's stdout: writes now fail
        assert s.wait(30) == 1
        lines = stderr_lines(s)
        assert len(lines) == 1 and "lost the client" in lines[0], lines[:5]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_memory_does_not_grow_per_request(tmp_path):
    """Mixed traffic (edits, commands, hovers, completions, cancels, invalid params): after a
    warm-up, 4,000 more requests leave RSS where it was (it used to grow ~1.8 KB each)."""
    uri = "file:///tmp/llmref-stress/model.py"
    text = "class LlamaRMSNorm(nn.Module):\n    use kv_cache and past_key_values\n" * 50

    def rss_kb(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def burst(s: RawServer, count: int, first: int) -> None:
        ids = []
        for k in range(first, first + count):
            pos = {"line": k % 100, "character": 10}
            kind = k % 8
            if kind == 0:
                ids.append(
                    s.send_request(
                        "textDocument/hover", {"textDocument": {"uri": uri}, "position": pos}
                    )
                )
            elif kind == 1:
                ids.append(
                    s.send_request(
                        "textDocument/completion", {"textDocument": {"uri": uri}, "position": pos}
                    )
                )
            elif kind == 2:
                ids.append(
                    s.send_request(
                        "textDocument/definition", {"textDocument": {"uri": uri}, "position": pos}
                    )
                )
            elif kind == 3:
                ids.append(
                    s.send_request(
                        "completionItem/resolve",
                        {"label": "RMSNorm", "data": {"concept": "RMSNorm"}},
                    )
                )
            elif kind == 4:
                ids.append(
                    s.send_request(SEARCH, {"command": "llmref.show", "arguments": ["no-such-id"]})
                )
            elif kind == 5:
                change = {
                    "range": {
                        "start": {"line": 0, "character": 0},
                        "end": {"line": 0, "character": 1},
                    },
                    "text": "c",
                }
                s.notify(
                    "textDocument/didChange",
                    {"textDocument": {"uri": uri, "version": k + 2}, "contentChanges": [change]},
                )
            elif kind == 6:
                ids.append(
                    s.send_request(
                        "textDocument/hover",
                        {"textDocument": {"uri": uri}, "position": {"line": -1, "character": 0}},
                    )
                )
            else:
                msg_id = s.send_request(
                    "textDocument/hover", {"textDocument": {"uri": uri}, "position": pos}
                )
                s.notify("$/cancelRequest", {"id": msg_id})
                ids.append(msg_id)
            if len(ids) >= 50 or k == first + count - 1:
                for msg_id in ids:
                    assert s.response(msg_id, timeout=30) is not None
                ids = []
                with s._cond:  # the client keeps no history
                    s.messages.clear()
                    s.frames.clear()

    with RawServer(CACHE, stderr_path=tmp_path / "err") as s:
        s.initialize()
        s.wait_loaded()
        s.open(uri, text, "python")
        burst(s, 2000, 0)
        before = rss_kb(s.proc.pid)
        burst(s, 4000, 2000)
        grown = rss_kb(s.proc.pid) - before
        assert grown < 1500, f"RSS grew {grown} KB over 4,000 requests"
        assert s.corrupt == []
        assert s.shutdown_and_exit() == 0
