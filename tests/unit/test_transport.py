"""The transport's reader and writer, in-process: frames survive any chunking, header
variants clients use are read, a broken stream is named, and concurrent writers never
interleave, partial writes on a non-blocking pipe included."""

from __future__ import annotations

import json
import os
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmref.lsp.transport import FrameReader, FrameWriter, StreamBroken, _read_fd, _write_fd

HEADERS = st.sampled_from(
    [
        b"Content-Length: %d\r\n\r\n",
        b"content-length: %d\r\n\r\n",
        b"CONTENT-LENGTH:%d\n\n",
        b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
        b"Content-Type: application/json\nContent-Length:  %d \n\n",
    ]
)
BODIES = st.builds(
    lambda text, n: json.dumps({"jsonrpc": "2.0", "id": n, "method": "x", "params": text}).encode(),
    st.text(max_size=200),
    st.integers(0, 10**6),
)


def chunked_reader(data: bytes, sizes: list[int]):
    """read_some over ``data``, handing out pieces of the given sizes (then the rest)."""
    pos = 0
    it = iter(sizes)

    def read_some(n: int) -> bytes:
        nonlocal pos
        size = min(n, next(it, n))
        piece = data[pos : pos + max(size, 1)]
        pos += len(piece)
        return piece

    return read_some


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.tuples(HEADERS, BODIES), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 70), max_size=60),
)
def test_frames_survive_any_chunking_and_header_variants(messages, sizes):
    stream = b"".join(header % len(body) + body for header, body in messages)
    reader = FrameReader(chunked_reader(stream, sizes))
    for _header, body in messages:
        assert reader.read_message() == body
    assert reader.read_message() is None


@pytest.mark.parametrize(
    "data, why",
    [
        (b"Content-Length: x1\r\n\r\n{}", "a bad Content-Length"),
        (b"Content-Length: -1\r\n\r\n{}", "a bad Content-Length"),
        (b"Content-Type: a/b\r\n\r\n{}", "without a Content-Length"),
        (b'{"jsonrpc": "2.0"}\r\n\r\n', "expected a header"),
        (b'"id": 1, "method": "exit"}', "expected a header"),  # waits for no line end
        (b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}", "two different"),
        (b'Content-Length: 10\r\n\r\n{"a"', "ended 4 bytes into a message of 10 bytes"),
        (b'Content-Length: 99\r\n\r\n{"a": 1}', "the JSON message ended after 8"),
        (b"Content-Length: 1000000000000\r\n\r\n", "the limit is"),
        (b"Content-Length: 1", "ended inside a message header"),
        (b"X" * 9000, "without a line end"),
        (b"X-Header: 1\r\n" * 40, "more than 32 header lines"),
    ],
)
def test_a_broken_stream_is_named(data, why):
    reader = FrameReader(chunked_reader(data, []))
    with pytest.raises(StreamBroken, match=why):
        while reader.read_message() is not None:
            pass


def test_a_huge_claim_is_refused_before_reading():
    asked = []

    def read_some(n: int) -> bytes:
        asked.append(n)
        return b"Content-Length: 300000000\r\n\r\n" if len(asked) == 1 else b"x"

    with pytest.raises(StreamBroken, match="300,000,000 bytes"):
        FrameReader(read_some).read_message()
    assert len(asked) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="O_NONBLOCK pipes")
def test_concurrent_writers_on_a_nonblocking_pipe_never_interleave():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # a full pipe makes writes partial / EAGAIN
    writer = FrameWriter(lambda data: _write_fd(write_end, data))
    bodies = {}

    def produce(k: int) -> None:
        for n in range(20):
            body = json.dumps({"id": f"{k}-{n}", "pad": "旋转" * (k * 5000 + n * 97)}).encode()
            bodies[f"{k}-{n}"] = body
            writer.write(body)

    got = {}

    def consume() -> None:
        reader = FrameReader(lambda n: _read_fd(read_end, n))
        while (body := reader.read_message()) is not None:
            got[json.loads(body)["id"]] = body

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.drain(60)
    os.close(write_end)
    consumer.join(60)
    os.close(read_end)
    assert got == bodies
