"""The cache folder: private to the user, verified before use, keyed per install.

An index is data we load (Whoosh unpickles parts of it), so a cache folder someone else can
write to is a way to run code as the user. Every folder on the way to an index is checked:

* the folders llmref creates are created one level at a time with mode 0700;
* the cache root and everything under it must be owned by the user and not writable by
  group or others (a shared ``LLMREF_CACHE_DIR`` of mode 1777 is refused);
* its ancestors must be owned by the user or root, and where writable by others, sticky
  (``/tmp`` passes, a world-writable non-sticky parent does not);
* a random per-install key (``install.key``, 0600) names the index folders, so their names
  cannot be guessed and planted ahead of time, and signs each index's manifest.

A refused folder is never used: the caller falls back to the default cache, then to a fresh
private temporary folder, and says so once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from pathlib import Path

KEY_FILE = "install.key"
_POSIX = os.name == "posix" and hasattr(os, "getuid")


class UnsafeCache(Exception):
    """A cache folder that someone else could write to (or that is not a folder)."""


def _check_owned_private(path: Path, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeCache(f"{path} is a symbolic link")
    if not _POSIX:
        return
    if st.st_uid != os.getuid():
        raise UnsafeCache(f"{path} is owned by another user (uid {st.st_uid})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCache(f"{path} is writable by group or others (mode {st.st_mode & 0o7777:o})")


def _check_ancestor(path: Path) -> None:
    if not _POSIX:
        return
    st = os.stat(path)
    if st.st_uid not in (0, os.getuid()):
        raise UnsafeCache(f"{path} (a parent of the cache) is owned by another user")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise UnsafeCache(f"{path} (a parent of the cache) is writable by others and not sticky")


def private_dir(path: Path, *, create: bool = True) -> Path:
    """``path`` as a verified private folder (created 0700, level by level, if missing).

    Raises UnsafeCache when it (or an ancestor) could be written by someone else."""
    path = Path(os.path.abspath(os.path.expanduser(path)))
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for ancestor in reversed(path.parents if not missing else missing[-1].parents):
        _check_ancestor(ancestor)
    if missing and not create:
        raise FileNotFoundError(path)
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(p, 0o700)
        if p != path:
            _check_owned_private(p, os.lstat(p))
    st = os.lstat(path)
    _check_owned_private(path, st)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCache(f"{path} is not a folder")
    return path


def check_tree(path: Path) -> None:
    """Verify a folder we are about to open and everything in it (one level of files and
    the folders below): owned by us, not writable by others, no symbolic links."""
    st = os.lstat(path)
    _check_owned_private(path, st)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            child = Path(root) / name
            _check_owned_private(child, os.lstat(child))


def install_key(root: Path) -> bytes:
    """The per-install secret (created on first use, 0600, owner-only)."""
    path = root / KEY_FILE
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        _check_owned_private(path, st)
        if _POSIX and st.st_mode & 0o077:
            raise UnsafeCache(f"{path} is readable by others (mode {st.st_mode & 0o777:o})")
        key = f.read()
    if len(key) < 16:  # a half-written key from a crash: start over
        os.unlink(path)
        return install_key(root)
    return key


def sign(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def verify(key: bytes, data: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, data), signature)


def fallback_dir() -> Path:
    """A fresh private folder for this process only (the index is rebuilt each time)."""
    return Path(tempfile.mkdtemp(prefix="llmref-private-"))


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, UnsafeCache) else f"{type(exc).__name__}: {exc}"


__all__ = [
    "UnsafeCache",
    "check_tree",
    "describe",
    "fallback_dir",
    "install_key",
    "private_dir",
    "sign",
    "verify",
]
