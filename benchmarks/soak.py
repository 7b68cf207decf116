"""Soak: about 1,000 hovers a second for a minute, llmref against a bare pygls server.

    python benchmarks/soak.py [--quick] [--rate N] [--seconds S] [--window W] [--edits N] [--json]

Both servers are spawned the same way over stdio (the baseline is lsp_latency.py's bare
pygls server, which answers every hover with one static card). A raw client sends hovers
at a fixed rate whatever the answers do (open loop: a stall shows as latency, not as a
slower request rate), over the two realistic documents of lsp_latency.py (a modeling file
and a Chinese note; positions on terms and off them), with a no-op edit (didChange) every
``--edits`` hovers as an editor sends while the user types, and parses every frame strictly.

Reported per time window: requests sent and answered, p50 / p99 / max latency, and the
server's RSS; then the RSS drift (last window minus first, and per 1,000 requests), frames
that did not parse, requests never answered, and the llmref / baseline p99 ratio. Nothing is
asserted: the exit status is 0 whatever the numbers (speed is reported, not tested).
``--quick``: 10 seconds per server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from lsp_latency import BASELINE_SERVER, MODELING_PY, NOTE_MD  # noqa: E402


class Client:
    """A raw stdio LSP client: frames out, frames in (strictly), arrival time per id."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.sent: dict[int, float] = {}
        self.arrived: dict[int, float] = {}
        self.results: dict[int, object] = {}
        self.corrupt = 0
        self._lock = threading.Lock()
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline(1000)
                if not line:
                    return
                if line == b"\r\n":
                    break
                name, _, value = line.rstrip(b"\r\n").partition(b": ")
                if name == b"Content-Length" and value.isdigit():
                    length = int(value)
                elif name != b"Content-Type":
                    self.corrupt += 1
                    return
            if length is None:
                self.corrupt += 1
                return
            body = out.read(length)
            now = time.perf_counter()
            try:
                message = json.loads(body)
            except ValueError:
                self.corrupt += 1
                return
            msg_id = message.get("id") if isinstance(message, dict) else None
            if isinstance(msg_id, int) and "method" not in message:
                self.arrived[msg_id] = now
                if msg_id < 0:  # set-up requests: keep the answer
                    self.results[msg_id] = message.get("result", message.get("error"))

    def send(self, message: dict) -> None:
        body = json.dumps(message, ensure_ascii=False).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: object) -> int:
        with self._lock:
            self._next += 1
            msg_id = self._next
        self.sent[msg_id] = time.perf_counter()  # before writing: the answer can be quick
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def call(self, method: str, params: object, timeout: float = 120.0) -> object:
        """A set-up request (negative id), waited for."""
        with self._lock:
            self._next += 1
            msg_id = -self._next
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while msg_id not in self.results:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{method}: no answer")
            time.sleep(0.005)
        return self.results.pop(msg_id)

    def notify(self, method: str, params: object) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def rss_kb(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def close(self) -> None:
        try:
            self.call("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def positions(text: str, words: list[str]) -> list[tuple[int, int]]:
    """(line, UTF-16 column) of each word's second character, plus some spots off terms."""
    out = []
    lines = text.splitlines()
    for word in words:
        for n, line in enumerate(lines):
            col = line.find(word)
            if col >= 0:
                out.append((n, len(line[: col + 1].encode("utf-16-le")) // 2))
                break
    out += [(n, 2) for n in range(0, len(lines), max(1, len(lines) // 20))]
    return out


def _range(l1: int, c1: int, l2: int, c2: int) -> dict:
    return {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}


def soak(
    name: str,
    argv: list[str],
    env: dict[str, str],
    rate: float,
    seconds: float,
    window: float,
    edits: int,
) -> dict:
    client = Client(argv, env)
    try:
        caps = {"textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}}}
        client.call("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": caps})
        client.notify("initialized", {})
        docs = []
        texts: dict[str, str] = {}
        versions: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="llmref-soak-") as tmp:
            for fname, text, language, words in (
                ("modeling_llama.py", MODELING_PY, "python", ["LlamaRMSNorm", "past_key_values", "apply_rotary_pos_emb", "num_key_value_heads", "flash_attn_func", "repeat_kv"]),
                ("notes.md", NOTE_MD, "markdown", ["旋转位置编码", "KV cache", "RMSNorm", "LoRA", "FlashAttention"]),
            ):  # fmt: skip
                uri = (Path(tmp) / fname).as_uri()
                texts[uri] = text
                doc = {"uri": uri, "languageId": language, "version": 1, "text": text}
                client.notify("textDocument/didOpen", {"textDocument": doc})
                docs += [(uri, pos) for pos in positions(text, words)]
        # warm up: until a hover card holds a Q&A (llmref's index is loaded), at most 60 s
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            uri, (line, col) = docs[0]
            card = client.call(
                "textDocument/hover",
                {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}},
            )
            if name == "baseline" or "---" in json.dumps(card, ensure_ascii=False):
                break
            time.sleep(0.2)
        for uri, (line, col) in docs * 3:
            client.call(
                "textDocument/hover",
                {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}},
            )
        sent = client.sent
        windows = []
        start = time.perf_counter()
        interval = 1.0 / rate
        n = 0
        next_window = start + window
        window_first = 1
        while True:
            now = time.perf_counter()
            if now >= next_window:
                windows.append((window_first, client._next, client.rss_kb()))
                window_first = client._next + 1
                next_window += window
                if now - start >= seconds:
                    break
            due = start + n * interval
            if now < due:
                time.sleep(min(due - now, 0.002))
                continue
            uri, (line, col) = docs[n % len(docs)]
            if edits and n % edits == 0:  # as while typing: a no-op edit of the first character
                versions[uri] = versions.get(uri, 1) + 1
                first = texts[uri][0]
                client.notify(
                    "textDocument/didChange",
                    {
                        "textDocument": {"uri": uri, "version": versions[uri]},
                        "contentChanges": [{"range": _range(0, 0, 0, 1), "text": first}],
                    },
                )
            client.request(
                "textDocument/hover",
                {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}},
            )
            n += 1
        time.sleep(min(5.0, window))  # let the last answers arrive
        rows = []
        for first, last, rss in windows:
            lat = [
                (client.arrived[i] - sent[i]) * 1000
                for i in range(first, last + 1)
                if i in sent and i in client.arrived
            ]
            count = sum(1 for i in range(first, last + 1) if i in sent)
            rows.append(
                {
                    "sent": count,
                    "answered": len(lat),
                    "p50_ms": statistics.median(lat) if lat else None,
                    "p99_ms": _pct(lat, 99),
                    "max_ms": max(lat) if lat else None,
                    "rss_mb": rss / 1024 if rss else None,
                }
            )
        all_lat = [(client.arrived[i] - t) * 1000 for i, t in sent.items() if i in client.arrived]
        rss = [r["rss_mb"] for r in rows if r["rss_mb"] is not None]
        total = len(sent)
        return {
            "server": name,
            "requests": total,
            "rate": total / seconds,
            "unanswered": sum(1 for i in sent if i not in client.arrived),
            "corrupt_frames": client.corrupt,
            "p50_ms": statistics.median(all_lat) if all_lat else None,
            "p99_ms": _pct(all_lat, 99),
            "rss_first_mb": rss[0] if rss else None,
            "rss_last_mb": rss[-1] if rss else None,
            "rss_drift_kb_per_1k": ((rss[-1] - rss[0]) * 1024 / (total / 1000))
            if len(rss) > 1 and total
            else None,
            "windows": rows,
        }
    finally:
        client.close()


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def _fmt(value: float | None, spec: str = "7.2f") -> str:
    return format(value, spec) if value is not None else "   n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s per server, 1 s windows")
    parser.add_argument("--rate", type=float, default=1000.0, help="hovers per second (1000)")
    parser.add_argument("--seconds", type=float, help="per server (60; --quick: 10)")
    parser.add_argument("--window", type=float, help="window length in s (5; --quick: 1)")
    parser.add_argument(
        "--edits", type=int, default=10, help="a no-op didChange every N hovers (10; 0: none)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    window = args.window or (1.0 if args.quick else 5.0)

    with tempfile.TemporaryDirectory(prefix="llmref-soak-cache-") as cache:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT / "server")
        env["LLMREF_CACHE_DIR"] = cache
        env["LLMREF_CONFIG"] = str(Path(cache) / "no-config.yaml")
        env.pop("LLMREF_CORPUS", None)
        baseline_py = Path(cache) / "baseline_server.py"
        baseline_py.write_text(BASELINE_SERVER, encoding="utf-8")
        # build the index once, so llmref's soak starts on a warm cache like an editor's
        subprocess.run(
            [sys.executable, "-m", "llmref", "index"], env=env, check=True, capture_output=True
        )
        runs = [
            soak("llmref", [sys.executable, "-m", "llmref", "serve", "--stdio"], env, args.rate, seconds, window, args.edits),
            soak("baseline", [sys.executable, str(baseline_py)], env, args.rate, seconds, window, args.edits),
        ]  # fmt: skip
    ratio = None
    if runs[0]["p99_ms"] and runs[1]["p99_ms"]:
        ratio = runs[0]["p99_ms"] / runs[1]["p99_ms"]
    if args.json:
        print(json.dumps({"runs": runs, "p99_ratio": ratio}, indent=2))
        return 0
    for run in runs:
        print(
            f"\n{run['server']}: {run['requests']} hovers at {run['rate']:.0f}/s, "
            f"{run['unanswered']} unanswered, {run['corrupt_frames']} corrupt frames"
        )
        print("  window   sent  answered     p50 ms   p99 ms   max ms   RSS MB")
        for n, row in enumerate(run["windows"], 1):
            print(
                f"  {n:6d} {row['sent']:6d} {row['answered']:9d}   {_fmt(row['p50_ms'])}  "
                f"{_fmt(row['p99_ms'])}  {_fmt(row['max_ms'])}  {_fmt(row['rss_mb'], '7.1f')}"
            )
        print(
            f"  overall p50 {_fmt(run['p50_ms'])} ms, p99 {_fmt(run['p99_ms'])} ms; RSS "
            f"{_fmt(run['rss_first_mb'], '.1f')} -> {_fmt(run['rss_last_mb'], '.1f')} MB "
            f"({_fmt(run['rss_drift_kb_per_1k'], '+.1f')} KB per 1,000 hovers)"
        )
    print(f"\np99 llmref / baseline: {_fmt(ratio, '.2f')}x")
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
