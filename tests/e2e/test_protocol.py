"""The protocol from outside, in raw bytes: every request gets an answer, a broken stream
ends the server (one stderr line, exit status 1) instead of leaving it silently alive, the
framing is read tolerantly where clients differ, unopened files are never read, a 5 MB line
is fine, and ``exit`` reports whether ``shutdown`` came first.

pytest-lsp cannot send a malformed frame, so these tests use ``rawlsp.RawServer``, which
writes exactly the bytes given and parses every frame the server writes strictly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import CACHE
from .rawlsp import RawServer, frame, server_env

HOVER = "textDocument/hover"
COMPLETION = "textDocument/completion"
DEFINITION = "textDocument/definition"
NOTE = "今天复习了旋转位置编码和 KV cache，还有 LlamaRMSNorm。\n"


def hover_params(uri: str, line: int, character: int) -> dict:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


@pytest.fixture
def server(tmp_path):
    with RawServer(CACHE, stderr_path=tmp_path / "stderr.txt") as s:
        yield s


def ended(s: RawServer, timeout: float = 20.0) -> int:
    """The exit status, once the server has exited by itself."""
    return s.wait(timeout)


def null_id_errors(s: RawServer) -> list[dict]:
    return [m for m in list(s.messages) if "id" in m and m["id"] is None and "error" in m]


def stderr_lines(s: RawServer) -> list[str]:
    return [line for line in s.stderr().splitlines() if line.strip()]


# --- every request gets an answer -----------------------------------------------------------------

BAD_POSITIONS = [
    {"line": -1, "character": 0},
    {"line": 0, "character": -5},
    {"line": 2**31, "character": 0},
    {"line": 0, "character": 2**31},
    None,
]
ODD_POSITIONS = [  # cattrs converts these (to 0): answered like line 0, but answered
    {"line": "0", "character": 0},
    {"line": 0.5, "character": 0},
]


def test_invalid_params_are_answered_with_32602_and_the_request_id(server):
    server.initialize()
    uri = "file:///tmp/llmref-protocol/note.md"
    server.open(uri, NOTE)
    sent = []
    for method in (HOVER, COMPLETION, DEFINITION):
        for position in BAD_POSITIONS:
            sent.append(
                server.send_request(method, {"textDocument": {"uri": uri}, "position": position})
            )
        sent.append(server.send_request(method, None))  # no params at all
        sent.append(server.send_request(method, "file:///x"))
        sent.append(server.send_request(method, {"textDocument": 3, "position": {}}))
    sent.append(server.send_request("workspace/executeCommand", {"arguments": []}))
    for msg_id in sent:
        reply = server.response(msg_id, timeout=10)
        assert reply is not None, f"request {msg_id} got no answer"
        assert reply["error"]["code"] == -32602, reply
        assert reply["error"]["message"].startswith("invalid params for ")
    for position in ODD_POSITIONS:
        params = {"textDocument": {"uri": uri}, "position": position}
        assert server.request(HOVER, params, timeout=10) is not None
    # and the server goes on answering
    ok = server.request(HOVER, hover_params(uri, 0, 8))
    assert ok is not None and "旋转位置编码" in json.dumps(ok["result"], ensure_ascii=False)
    assert server.corrupt == []


def test_messages_that_are_not_json_rpc_get_an_error_not_silence(server):
    # before initialize: -32002, but an answer
    early = server.send_request(HOVER, hover_params("file:///x.md", 0, 0))
    assert server.response(early)["error"]["code"] == -32002
    server.initialize()
    server.send_raw(frame([{"jsonrpc": "2.0", "id": 900, "method": "shutdown"}]))  # a batch
    server.send_raw(frame(42))
    body = b"{not json"
    server.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    body = b'{"jsonrpc": "2.0", "id": 5, "method": "\xff"}'  # not UTF-8
    server.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    server.send({"jsonrpc": "2.0", "id": {"no": 1}, "method": HOVER, "params": {}})
    server.send({"jsonrpc": "1.0", "id": 901, "method": HOVER, "params": {}})
    server.send({"jsonrpc": "2.0", "id": 902, "method": 7})
    server.send({"jsonrpc": "2.0", "id": 903, "method": "llmref/noSuchMethod", "params": {}})
    # answered in order, each with "id": null (the id could not be read)
    assert server.wait_for(lambda m: len(null_id_errors(server)) >= 5, timeout=10) is not None
    assert [m["error"]["code"] for m in null_id_errors(server)] == [
        -32600,  # a batch
        -32600,  # a number
        -32700,  # not JSON
        -32700,  # not UTF-8
        -32600,  # an id that is an object
    ]
    assert server.response(901)["error"]["code"] == -32600
    assert server.response(902)["error"]["code"] == -32600
    assert server.response(903)["error"]["code"] == -32601
    assert server.request("shutdown") is not None
    # after shutdown, requests are refused with an answer
    assert server.request(HOVER, hover_params("file:///x.md", 0, 0))["error"]["code"] == -32600
    server.notify("exit")
    assert ended(server) == 0
    assert server.corrupt == []


# --- a broken stream ends the server: one line on stderr, exit status 1 ---------------------------

BROKEN = {
    "a bad Content-Length": b"Content-Length: abc\r\n\r\n{}",
    "no header at all": b'{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}\r\n\r\n',
    "a garbage header line": b"Hello, server\r\n\r\n{}",
    "headers without Content-Length": b"Content-Type: application/json\r\n\r\n{}",
    "a Content-Length shorter than the message": (
        b'Content-Length: 20\r\n\r\n{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}'
    ),
    "a Content-Length longer than the message": (
        b'Content-Length: 500\r\n\r\n{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}'
    ),
    "a Content-Length longer than the message, then another": (
        b'Content-Length: 500\r\n\r\n{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}'
        + frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    ),
    "a 100 TB body": b"Content-Length: 100000000000000\r\n\r\n{}",
    "a header line that never ends": b"Content-Length: 1" + b"1" * 20_000,
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_stream_ends_the_server_with_one_line(case, tmp_path):
    with RawServer(CACHE, stderr_path=tmp_path / "stderr.txt") as s:
        s.initialize()
        s.send_raw(BROKEN[case])  # stdin stays open: the server must notice by itself
        assert ended(s) == 1
        lines = stderr_lines(s)
        assert len(lines) == 1, lines
        assert "stream is broken" in lines[0]
        assert s.corrupt == []


def test_a_body_cut_short_by_eof_ends_the_server_with_one_line(server):
    server.initialize()
    server.send_raw(b'Content-Length: 100\r\n\r\n{"jsonrpc": "2.0"')
    server.close_stdin()
    assert ended(server) == 1
    lines = stderr_lines(server)
    assert len(lines) == 1 and "ended 17 bytes into a message of 100 bytes" in lines[0], lines


def test_a_huge_claimed_body_is_refused_without_allocating_it(server):
    server.send_raw(b"Content-Length: 100000000000000\r\n\r\n")
    assert ended(server) == 1
    (line,) = stderr_lines(server)
    assert "100,000,000,000,000 bytes" in line and "limit" in line


# --- tolerant framing --------------------------------------------------------------------------------


def test_header_names_in_any_case_lf_line_ends_and_content_type_are_accepted(server):
    server.initialize()
    uri = "file:///tmp/llmref-protocol/tolerant.md"
    server.open(uri, NOTE)
    requests = {
        10: b"content-length: %d\r\n\r\n",
        11: b"CONTENT-LENGTH:%d\r\n\r\n",
        12: b"Content-Length: %d\n\n",
        13: b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\n\r\n",
        14: b"\r\nContent-Length:   %d  \n\r\n",
    }
    for msg_id, header in requests.items():
        body = json.dumps(
            {"jsonrpc": "2.0", "id": msg_id, "method": HOVER, "params": hover_params(uri, 0, 8)}
        ).encode()
        server.send_raw(header % len(body) + body)
    for msg_id in requests:
        reply = server.response(msg_id, timeout=10)
        assert reply is not None and reply["result"]["range"]["start"]["character"] == 5, reply
    assert server.shutdown_and_exit() == 0


# --- exit ------------------------------------------------------------------------------------------------


def test_exit_without_shutdown_exits_1(server):
    server.initialize()
    server.notify("exit")
    assert ended(server) == 1


def test_exit_after_shutdown_exits_0(server):
    server.initialize()
    assert server.shutdown_and_exit() == 0
    assert stderr_lines(server) == []


# --- only open documents, only a window of the line -----------------------------------------------------


def test_unopened_uris_are_never_read(server, tmp_path):
    server.initialize()
    on_disk = tmp_path / "notes.md"
    on_disk.write_text(NOTE, encoding="utf-8")
    fifo = tmp_path / "fifo.md"
    uris = ["file:///dev/zero", on_disk.as_uri(), "file:///no/such/file.md"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        uris.append(fifo.as_uri())
    for uri in uris:
        for method in (HOVER, COMPLETION, DEFINITION):
            reply = server.request(method, hover_params(uri, 0, 8), timeout=10)
            assert reply is not None, f"{method} on {uri} got no answer"
            assert reply.get("result") is None and "error" not in reply, reply
    # once the editor opens the same file, it is answered from the editor's text
    server.open(on_disk.as_uri(), NOTE)
    reply = server.request(HOVER, hover_params(on_disk.as_uri(), 0, 8))
    assert reply["result"]["range"]["start"]["character"] == 5


def test_a_5_mb_single_line_is_answered(server):
    server.initialize()
    unit = "复习旋转位置编码 😋 和 KV cache，"
    line = (unit * (5_000_000 // len(unit) + 1))[:5_000_000]
    uri = "file:///tmp/llmref-protocol/long.md"
    server.open(uri, line + "\nLlamaRMSNorm\n")
    where = line.rindex("旋转位置编码")  # near the end of the line
    column = len(line[: where + 1].encode("utf-16-le")) // 2  # UTF-16 units, emoji count 2
    started = time.monotonic()
    reply = server.request(HOVER, hover_params(uri, 0, column), timeout=30)
    start = len(line[:where].encode("utf-16-le")) // 2
    assert reply["result"]["range"] == {
        "start": {"line": 0, "character": start},
        "end": {"line": 0, "character": start + 6},
    }
    typed = line.rindex("KV ca") + 5
    reply = server.request(
        COMPLETION, hover_params(uri, 0, len(line[:typed].encode("utf-16-le")) // 2), timeout=30
    )
    labels = [item["label"] for item in reply["result"]["items"]]
    assert "KV cache" in labels
    # the line after it is still found
    reply = server.request(HOVER, hover_params(uri, 1, 3), timeout=30)
    assert reply["result"]["range"]["start"] == {"line": 1, "character": 0}
    # (how fast is a benchmark's business; this only says it is not minutes)
    assert time.monotonic() - started < 60


# --- logging ---------------------------------------------------------------------------------------


def test_info_logs_go_to_the_editor_only(server):
    server.initialize()
    server.wait_loaded()
    logged = server.wait_for(
        lambda m: m.get("method") == "window/logMessage" and "index" in m["params"]["message"]
    )
    assert logged is not None and logged["params"]["type"] == 3  # Info
    assert server.shutdown_and_exit() == 0
    assert not [line for line in stderr_lines(server) if "INFO" in line]


# --- fuzz: random messages in valid frames --------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
FUZZ_URI = "file:///tmp/llmref-protocol/fuzz.md"
POSITION = st.fixed_dictionaries(
    {
        "textDocument": st.fixed_dictionaries(
            {"uri": st.sampled_from([FUZZ_URI, "file:///dev/zero"]) | st.text(max_size=10)}
        ),
        "position": st.fixed_dictionaries(
            {"line": st.integers(-(2**33), 2**33), "character": st.integers(-(2**33), 2**33)}
        )
        | JSON,
    }
)
COMMAND = st.fixed_dictionaries(
    {
        "command": st.sampled_from(["llmref.search", "llmref.show", "no.such.command"]),
        "arguments": st.lists(JSON, max_size=3),
    }
)
METHODS = st.sampled_from(
    [
        HOVER,
        COMPLETION,
        DEFINITION,
        "completionItem/resolve",
        "workspace/symbol",
        "workspace/executeCommand",
        "textDocument/didOpen",
        "textDocument/didChange",
        "textDocument/didClose",
        "$/cancelRequest",
        "$/setTrace",
        "llmref/unknown",
    ]
) | st.text(max_size=12).filter(
    lambda m: m not in ("shutdown", "exit", "initialize", "initialized")
)
ID_KINDS = st.sampled_from(["int", "str", "none", "missing", "float", "bool", "object"])
MESSAGE = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0"] * 8 + ["1.0", None]),
        "id": ID_KINDS,
        "method": METHODS,
        "params": POSITION | COMMAND | JSON,
    }
)


def _extra_data(body: bytes) -> bool:
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return exc.msg == "Extra data"
    except ValueError:
        return False
    return False


RAW_BODY = st.binary(max_size=40).filter(lambda b: not _extra_data(b))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    with RawServer(CACHE, stderr_path=tmp_path_factory.mktemp("fuzz") / "stderr.txt") as s:
        s.initialize()
        s.open(FUZZ_URI, NOTE * 3)
        yield s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(MESSAGE | RAW_BODY, min_size=1, max_size=8))
def test_fuzz_every_request_is_answered_and_the_server_lives(fuzz_server, messages):
    s = fuzz_server
    expected = []
    for message in messages:
        if isinstance(message, bytes):
            s.send_raw(b"Content-Length: %d\r\n\r\n" % len(message) + message)
            continue
        data = {k: v for k, v in message.items() if v is not None and k != "id"}
        kind = message["id"]
        if kind in ("int", "str"):
            msg_id = s.new_id()
            data["id"] = msg_id if kind == "int" else f"fuzz-{msg_id}"
            if data.get("jsonrpc") == "2.0" and isinstance(data.get("method"), str):
                expected.append(data["id"])
        elif kind != "missing":
            data["id"] = {"none": None, "float": 1.5, "bool": True, "object": {"a": 1}}[kind]
        s.send(data)
    control = s.request(HOVER, hover_params(FUZZ_URI, 0, 8), timeout=10)
    assert control is not None, "the server stopped answering"
    assert s.proc.poll() is None
    for msg_id in expected:
        assert s.response(msg_id, timeout=10) is not None, f"request {msg_id!r} got no answer"
        answers = [m for m in list(s.messages) if m.get("id") == msg_id and "method" not in m]
        assert len(answers) == 1, answers
    assert s.corrupt == []


# --- TCP ---------------------------------------------------------------------------------------------


def test_tcp_serves_one_client_with_the_same_transport(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmref", "serve", "--tcp", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=server_env(CACHE),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "no TCP listener"
                time.sleep(0.1)
        with conn, conn.makefile("rb") as incoming:

            def call(msg_id: int, method: str, params) -> dict:
                conn.sendall(
                    frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
                )
                while True:
                    header = incoming.readline()
                    assert header.startswith(b"Content-Length: "), header
                    assert incoming.readline() == b"\r\n"
                    message = json.loads(incoming.read(int(header.split(b":")[1])))
                    if message.get("id") == msg_id and "method" not in message:
                        return message

            assert (
                "capabilities"
                in call(1, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})[
                    "result"
                ]
            )
            uri = "file:///tmp/llmref-protocol/tcp.md"
            doc = {"uri": uri, "languageId": "markdown", "version": 1, "text": NOTE}
            conn.sendall(
                frame(
                    {
                        "jsonrpc": "2.0",
                        "method": "textDocument/didOpen",
                        "params": {"textDocument": doc},
                    }
                )
            )
            assert (
                call(2, HOVER, hover_params(uri, 0, 8))["result"]["range"]["start"]["character"]
                == 5
            )
            assert call(3, HOVER, hover_params(uri, -1, 0))["error"]["code"] == -32602
            call(4, "shutdown", None)
            conn.sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
            assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
