"""A raw stdio LSP client for protocol tests: it sends exactly the bytes a test gives it
(malformed frames included) and checks every frame the server writes, byte for byte.

pytest-lsp's client cannot produce a broken header or a lying Content-Length, and it
tolerates some framing it should not; this one parses strictly: each frame is
``Content-Length: N\\r\\n`` (optionally ``Content-Type: …\\r\\n``), ``\\r\\n``, then exactly N
bytes of UTF-8 JSON, a JSON-RPC 2.0 object. Anything else is recorded in ``corrupt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def server_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "server")
    env["LLMREF_CACHE_DIR"] = str(cache)
    env["LLMREF_CONFIG"] = str(cache / "no-config.yaml")
    env.pop("LLMREF_CORPUS", None)
    return env


def frame(obj: Any) -> bytes:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """``llmref serve`` as a subprocess, spoken to in raw bytes."""

    def __init__(
        self,
        cache: Path,
        *extra: str,
        stderr_path: Path | None = None,
        nonblocking_stdout: bool = False,
    ) -> None:
        """``nonblocking_stdout``: the server's stdout is a pipe in O_NONBLOCK mode (as some
        clients hand it over), where a big write comes back partial."""
        cache.mkdir(parents=True, exist_ok=True)
        self.stderr_path = stderr_path or cache / f"stderr-{time.monotonic_ns()}.txt"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        write_end = None
        if nonblocking_stdout:
            read_end, write_end = os.pipe()
            os.set_blocking(write_end, False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmref", "serve", "--stdio", *extra],
            stdin=subprocess.PIPE,
            stdout=write_end if write_end is not None else subprocess.PIPE,
            stderr=self._stderr,
            env=server_env(cache),
        )
        if write_end is not None:
            os.close(write_end)
            self.stdout = os.fdopen(read_end, "rb")
        else:
            assert self.proc.stdout is not None
            self.stdout = self.proc.stdout
        self.reading = threading.Event()  # cleared: the client stops reading (a slow client)
        self.reading.set()
        self.messages: list[dict] = []  # every well-formed message, in order
        self.frames: list[bytes] = []  # every well-formed body, as received
        self.corrupt: list[str] = []  # what was wrong with each bad frame
        self.eof = threading.Event()
        self._cond = threading.Condition()
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # --- reading -----------------------------------------------------------------------------

    def _read(self) -> None:
        out = self.stdout
        try:
            while True:
                self.reading.wait()
                length = None
                first = True
                while True:
                    line = out.readline(1000)
                    if not line:
                        if not first:
                            self._bad("EOF inside a header")
                        return
                    first = False
                    if line == b"\r\n":
                        break
                    if not line.endswith(b"\r\n"):
                        self._bad(f"header line without CRLF: {line[:80]!r}")
                        return
                    name, sep, value = line[:-2].partition(b": ")
                    if not sep:
                        self._bad(f"garbage header: {line[:80]!r}")
                        return
                    if name == b"Content-Length":
                        if length is not None or not value.isdigit():
                            self._bad(f"bad Content-Length: {line!r}")
                            return
                        length = int(value)
                    elif name != b"Content-Type":
                        self._bad(f"unknown header: {line[:80]!r}")
                        return
                if length is None:
                    self._bad("frame without Content-Length")
                    return
                body = out.read(length)
                if len(body) != length:
                    self._bad(f"EOF after {len(body)} of {length} body bytes")
                    return
                try:
                    message = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    self._bad(f"body is not UTF-8 JSON ({exc}): {body[:120]!r}")
                    return  # the framing is lost: nothing after this can be trusted
                if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                    self._bad(f"not a JSON-RPC 2.0 object: {body[:120]!r}")
                    continue
                with self._cond:
                    self.frames.append(body)
                    self.messages.append(message)
                    self._cond.notify_all()
        except (OSError, ValueError):
            return  # the test closed its end
        finally:
            self.eof.set()
            with self._cond:
                self._cond.notify_all()

    def _bad(self, what: str) -> None:
        with self._cond:
            self.corrupt.append(what)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> dict | None:
        """The first message satisfying ``predicate`` (waiting for it), or None at timeout/EOF."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0 or (self.eof.is_set() and seen == len(self.messages)):
                    return None
                self._cond.wait(min(left, 0.5))

    def response(self, msg_id: Any, timeout: float = 30.0) -> dict | None:
        return self.wait_for(
            lambda m: (
                m.get("id") == msg_id and "method" not in m and ("result" in m or "error" in m)
            ),
            timeout,
        )

    # --- writing -----------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def send(self, obj: dict) -> None:
        self.send_raw(frame(obj))

    def new_id(self) -> int:
        with self._write_lock:
            self._next_id += 1
            return self._next_id

    def send_request(self, method: str, params: Any = None) -> int:
        msg_id = self.new_id()
        message: dict = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict | None:
        return self.response(self.send_request(method, params), timeout)

    def notify(self, method: str, params: Any = None) -> None:
        message: dict = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def initialize(self, options: dict | None = None, root: Path | None = None) -> dict:
        params: dict = {
            "processId": os.getpid(),
            "rootUri": root.as_uri() if root else None,
            "capabilities": {
                "textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}},
                "general": {"positionEncodings": ["utf-16"]},
            },
            "initializationOptions": options or {},
        }
        reply = self.request("initialize", params, timeout=60)
        assert reply is not None and "result" in reply, reply
        self.notify("initialized", {})
        return reply

    def open(self, uri: str, text: str, language: str = "markdown") -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}},
        )

    def wait_loaded(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.request(
                "workspace/executeCommand",
                {"command": "llmref.search", "arguments": ["KV cache", 1]},
                timeout=timeout,
            )
            if reply and isinstance(reply.get("result"), list):
                return
            time.sleep(0.1)
        raise TimeoutError("the corpus did not load")

    # --- ending ------------------------------------------------------------------------------

    def close_stdin(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass

    def shutdown_and_exit(self, timeout: float = 10.0) -> int:
        self.request("shutdown", timeout=timeout)
        self.notify("exit")
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(timeout)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.close_stdin()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdin, self.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._stderr.close()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_long_notes(folder: Path, entries: int = 120, answer_chars: int = 6000) -> Path:
    """A notes folder whose answers are long (mixed Chinese, English, emoji), all about KV
    cache, so ``llmref.search "KV cache"`` with a limit of 20-100 returns 100 KB-1 MB. Each
    question names different made-up words so that none are grouped as duplicates."""
    import random

    rnd = random.Random(11)
    folder.mkdir(parents=True, exist_ok=True)
    para = (
        "KV cache 缓存已经计算过的 key 和 value，避免在自回归解码时重复计算注意力。"
        "With a KV cache each decoding step only projects the new token 🚀; "
        "显存占用随序列长度线性增长，PagedAttention 把它分页管理。\n\n"
    )
    body = (para * (answer_chars // len(para) + 1))[:answer_chars]
    per_file = 20
    for f in range(0, entries, per_file):
        parts = [f"# KV cache notes {f // per_file}\n"]
        for n in range(f, min(f + per_file, entries)):
            words = " ".join(
                "".join(rnd.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)) for _ in range(4)
            )
            parts.append(f"\n## {n + 1}. How does KV cache relate to {words}?\n\n{body}\n")
        (folder / f"kv-{f // per_file:03d}.md").write_text("".join(parts), encoding="utf-8")
    return folder
