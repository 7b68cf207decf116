"""The LSP transport: one reader, one writer, and an answer to every request.

Reading (one thread). Frames are parsed strictly where it matters and tolerantly where
clients differ: header names in any case, CRLF or LF line ends, Content-Type ignored. A
body is read in chunks as it arrives, never allocated from what a header claims, and a
message over ``MAX_MESSAGE`` is refused. A stream that can no longer be trusted — a line
that is not a header, no or a bad Content-Length, a body cut short at EOF, a Content-Length
longer than the JSON it frames — ends the server with one line on stderr and exit status 1:
a client restarts a server that exits; it cannot repair one that silently stopped answering.

Dispatching (the event loop, as in pygls). Every request gets an answer: a body that is not
JSON is -32700, a message that is not JSON-RPC is -32600, invalid params are -32602 *with
the request's id* (pygls raises InvalidParams while decoding, where the id is lost), a
request before ``initialize`` is -32002 and one after ``shutdown`` is -32600. ``exit``
ends the process with 0 after ``shutdown`` and 1 without.

Writing (one thread). Every response and notification is serialized to JSON by the thread
that produces it (workers included), then queued; a single writer thread frames each body
with its byte length and writes it whole, partial writes and non-blocking pipes included.
Frames from worker threads can no longer interleave, and a slow client never blocks the
event loop. After ``exit`` or a lost client, the queue is drained for at most
``DRAIN_SECONDS`` and later frames are dropped silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import select
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import TYPE_CHECKING, Any

import cattrs
from lsprotocol import types
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
)
from pygls.protocol import _dict_to_object as dict_to_object

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger("llmref.lsp.transport")

MAX_MESSAGE = 256 * 1024 * 1024  # bytes; a bigger Content-Length is refused before reading
MAX_HEADER_LINE = 8 * 1024
MAX_HEADER_LINES = 32
CHUNK = 1 << 16  # bytes asked of one read (a pipe holds 64 KB)
IN_FLIGHT = 256  # messages read but not yet dispatched: the reader waits beyond this
DRAIN_SECONDS = 2.0  # at exit, queued frames get this long to reach the client
OVERLONG_CHECK = 1 << 20  # bodies up to this size are checked for a Content-Length too long

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
REQUEST_CANCELLED = -32800

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class StreamBroken(Exception):
    """The byte stream from the client cannot be trusted any more; the message says why."""


# --- reading -------------------------------------------------------------------------------------


class FrameReader:
    """LSP frames from a byte source: ``read_some(n)`` returns 1..n bytes, or b"" at EOF."""

    def __init__(self, read_some: Callable[[int], bytes], max_message: int = MAX_MESSAGE):
        self._read_some = read_some
        self._buf = bytearray()
        self._eof = False
        self.max_message = max_message

    def read_message(self) -> bytes | None:
        """The next message body; None at EOF between messages. Raises StreamBroken."""
        length: int | None = None
        headers = 0
        while True:
            raw = self._line()
            if raw is None:
                if headers == 0:
                    return None
                raise StreamBroken("the stream ended inside a message header")
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                if headers == 0:
                    continue  # blank lines between messages are harmless
                break
            headers += 1
            if headers > MAX_HEADER_LINES:
                raise StreamBroken(f"more than {MAX_HEADER_LINES} header lines")
            name, sep, value = line.partition(b":")
            name = name.strip()
            if not sep or not _TOKEN.fullmatch(name):
                raise StreamBroken(f"expected a header such as Content-Length, got {_show(line)}")
            if name.lower() == b"content-length":
                digits = value.strip()
                if not digits.isdigit() or len(digits) > 15:
                    raise StreamBroken(f"a bad Content-Length: {_show(value.strip())}")
                if length is not None and int(digits) != length:
                    raise StreamBroken("two different Content-Length headers")
                length = int(digits)
            # any other header (Content-Type) is accepted and ignored
        if length is None:
            raise StreamBroken("a message without a Content-Length header")
        if length > self.max_message:
            raise StreamBroken(f"a message of {length:,} bytes (the limit is {self.max_message:,})")
        return self._body(length)

    def _fill(self, n: int) -> bool:
        if self._eof:
            return False
        data = self._read_some(n)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _line(self) -> bytes | None:
        searched = 0
        while True:
            i = self._buf.find(b"\n", searched)
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            searched = len(self._buf)
            # a line that cannot become a header fails now, not when (if ever) it ends: after
            # a Content-Length that was too short, the rest of the JSON arrives here
            name = bytes(self._buf[:80]).partition(b":")[0].strip()
            if name and not _TOKEN.fullmatch(name):
                raise StreamBroken(f"expected a header such as Content-Length, got {_show(name)}")
            if searched > MAX_HEADER_LINE:
                raise StreamBroken(
                    f"expected a header line, got {searched:,} bytes without a line end: "
                    f"{_show(bytes(self._buf[:40]))}"
                )
            if not self._fill(CHUNK):
                if self._buf:
                    raise StreamBroken("the stream ended inside a message header")
                return None

    def _body(self, length: int) -> bytes:
        while len(self._buf) < length:
            self._check_not_overlong(length)
            have = len(self._buf)
            if not self._fill(min(CHUNK, length - have)):
                raise StreamBroken(
                    f"the stream ended {have:,} bytes into a message of {length:,} bytes"
                )
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    def _check_not_overlong(self, length: int) -> None:
        """A Content-Length longer than its message would leave the server waiting forever
        for bytes that never come (the client waits for the answer). When what arrived so far
        already is one whole JSON value, the rest can only be padding: the length is wrong."""
        buf = self._buf
        have = len(buf)
        if have >= length or have > OVERLONG_CHECK or not bytes(buf[-64:]).rstrip().endswith(b"}"):
            return
        try:
            text = buf.decode("utf-8")
            start = len(text) - len(text.lstrip())
            _value, end = json.JSONDecoder().raw_decode(text, start)
        except (ValueError, RecursionError):
            return  # not whole yet (or not JSON: that is reported when it is complete)
        raise StreamBroken(
            f"Content-Length says {length:,} bytes, but the JSON message ended after "
            f"{len(text[:end].encode('utf-8')):,}"
        )


def _show(data: bytes) -> str:
    text = repr(bytes(data[:60]))
    return text + ("…" if len(data) > 60 else "")


# --- writing -------------------------------------------------------------------------------------


class FrameWriter:
    """Writes message bodies as LSP frames, whole and in order, from one thread.

    ``write(body)`` may be called from any thread; it only queues. ``write_all(data)`` must
    write every byte or raise OSError.
    """

    def __init__(self, write_all: Callable[[bytes], None]) -> None:
        self._write_all = write_all
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._closed = False
        self.broken: str | None = None  # why writing failed (the client is gone)
        self.on_broken: Callable[[str], None] | None = None
        self._thread = threading.Thread(target=self._run, name="llmref-writer", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed or self.broken is not None

    def write(self, body: bytes) -> None:
        if not self._closed and self.broken is None:
            self._queue.put(body)

    def close(self) -> None:
        """No more frames: what is queued is still written (see ``drain``)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)

    def drain(self, timeout: float) -> bool:
        """Close, and wait up to ``timeout`` s for the queued frames; True when all were written."""
        self.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            if self.broken is not None:
                continue
            header = b"Content-Length: %d\r\n\r\n" % len(body)
            try:
                if len(body) < 65536:
                    self._write_all(header + body)
                else:  # no copy of a big body just to prepend a header
                    self._write_all(header)
                    self._write_all(body)
            except (OSError, ValueError) as exc:
                self.broken = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if self.on_broken is not None:
                    self.on_broken(self.broken)


