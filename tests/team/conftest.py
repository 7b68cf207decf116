"""The team corpus against a real PostgreSQL: a throwaway cluster started here (initdb +
pg_ctl in a temporary folder, on a free loopback port, as the postgres user when we are
root), one database per test that needs its own state. Skips when the PostgreSQL binaries
or psycopg are missing; fails instead under CI (tests/team/install.sh installs them)."""

from __future__ import annotations

import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cluster  # noqa: E402

READER_PASSWORD = "reader-secret-7f3a"
WRITER_PASSWORD = "writer-secret-9b2e"
_names = itertools.count(1)


def _require() -> Path:
    reason = None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = "psycopg is not installed (pip install -e '.[test]')"
    bindir = cluster.bindir()
    if reason is None and bindir is None:
        reason = "PostgreSQL server binaries are missing (tests/team/install.sh installs them)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    assert bindir is not None
    return bindir


def _postgres_processes(base: Path) -> list[int]:
    """Processes whose command line names the cluster's folder (postgres and its children
    carry the data directory in theirs)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(base).encode() in cmdline and b"postgres" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def pg():
    """One throwaway cluster for the session; nothing of it outlives the tests."""
    bindir = _require()
    c = cluster.Cluster(bindir, settings={"fsync": "off", "synchronous_commit": "off"})
    try:
        yield c
    finally:
        base = c.base
        c.stop()
        if sys.platform.startswith("linux"):
            assert _postgres_processes(base) == [], "a postgres process outlived the tests"


@dataclass
class TeamDB:
    admin: str
    writer: str
    reader: str
    name: str


def make_db(node: cluster.Node, name: str | None = None) -> TeamDB:
    import psycopg

    from llmref.team.db import init_db

    name = name or f"team{next(_names)}"
    with psycopg.connect(node.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    admin = node.url(db=name)
    init_db(admin, reader_password=READER_PASSWORD, writer_password=WRITER_PASSWORD)
    return TeamDB(
        admin,
        node.url("llmref_writer", WRITER_PASSWORD, name),
        node.url("llmref_reader", READER_PASSWORD, name),
        name,
    )


@pytest.fixture
def team_db(pg) -> TeamDB:
    """A fresh database with the llmref schema and roles."""
    return make_db(pg.primary)
