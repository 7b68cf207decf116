"""Inter-process locks on files (``flock``): a killed holder frees its lock at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FileLock:
    """A shared/exclusive lock on one file, held by this object until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, exclusive: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; False when ``timeout`` (seconds, 0 = try once) passes first."""
        if self._fd is not None:
            raise RuntimeError("lock already held")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                _lock(fd, exclusive, blocking=deadline is None)
                self._fd = fd
                return True
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.02)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd)
            finally:
                os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(fd: int, exclusive: bool, blocking: bool) -> None:
    if fcntl is not None:
        flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        fcntl.flock(fd, flags if blocking else flags | fcntl.LOCK_NB)
        return
    import msvcrt  # pragma: no cover - Windows: exclusive only

    try:
        msvcrt.locking(fd, msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        raise BlockingIOError(str(exc)) from exc


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    import msvcrt  # pragma: no cover

    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