def _read_fd(fd: int, n: int) -> bytes:
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:  # a non-blocking pipe (the client's choice): wait for data
            select.select([fd], [], [])


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # a non-blocking pipe that is full: wait, then go on
            select.select([], [fd], [])
            continue
        view = view[written:]


# --- the protocol --------------------------------------------------------------------------------


class _Futures(dict):
    """pygls' in-flight futures. ``items()`` is a snapshot: pygls' shutdown iterates it and
    cancels, and a cancelled or finished future removes itself (from any thread)."""

    def items(self):  # type: ignore[override]
        return list(super().items())


class LlmrefProtocol(LanguageServerProtocol):
    """pygls' LSP protocol with our dispatch (``receive``) and writer (``_send_data``)."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self._request_futures = _Futures()
        self._frames: FrameWriter | None = None

    def attach(self, frames: FrameWriter) -> None:
        self._frames = frames
        self.set_writer(frames, include_headers=False)

    # --- receiving ---

    @property
    def initialized(self) -> bool:
        return self._workspace is not None

    def receive(self, body: bytes) -> None:
        """One message body from the client. Raises StreamBroken, or SystemExit on ``exit``."""
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            self.reply_error(None, PARSE_ERROR, "the message is not valid UTF-8")
            return
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data":  # {…}{… : the frame holds more than one message
                raise StreamBroken(
                    "the Content-Length is longer than the JSON message it frames"
                ) from None
            self.reply_error(None, PARSE_ERROR, f"the message is not JSON ({exc})")
            return
        except (ValueError, RecursionError) as exc:
            self.reply_error(None, PARSE_ERROR, f"the message is not JSON ({exc})")
            return
        if not isinstance(data, dict):
            self.reply_error(None, INVALID_REQUEST, "a message must be a JSON object")
            return
        has_id = "id" in data
        msg_id = data.get("id")
        method = data.get("method")
        if has_id and not _valid_id(msg_id):
            if method is not None:
                self.reply_error(None, INVALID_REQUEST, "id must be an integer or a string")
            else:
                log.warning("ignored a response with an invalid id: %.80r", msg_id)
            return
        if data.get("jsonrpc") != "2.0" or (method is not None and not isinstance(method, str)):
            problem = 'not a JSON-RPC 2.0 message ("jsonrpc": "2.0" and a string "method")'
            if has_id and method is not None:
                self.reply_error(msg_id, INVALID_REQUEST, problem)
            else:
                log.warning("ignored %s: %.120s", problem, body)
            return
        if method is None:
            if has_id:
                self._receive_response(msg_id, data)
            else:
                log.warning("ignored a message with neither method nor id: %.120s", body)
        elif has_id:
            self._receive_request(msg_id, method, data)
        else:
            self._receive_notification(method, data)

    def _receive_request(self, msg_id: Any, method: str, data: dict) -> None:
        if method != types.INITIALIZE and not self.initialized:
            self.reply_error(msg_id, SERVER_NOT_INITIALIZED, "the server is not initialized yet")
            return
        if self._shutdown:
            self.reply_error(msg_id, INVALID_REQUEST, "the server is shutting down")
            return
        try:
            message = self._structure(method, data, JsonRPCRequestMessage)
        except Exception as exc:
            self.reply_error(msg_id, INVALID_PARAMS, f"invalid params for {method}: {_why(exc)}")
            return
        if not hasattr(message, "id"):  # e.g. didClose with an id: it would get no answer
            self.reply_error(msg_id, INVALID_REQUEST, f"{method} is a notification (it has no id)")
            return
        self.handle_message(message)  # pygls answers from here: results, errors, unknown methods

    def _receive_notification(self, method: str, data: dict) -> None:
        if method != types.EXIT and (not self.initialized or self._shutdown):
            return  # the spec: dropped before initialize and after shutdown
        known = method in self.fm.builtin_features or method in self.fm.features
        if method.startswith("$/") and method != types.CANCEL_REQUEST and not known:
            return  # the spec: "$/" notifications a server does not know are ignored, quietly
        if method == types.CANCEL_REQUEST:
            params = data.get("params")
            msg_id = params.get("id") if isinstance(params, dict) else None
            future = self._request_futures.get(msg_id) if _valid_id(msg_id) else None  # type: ignore[arg-type]
            if future is not None:
                future.cancel()  # a request not started yet gets RequestCancelled
            return
        try:
            message = self._structure(method, data, JsonRPCNotification)
        except Exception as exc:
            log.warning("ignored %s: invalid params (%s)", method, _why(exc))
            return
        self.handle_message(message)

    def _receive_response(self, msg_id: Any, data: dict) -> None:
        """The client's answer to one of our requests (configuration, progress, …)."""
        result_type = self._result_types.pop(msg_id, None)
        message: Any
        try:
            if "error" in data:
                message = self._converter.structure(data, types.ResponseErrorMessage)
            else:
                message = self._converter.structure(data, result_type or JsonRPCResponseMessage)
        except Exception as exc:
            future = self._request_futures.pop(msg_id, None)
            if future is not None and not future.done():
                future.set_exception(ValueError(f"the client's response is invalid: {_why(exc)}"))
            log.warning("the client's response to %r is invalid: %s", msg_id, _why(exc))
            return
        self.handle_message(message)

    def _structure(self, method: str, data: dict, generic: type) -> Any:
        message_type = self.get_message_type(method)
        if message_type is not None:
            return self._converter.structure(data, message_type)
        fields = {"method": method, "jsonrpc": "2.0", "params": dict_to_object(data.get("params"))}
        if generic is JsonRPCRequestMessage:
            fields["id"] = data["id"]
        return generic(**fields)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.cancel()

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):  # type: ignore[override]
        # pygls keeps the future of every async, threaded or generator handler in
        # _request_futures, and for notifications and the inner steps of its own generator
        # handlers (executeCommand, didOpen, didChange, …) never removes it: each one, with
        # its result, stayed alive (2-5 KB per request). Done is done: forget it.
        def done(future: Future, _callback=callback) -> None:
            if self._request_futures.get(msg_id) is future:
                self._request_futures.pop(msg_id, None)
            _callback(future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _send_handler_result(self, future: Future, *, msg_id: Any) -> None:  # type: ignore[override]
        if self._frames is None or self._frames.closed:  # the client is gone: nobody to tell
            self._request_futures.pop(msg_id, None)
            return
        if not future.cancelled() and isinstance(
            future.exception(), (CancelledError, asyncio.CancelledError)
        ):  # an inner step was cancelled (by shutdown): the request was, not a failure
            self._request_futures.pop(msg_id, None)
            self.reply_error(msg_id, REQUEST_CANCELLED, "the request was cancelled")
            return
        super()._send_handler_result(future, msg_id=msg_id)

    # --- sending ---

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )

    def _send_data(self, data: Any) -> None:
        """Serialize here (in the calling thread), write from the writer thread."""
        if not data or self._frames is None:
            return
        try:
            body = _encode(data, self._serialize_message)
        except Exception as exc:
            msg_id = getattr(data, "id", None)
            if _valid_id(msg_id) and hasattr(data, "result"):
                self.reply_error(msg_id, INTERNAL_ERROR, f"the result could not be encoded: {exc}")
            log.error("a message to the client could not be encoded: %s", exc)
            return
        self._frames.write(body)


