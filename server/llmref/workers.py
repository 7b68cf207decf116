"""Worker processes for big builds, and making child processes die with their parent.

``parallel_index`` starts fresh interpreters (``python -m llmref.workers``: fork+exec, never a
bare fork of this possibly threaded process). Each parses, tags and indexes its share of the
notes into its own Whoosh segment in the index folder, and streams the parsed files back so
the parent fills the entry store; the parent then adds the segments to the index.

No worker outlives its parent: on Linux it asks the kernel to kill it when the parent goes
(``PR_SET_PDEATHSIG``), and everywhere it exits when its stdin (a pipe from the parent)
reaches end-of-file before the job is done.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .corpus.loader import NoteFile

FRAME = struct.Struct(">Q")  # a child's stdout: length-prefixed pickles (kind, payload)


class BuildFailed(RuntimeError):
    """A build in a child process failed (its last lines of stderr say why)."""


ENV_PARENT = "LLMREF_PARENT_PID"


def die_with_parent(parent: int | None = None) -> None:
    """Make this process end when its parent does (call first thing in a child)."""
    if parent is None:
        raw = os.environ.get(ENV_PARENT, "")
        parent = int(raw) if raw.isdigit() else None
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:  # pragma: no cover - no libc: the stdin watch remains
            pass
    if parent is not None and os.getppid() != parent:  # it died before we got here
        os._exit(1)


def watch_stdin(done: threading.Event) -> None:
    """Exit at once if stdin closes before ``done`` is set (the parent went away)."""

    def wait() -> None:
        try:  # the raw descriptor: a buffered read would hold a lock at interpreter exit
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        if not done.is_set():
            os._exit(1)

    threading.Thread(target=wait, name="llmref-parent-watch", daemon=True).start()


def child_env() -> dict[str, str]:
    """The environment of a child: finds this very llmref, knows its parent."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env[ENV_PARENT] = str(os.getpid())
    return env


def balance(notes: Sequence[NoteFile], n: int) -> list[list[int]]:
    """Split notes into at most ``n`` shards of about equal bytes: the notes' indexes per
    shard, biggest first."""
    shards: list[list[int]] = [[] for _ in range(n)]
    loads = [0] * n
    for index in sorted(range(len(notes)), key=lambda x: -notes[x].size):
        i = loads.index(min(loads))
        shards[i].append(index)
        loads[i] += notes[index].size + 2000  # a file costs something however small
    return [s for s in shards if s]


def start_child(module: str, job: dict) -> subprocess.Popen:
    """``python -m module`` as a fresh process (fork + exec, never a bare fork), given its
    job as one JSON line on stdin; it answers in frames on stdout (``send_frame``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        close_fds=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(job).encode() + b"\n")
    proc.stdin.flush()
    return proc


def child_frames(
    procs: Sequence[subprocess.Popen], stop: threading.Event | None = None
) -> Iterator[tuple[str, object]]:
    """Every (kind, payload) frame our children write, as they come, until all their
    stdouts close (or ``stop`` is set). The pickles are our own children's."""
    sel = selectors.DefaultSelector()
    try:
        for proc in procs:
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            sel.register(proc.stdout, selectors.EVENT_READ, bytearray())
        open_streams = len(procs)
        while open_streams and not (stop is not None and stop.is_set()):
            for key, _ in sel.select(timeout=None if stop is None else 0.5):
                buf = key.data
                chunk = key.fileobj.read(1 << 20)  # type: ignore[union-attr]
                if chunk is None:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buf.extend(chunk)
                while len(buf) >= FRAME.size:
                    (length,) = FRAME.unpack_from(buf)
                    if len(buf) < FRAME.size + length:
                        break
                    kind, payload = pickle.loads(bytes(buf[FRAME.size : FRAME.size + length]))
                    del buf[: FRAME.size + length]
                    yield kind, payload
    finally:
        sel.close()


