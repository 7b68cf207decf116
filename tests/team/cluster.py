"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb + pg_ctl in a temporary
folder, on a free loopback port, run as the ``postgres`` user when we are root.

No postgres process outlives whoever started it: ``stop()`` (and ``atexit``) stop the
cluster, and a small watchdog process (our child, reading a pipe from us) stops it when we
die without cleaning up (its stdin reaches end-of-file).

    python tests/team/cluster.py        # start one, print its URL, stop it on Enter
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUPERUSER = "postgres"
PASSWORD = "throwaway-secret-4c1d"  # a test password: the tests check it never leaks


def bindir() -> Path | None:
    """Where initdb and pg_ctl are: $LLMREF_PG_BIN, Debian's /usr/lib/postgresql/N/bin
    (newest), pg_config --bindir, or PATH."""
    env = os.environ.get("LLMREF_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").exists() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            if (Path(out) / "initdb").exists():
                return Path(out)
        except (OSError, subprocess.CalledProcessError):
            pass
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the postgres user (initdb refuses root)."""
    if os.name != "posix" or os.getuid() != 0:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--"]
    return ["su", "postgres", "-s", "/bin/sh", "-c"]  # (callers quote for su)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    prefix = _as_postgres()
    if prefix[:1] == ["su"]:
        import shlex

        cmd = [*prefix, " ".join(shlex.quote(c) for c in cmd)]
    else:
        cmd = [*prefix, *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


_WATCHDOG = r"""
import os, subprocess, sys, shutil
pg_ctl, base = sys.argv[1], sys.argv[2]
prefix = sys.argv[3:]
try:
    while os.read(0, 4096):
        pass
except OSError:
    pass
for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
    data = os.path.join(base, name)
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
shutil.rmtree(base, ignore_errors=True)
"""


class Node:
    """One running postgres (a primary or a standby) in ``base/name``."""

    def __init__(self, cluster: Cluster, name: str, port: int) -> None:
        self.cluster = cluster
        self.name = name
        self.port = port
        self.data = cluster.base / name

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.cluster.base} "
            "-c max_connections=60 -c log_min_messages=warning "
            + " ".join(f"-c {k}={v}" for k, v in self.cluster.settings.items())
        )
        res = _run(
            [str(self.cluster.bin / "pg_ctl"), "-D", str(self.data), "-l",
             str(self.cluster.base / f"{self.name}.log"), "-o", opts, "-w", "-t", "60", "start"]
        )  # fmt: skip
        if res.returncode != 0:
            log = self.cluster.base / f"{self.name}.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stderr.strip()}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            _run([str(self.cluster.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                  "-t", "60", "stop"])  # fmt: skip

    def running(self) -> bool:
        res = _run([str(self.cluster.bin / "pg_ctl"), "-D", str(self.data), "status"])
        return res.returncode == 0

    def url(self, user: str = SUPERUSER, password: str = PASSWORD, db: str = "postgres") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"


class Cluster:
    """A primary (and optionally standbys) in one temporary folder."""

    def __init__(self, bin: Path, settings: dict[str, str] | None = None) -> None:
        self.bin = bin
        self.settings = settings or {}
        self.base = Path(tempfile.mkdtemp(prefix="llmref-pg-"))
        if _as_postgres():
            shutil.chown(self.base, "postgres", "postgres")
        self.nodes: list[Node] = []
        pg_ctl = str(bin / "pg_ctl")
        prefix = _as_postgres()
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, pg_ctl, str(self.base),
             *([] if prefix[:1] == ["su"] else prefix)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True,
        )  # fmt: skip
        atexit.register(self.stop)
        self.primary = self._init()

    def _init(self) -> Node:
        node = Node(self, "primary", free_port())
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if _as_postgres():
            shutil.chown(pwfile, "postgres", "postgres")
        res = _run(
            [str(self.bin / "initdb"), "-D", str(node.data), "-U", SUPERUSER, "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
             f"--pwfile={pwfile}", "--no-sync"]
        )  # fmt: skip
        pwfile.unlink()
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr.strip()[-2000:]}")
        node.start()
        self.nodes.append(node)
        return node

    def add_standby(self, name: str = "standby") -> Node:
        """A streaming replica of the primary (pg_basebackup -R), started."""
        node = Node(self, name, free_port())
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        prefix = _as_postgres()
        cmd = [str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p",
               str(self.primary.port), "-U", SUPERUSER, "-D", str(node.data), "-R",
               "-X", "stream", "--checkpoint=fast", "--no-sync"]  # fmt: skip
        if prefix[:1] == ["runuser"]:
            cmd = ["runuser", "-u", "postgres", "--", "env", f"PGPASSWORD={PASSWORD}", *cmd]
            res = subprocess.run(cmd, capture_output=True, text=True)
        else:
            res = _run(cmd, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {res.stderr.strip()[-2000:]}")
        node.start()
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                node.stop("immediate")
        self.nodes = []
        if self._watchdog.poll() is None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=30)
        shutil.rmtree(self.base, ignore_errors=True)


def wait_for_standby(url: str, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    return
        except psycopg.Error:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the standby did not come up")
        time.sleep(0.2)


if __name__ == "__main__":
    b = bindir()
    if b is None:
        sys.exit("no PostgreSQL binaries found")
    c = Cluster(b)
    print(c.primary.url(), flush=True)
    try:
        input("Enter stops it> ")
    finally:
        c.stop()