def _encode(data: Any, default: Callable[[Any], Any]) -> bytes:
    try:
        text = json.dumps(
            data, default=default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from the client's own text): escape it
        return json.dumps(data, default=default, allow_nan=False, separators=(",", ":")).encode()


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))


def _why(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ClassValidationError):
        details = cattrs.transform_error(exc)
        return "; ".join(details[:3]) + (
            f" (and {len(details) - 3} more)" if len(details) > 3 else ""
        )
    return f"{type(exc).__name__}: {exc}"[:300]


# --- the connection ------------------------------------------------------------------------------


class Connection:
    """Runs a server over one reader and one writer until EOF, ``exit`` or a broken stream."""

    def __init__(self, server: LanguageServer, reader: FrameReader, writer: FrameWriter) -> None:
        protocol = server.protocol
        if not isinstance(protocol, LlmrefProtocol):
            raise TypeError("the server must be built with protocol_cls=LlmrefProtocol")
        self.server = server
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self._slots = threading.BoundedSemaphore(IN_FLIGHT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[int] | None = None
        protocol.attach(writer)
        writer.on_broken = lambda why: self._stop(1, f"lost the client ({why}); exiting")

    def run(self) -> int:
        """Serve until the end; returns the exit status."""
        try:
            return asyncio.run(self._main())
        finally:
            self.writer.drain(DRAIN_SECONDS)
            pool = getattr(self.server, "_thread_pool", None)
            if pool is not None:  # running handlers finish; queued ones are dropped
                pool.shutdown(wait=False, cancel_futures=True)

    async def _main(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        threading.Thread(target=self._read, name="llmref-reader", daemon=True).start()
        return await self._done

    def _read(self) -> None:
        try:
            while True:
                self._slots.acquire()
                body = self.reader.read_message()
                if body is None:
                    self._stop(0, None)
                    return
                if not self._call_soon(self._dispatch, body):
                    return
        except StreamBroken as exc:
            self._stop(1, f"the client's message stream is broken: {exc}; exiting")
        except OSError as exc:
            self._stop(1, f"reading from the client failed ({exc}); exiting")

    def _dispatch(self, body: bytes) -> None:
        self._slots.release()
        if self._done is None or self._done.done():
            return
        try:
            self.protocol.receive(body)
        except SystemExit as exc:  # pygls' exit handler
            self._finish(exc.code if isinstance(exc.code, int) else 1, None)
        except StreamBroken as exc:
            self._finish(1, f"the client's message stream is broken: {exc}; exiting")
        except Exception:  # pragma: no cover - receive() answers every error itself
            log.exception("handling a message failed")

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # the loop closed meanwhile
            return False

    def _stop(self, code: int, why: str | None) -> None:
        self._call_soon(self._finish, code, why)

    def _finish(self, code: int, why: str | None) -> None:
        if self._done is None or self._done.done():
            return
        if why:
            log.error("%s", why)
        self._done.set_result(code)


# --- entry points --------------------------------------------------------------------------------


def serve_stdio(server: LanguageServer) -> int:
    """Serve LSP on stdin/stdout; returns the exit status."""
    in_fd, out_fd = _take_stdio()
    reader = FrameReader(partial(_read_fd, in_fd))
    writer = FrameWriter(partial(_write_fd, out_fd))
    return Connection(server, reader, writer).run()


def serve_tcp(server: LanguageServer, host: str, port: int) -> int:
    """Serve LSP to the first client that connects to host:port; returns the exit status."""
    with socket.create_server((host, port)) as listener:
        log.info("listening on %s:%d", host, listener.getsockname()[1])
        conn, _addr = listener.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = FrameReader(conn.recv)
        writer = FrameWriter(conn.sendall)
        return Connection(server, reader, writer).run()


def _take_stdio() -> tuple[int, int]:
    """Private copies of stdin and stdout for the LSP channel. Then fd 0 reads /dev/null and
    fd 1 writes to stderr, so a stray ``print`` (ours, a library's, a child's) can neither
    corrupt a frame nor steal the client's bytes."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        in_fd, out_fd = os.dup(0), os.dup(1)
    except OSError:
        return 0, 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)
    except OSError:
        pass
    return in_fd, out_fd