def stop_children(procs: Sequence[subprocess.Popen]) -> None:
    """Close the children's stdin (they exit), kill any still running, reap them."""
    for proc in procs:
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def close_outputs(procs: Sequence[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.stdout is not None:
            proc.stdout.close()


def parallel_index(
    index_dir: Path,
    config,
    notes: Sequence[NoteFile],
    slugs: dict[str, str],
    workers: int,
    on_result: Callable,
    on_all_files: Callable[[], None],
) -> list:
    """Index ``notes`` in ``workers`` processes; ``on_result(Prepared)`` is called here for
    each parsed file, ``on_all_files()`` once every file's result is in (while the workers
    still write their segments). Returns the Whoosh segments the workers wrote."""
    procs: list[subprocess.Popen] = []
    segments: list = []
    try:
        for shard in balance(notes, workers):
            job = {
                "index": str(index_dir),
                "glossary": [str(p) for p in config.glossary_paths],
                "glossary_cache": str(index_dir.parent.parent.parent / "glossary"),
                "glossary_digests": config.glossary_digests,
                "notes": [
                    [str(n.path), n.display, n.sort, n.size, n.mtime_ns, slugs.get(n.display)]
                    for n in (notes[i] for i in shard)
                ],
            }
            procs.append(start_child("llmref.workers", job))
        files = 0
        for kind, payload in child_frames(procs):
            if kind == "file":
                on_result(payload)
                files += 1
                if files == len(notes):
                    on_all_files()
            elif kind == "segment":
                segments.append(payload)
            elif kind == "error":
                raise RuntimeError(f"an indexing worker failed: {payload}")
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"an indexing worker exited with code {proc.returncode}")
        if len(segments) != len(procs) or files != len(notes):
            raise RuntimeError("an indexing worker ended without its segment or files")
        return segments
    finally:
        stop_children(procs)
        close_outputs(procs)


# --- a whole build in a child process (the language server's way) -----------------------------


def build_in_child(
    settings,
    root: Path,
    *,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
    started: Callable[[subprocess.Popen], None] | None = None,
) -> None:
    """Build (or update) the index of ``settings`` under the cache folder ``root`` in a fresh
    ``python -m llmref.workers --build`` process, relaying its progress; raises RuntimeError
    when it fails. The child
    keeps the memory of a big build out of this (long-lived) process, and dies with it."""
    payload = {
        "corpora": [str(p) for p in settings.corpora],
        "bundled": settings.bundled,
        "cache": str(root),
        "exclude": list(settings.exclude),
        "max_file_bytes": settings.max_file_bytes,
        "rebuild": rebuild,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmref.workers", "--build"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        close_fds=True,
    )
    if started is not None:
        started(proc)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    drain = threading.Thread(
        target=lambda: errors.extend(proc.stderr.read().decode("utf-8", "replace").splitlines()),  # type: ignore[union-attr]
        name="llmref-build-stderr",
        daemon=True,
    )
    drain.start()
    try:
        proc.stdin.write(json.dumps(payload).encode() + b"\n")
        proc.stdin.flush()
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if progress is not None and "done" in message:
                progress(int(message["done"]), int(message["total"]))
        code = proc.wait()
        drain.join(timeout=5)
    finally:
        stop_children([proc])
    if code != 0:
        tail = "; ".join(line for line in errors[-3:] if line.strip()) or f"exit code {code}"
        raise BuildFailed(f"the indexing process failed: {tail}")


def _build() -> int:
    payload, done, out = child_start()
    import logging

    logging.basicConfig(level=logging.WARNING, format="llmref build: %(message)s")
    from .config import Settings
    from .lookup import Reference

    settings = Settings(
        corpora=[Path(p) for p in payload["corpora"]],
        bundled=payload["bundled"],
        cache=Path(payload["cache"]),
        exclude=list(payload["exclude"]),
        max_file_bytes=int(payload["max_file_bytes"]),
    )
    last = [0.0]

    def progress(n: int, total: int) -> None:
        import time

        now = time.monotonic()
        if now - last[0] >= 0.1 or n >= total:
            last[0] = now
            out.write(json.dumps({"done": n, "total": total}).encode() + b"\n")
            out.flush()

    try:
        ref = Reference.open(
            settings, rebuild=payload["rebuild"], progress=progress, strict_cache=True
        )
        ref.close()
    finally:
        done.set()
    return 0


def read_job() -> dict:
    """The job: one JSON line on stdin, read unbuffered (the rest of stdin is the parent
    watch)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            break
        data.extend(chunk)
    return json.loads(bytes(data))


def child_start() -> tuple[dict, threading.Event, Any]:
    """A child's first steps: die with the parent, read the job, exit if stdin closes before
    ``done`` is set, and keep stdout for the parent (print goes to stderr). Returns the job,
    ``done`` and the binary stdout."""
    die_with_parent()
    job = read_job()
    done = threading.Event()
    watch_stdin(done)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the parent's stream
    return job, done, out


def send_frame(out, kind: str, payload) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    out.write(FRAME.pack(len(data)) + data)
    out.flush()


def serve_frames(work: Callable[[dict, Callable[[str, object], None]], None]) -> int:
    """A worker's life: ``child_start``, then ``work(job, send)`` with ``send(kind, payload)``
    writing frames to the parent; a failure becomes an "error" frame (and exit code 1)."""
    job, done, out = child_start()
    try:
        work(job, lambda kind, payload: send_frame(out, kind, payload))
    except BaseException as exc:  # the parent reports it
        send_frame(out, "error", f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        done.set()
    return 0


def job_glossary(job: dict, what: str, cache_dir: Path | None = None):
    """The glossary a job names, checked against the digests the parent saw."""
    from .glossary import Glossary

    glossary = Glossary.load([Path(p) for p in job["glossary"]], cache_dir=cache_dir)
    if [list(d) for d in glossary.digests] != [list(d) for d in job["glossary_digests"]]:
        raise RuntimeError(f"the glossary changed during the {what}")
    return glossary


def _index_shard(job: dict, send: Callable[[str, object], None]) -> None:
    from whoosh.filedb.filestore import FileStorage
    from whoosh.writing import SegmentWriter

    from .build import prepare, process
    from .index import document
    from .ranking import names_text

    cache_dir = Path(job["glossary_cache"])
    glossary = job_glossary(job, "build", cache_dir if cache_dir.is_dir() else None)
    ix = FileStorage(job["index"], supports_mmap=False).open_index()
    writer = SegmentWriter(ix, _lk=False, limitmb=192)
    for path, display, sort, size, mtime_ns, slug in job["notes"]:
        fr = process(NoteFile(Path(path), display, sort, size, mtime_ns), glossary, slug)
        for entry in fr.entries:
            writer.add_document(**document(entry, names_text(entry, glossary)))
        send("file", prepare(fr, glossary))
    send("segment", writer._finalize_segment())


if __name__ == "__main__":
    sys.exit(_build() if sys.argv[1:] == ["--build"] else serve_frames(_index_shard))
