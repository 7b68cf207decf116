"""Local read-only copies of team entries, so that their locations open in any editor.

A team entry's ``path`` is where the publisher read it (a CI runner's checkout, a colleague's
home folder): on a reader's machine that file does not exist, and a symbol search result, a
card's citation or go-to-definition pointing there opens an empty buffer or an error. Before a
team entry reaches a reader, ``Copies.place`` points it at a copy of its Q&A in the private
cache folder instead:

    <cache>/team/team-<key>-copies/<source folders>/<source name>/L<line>/<source name>

The copy holds the entry at its own line (a one-line header, blank lines up to the question,
then the question, its details and its answer), so ``team:wiki/serving.md:12`` and every
``#L12`` link stay true, and it is named like the original, so the editor shows
``serving.md`` with markdown highlighting. The source path comes from the database (another
person's data): it is reduced to plain names (no ``..``, no absolute paths, no control
characters) and can only name a place inside the copies folder.

Copies are written atomically, read-only (0444), and only when their text changed (about
0.4 ms each): the ones an editor may open at once (the entry a card cites, which is where
go-to-definition jumps; a search's first few team hits) before the answer goes out, the rest
by one background thread (a lower search result is picked later, if at all); ``flush`` waits
for that queue (a CLI about to exit). A server starting removes the copies not written for
30 days (``prune``), in the background.

Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path

from ..corpus.entry import Entry
from .docs import PREFIX

log = logging.getLogger("llmref.team")

KEEP_DAYS = 30.0  # copies not written for this long are removed (TeamIndex start)
MAX_PAD_LINES = 1_000_000  # an entry further down than this is copied without its offset
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_MAX_PART = 80
_MAX_DEPTH = 8


def _parts(source: str) -> list[str]:
    """A team source path as plain folder and file names (nothing that climbs out)."""
    parts = []
    for part in re.split(r"[/\\]+", source.removeprefix(PREFIX)):
        part = _UNSAFE.sub("_", part).strip().rstrip(".")
        if not part or part in (".", ".."):
            continue
        parts.append(part[:_MAX_PART])
    return parts[-_MAX_DEPTH:] or ["note.md"]


def copy_text(entry: Entry) -> str:
    """The copy's text: the entry at its own line (see the module docstring)."""
    source = entry.source if entry.source.startswith(PREFIX) else PREFIX + entry.source
    header = (
        f"<!-- {source}:{entry.line} · a read-only copy from the team database; "
        "edit the team's notes, not this file -->"
    )
    question = " ".join(entry.question.split())
    body = [f"## {question}" if question else "##"]
    if entry.detail:
        body += ["", entry.detail.strip("\n")]
    if entry.answer:
        body += ["", entry.answer.strip("\n")]
    line = max(int(entry.line or 1), 1)
    if line > MAX_PAD_LINES:
        line = 2
    if line == 1:
        lines = body
    else:
        lines = [header, *[""] * (line - 2), *body]
    return "\n".join(lines) + "\n"


class Copies:
    """The copies folder of one team database (None: entries keep their own paths)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._done: dict[str, str] = {}  # path -> digest of the text on disk
        self._queued: dict[str, str] = {}  # path -> digest of the text on its way
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def path_for(self, entry: Entry) -> Path | None:
        if self.root is None:
            return None
        parts = _parts(entry.source)
        name = parts[-1]
        line = f"L{max(int(entry.line or 1), 1)}"
        if "/".join(parts) != entry.source.removeprefix(PREFIX):  # names that had to change
            # could meet another source's (a:b.md and a_b.md): keep them apart
            line += "-" + hashlib.sha1(entry.source.encode("utf-8", "replace")).hexdigest()[:8]
        return self.root.joinpath(*parts, line, name)

    def place(self, entry: Entry, *, now: bool = False) -> Entry:
        """Point a team entry at its local copy. The copy is written in the background, or
        before this returns with ``now`` (a location the editor may open at once)."""
        if not entry.id.startswith(PREFIX):
            return entry
        path = self.path_for(entry)
        if path is None:
            return entry
        key = str(path)
        with self._lock:  # placed before (a card's entry, hovered again): nothing to redo
            if entry.path == key and key in self._done:
                return entry
        text = copy_text(entry)
        digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()
        entry.path = key
        with self._lock:
            if self._done.get(key) == digest:
                return entry
            if not now:
                if self._queued.get(key) == digest:
                    return entry
                self._queued[key] = digest
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="llmref-team-copies", daemon=True
                    )
                    self._thread.start()
        if now:
            self._store(path, text, digest)
        else:
            self._queue.put((path, text, digest))
        return entry

    def prune(self, max_age_days: float = KEEP_DAYS) -> int:
        """Remove copies not written for ``max_age_days`` (and folders left empty): the
        folder does not grow forever; a copy still in use is written again when placed."""
        if self.root is None or not self.root.is_dir():
            return 0
        cutoff = time.time() - max_age_days * 86400
        removed = 0
        for folder, _dirs, files in os.walk(self.root, topdown=False):
            for name in files:
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
            if folder != str(self.root):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only when empty
        with self._lock:
            self._done = {k: v for k, v in self._done.items() if os.path.exists(k)}
        return removed

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (at most ``timeout``) for the copies placed so far to be on disk."""
        with self._idle:
            self._idle.wait_for(lambda: not self._queued, timeout)

    def _run(self) -> None:
        while True:
            path, text, digest = self._queue.get()
            try:
                self._store(path, text, digest)
            finally:
                with self._idle:
                    if self._queued.get(str(path)) == digest:
                        del self._queued[str(path)]
                    self._idle.notify_all()

    def _store(self, path: Path, text: str, digest: str) -> None:
        try:
            self._write(path, text)
        except OSError as exc:
            log.warning("could not write the local copy of a team entry (%s)", exc)
            return
        with self._lock:
            self._done[str(path)] = digest

    def _write(self, path: Path, text: str) -> None:
        assert self.root is not None
        data = text.encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return
        folder = self.root
        for part in ("", *path.relative_to(self.root).parts[:-1]):
            folder = folder / part if part else folder
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            if folder.is_symlink() or not folder.is_dir():
                raise OSError(f"{folder} is not a folder")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
