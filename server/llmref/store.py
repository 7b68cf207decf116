"""The entry store: everything about the corpus except the full-text postings, in SQLite.

One store sits beside each Whoosh index (``state.sqlite``). It holds what the CLI and the
server need without keeping 100k entries in memory, and what incremental indexing needs to
update one file at a time:

* ``files``: every indexed note file with its stat and content digest (what changed?);
* ``entries``: each entry as JSON, its file, its order in the file, its duplicate group;
* ``about``: concept -> entries with a sortable rank key (hover cards, definition);
* ``grams`` / ``gram_rank``: the probe tokens of duplicate grouping (candidate pairs);
* ``vocab``: Latin words and how many entries use them (did-you-mean);
* ``snippets``: code blocks of answers (completion).

Group membership is stored once per entry (its group key), never as lists of the others.
Writes happen in one transaction per batch, under the index's write lock (see build.py).
Readers open their own connections (WAL: readers never wait for the writer).
Core module: no pygls, no lsprotocol, no Whoosh.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .corpus.entry import Entry

STORE = "state.sqlite"
STORE_VERSION = 4
MAX_ALSO_IN = 50  # "also in" lists the first 50 other members of a duplicate group

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,        -- absolute
    display TEXT NOT NULL,
    sort TEXT NOT NULL,               -- root order + display path: corpus order
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    problems TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS entries (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    file INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    grp TEXT,
    sig TEXT NOT NULL,                -- duplicate-grouping signature (JSON)
    skey TEXT NOT NULL,               -- its intent key (the exact-key fallback of grouping)
    ngrams INTEGER NOT NULL,
    data TEXT NOT NULL                -- the entry (JSON)
);
CREATE INDEX IF NOT EXISTS entries_file ON entries (file, ord);
CREATE INDEX IF NOT EXISTS entries_grp ON entries (grp) WHERE grp IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_skey ON entries (skey);
CREATE TABLE IF NOT EXISTS about (
    concept TEXT NOT NULL, tier INTEGER NOT NULL, key TEXT NOT NULL, entry INTEGER NOT NULL,
    PRIMARY KEY (concept, key, entry)   -- key: ranking.about_key, then corpus order
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS about_entry ON about (entry);
CREATE TABLE IF NOT EXISTS grams (
    gram TEXT NOT NULL, cset TEXT NOT NULL, entry INTEGER NOT NULL,
    PRIMARY KEY (gram, cset, entry)           -- cset '': text-rule probes; else concept-rule
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grams_entry ON grams (entry);
CREATE TABLE IF NOT EXISTS gram_rank (gram TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vocab (word TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snippets (
    id INTEGER PRIMARY KEY, entry INTEGER NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL,
    code TEXT NOT NULL, language TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snippets_key ON snippets (key);
CREATE INDEX IF NOT EXISTS snippets_entry ON snippets (entry);
"""

# Entry fields kept in the JSON blob (the rest live in columns or are derived on load)
_DERIVED = ("group", "also_in")


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    path: str
    display: str
    sort: str
    mtime_ns: int
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class SnippetRow:
    entry_id: str
    name: str
    code: str
    language: str


def sort_key(*parts: object) -> str:
    """A string whose order is the order of the tuple ``parts`` (bools, ints, floats, str)."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, bool):
            out.append("1" if p else "0")
        elif isinstance(p, int):
            out.append(f"{p + (1 << 62):019d}")
        elif isinstance(p, float):
            bits = struct.unpack(">q", struct.pack(">d", p))[0]
            bits = bits ^ 0x7FFFFFFFFFFFFFFF if bits < 0 else bits
            out.append(f"{bits + (1 << 63):020d}")
        else:
            out.append(str(p).replace("\x00", "") + "\x00")
    return "\x01".join(out)


_STORED = tuple(f.name for f in dataclasses.fields(Entry) if f.name not in _DERIVED)


def entry_json(entry: Entry) -> str:
    data = {name: getattr(entry, name) for name in _STORED}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class Store:
    """One SQLite file; a connection per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if not create and not path.is_file():
            raise FileNotFoundError(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if create:
            self.db.executescript(_SCHEMA)  # executescript commits by itself
            with self.tx() as db:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(STORE_VERSION),)
                )
        elif self.meta("version") != str(STORE_VERSION):
            raise ValueError(f"entry store version {self.meta('version')!r} is not ours")

    # --- connections -------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA trusted_schema=OFF")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def tx(self) -> _Tx:
        self._local.caches = None  # this connection's own writes do not move data_version
        return _Tx(self.db)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.ProgrammingError:  # made in another thread: it closes with it
                pass
        self._local = threading.local()

    # --- meta ----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- files -----------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        """Every file row by path (what a sync compares; problems are read by ``problems``)."""
        rows = self.db.execute(
            "SELECT id, path, display, sort, mtime_ns, size, digest FROM files"
        ).fetchall()
        return {r[1]: FileRow(*r) for r in rows}

    def problems(self) -> list[tuple[str, int | None, str]]:
        out: list[tuple[str, int | None, str]] = []
        for path, problems in self.db.execute(
            "SELECT path, problems FROM files WHERE problems != '[]' ORDER BY sort"
        ):
            out.extend((path, line, message) for line, message in json.loads(problems))
        return out

    # --- entries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM entries").fetchone()[0]

    def _load(self, rows: Iterable[tuple], *, members: bool = True) -> list[Entry]:
        out: list[Entry] = []
        groups: dict[str, list[str]] = {}
        for data, grp, ident in rows:
            entry = Entry.from_dict(json.loads(data))
            entry.group = grp
            if grp is not None and members:
                if grp not in groups:
                    groups[grp] = self.group_ids(grp, limit=MAX_ALSO_IN + 1)
                entry.also_in = [i for i in groups[grp] if i != ident][:MAX_ALSO_IN]
            out.append(entry)
        return out

    def entry(self, entry_id: str) -> Entry | None:
        rows = self.db.execute("SELECT data, grp, id FROM entries WHERE id=?", (entry_id,))
        found = self._load(rows)
        return found[0] if found else None

    def entries(self, ids: Sequence[str]) -> dict[str, Entry]:
        """The entries with these ids (missing ones are left out)."""
        out: dict[str, Entry] = {}
        ids = list(dict.fromkeys(ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT data, grp, id FROM entries WHERE id IN ({marks})", chunk
            ).fetchall()
            for entry in self._load(rows):
                out[entry.id] = entry
        return out

    def contains(self, entry_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM entries WHERE id=?", (entry_id,)).fetchone()
        return row is not None

    def ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        """Ids that start with ``prefix``, or whose hash part (after the ``:``) does."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.execute(
            "SELECT e.id FROM entries e JOIN files f ON f.id = e.file "
            "WHERE (e.id >= ? AND e.id < ?) OR e.id LIKE ? ESCAPE '\\' "
            "ORDER BY f.sort, e.ord LIMIT ?",
            (prefix, prefix + "\U0010ffff", f"%:{like}%", limit),
        ).fetchall()
        return [r[0] for r in rows]

    def iter_entries(self, *, members: bool = True) -> Iterator[Entry]:
        """Every entry, in corpus order (files in root/display order, then document order)."""
        cursor = self.db.execute(
            "SELECT e.data, e.grp, e.id FROM entries e JOIN files f ON f.id = e.file "
            "ORDER BY f.sort, e.ord"
        )
        while rows := cursor.fetchmany(512):
            yield from self._load(rows, members=members)

    def group_ids(self, grp: str, limit: int = -1) -> list[str]:
        # cached: a big corpus's groups run to hundreds of members, sorted by corpus order
        # for every card and result that shows "also in"
        cache = self._until_changed("groups")
        got = cache.get((grp, limit))
        if got is None:
            if len(cache) > 10_000:
                cache.clear()
            got = cache[(grp, limit)] = self._group_ids(grp, limit)
        return list(got)

    def _group_ids(self, grp: str, limit: int) -> list[str]:
        rows = self.db.execute(
            "SELECT e.id FROM entries e JOIN files f ON f.id = e.file WHERE e.grp=? "
            "ORDER BY f.sort, e.ord LIMIT ?",
            (grp, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def file_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM files").fetchone()[0]

    # --- concepts ------------------------------------------------------------------------------

    def _tiers(self, concept: str) -> tuple[int, ...]:
        """Which tiers of ``ranking.about_key`` list a concept: where a question names it,
        no stand-ins (0, 2); else where a covering concept's question does (1, 2); else all."""
        # cached per connection until the store changes (a common concept of a big corpus
        # has thousands of rows to look through; completion asks for ten concepts a keystroke)
        cache = self._until_changed("tiers")
        tiers = cache.get(concept)
        if tiers is None:
            # keys sort by tier first (ranking.about_key): the first row has the best tier,
            # one index seek where min(tier) read every row of the concept
            row = self.db.execute(
                "SELECT tier FROM about WHERE concept=? ORDER BY key LIMIT 1", (concept,)
            ).fetchone()
            best = row[0] if row else None
            tiers = (0, 2) if best == 0 else (1, 2) if best == 1 else (0, 1, 2, 3)
            cache[concept] = tiers
        return tiers

    def _until_changed(self, kind: str) -> dict:
        """A cache of this thread's connection, emptied whenever the store has changed."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        held: tuple[int, dict[str, dict]] | None = getattr(self._local, "caches", None)
        if held is None or held[0] != version:
            held = self._local.caches = (version, {})
        return held[1].setdefault(kind, {})

    def about(self, concept: str, limit: int = 1) -> list[str]:
        """Ids of the entries about a concept, best first, one per duplicate group."""
        out: list[str] = []
        seen: set[str] = set()
        tiers = self._tiers(concept)
        cursor = self.db.execute(
            "SELECT e.id, e.grp, a.tier FROM about a JOIN entries e ON e.rowid = a.entry "
            "WHERE a.concept=? ORDER BY a.key",
            (concept,),
        )
        for ident, grp, tier in cursor:
            if tier not in tiers:
                continue
            key = grp or ident
            if key in seen:
                continue
            seen.add(key)
            out.append(ident)
            if len(out) >= limit:
                break
        return out

    def about_count(self, concept: str, cap: int = 100) -> int:
        """How many answers (duplicate groups counted once) are about a concept, counted up
        to ``cap`` (a hover says "99+ more"; a concept of a big corpus has thousands)."""
        tiers = self._tiers(concept)
        row = self.db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT coalesce(e.grp, e.id) FROM about a "
            f"JOIN entries e ON e.rowid = a.entry WHERE a.concept=? AND a.tier IN {tiers} "
            "LIMIT ?)",
            (concept, cap),
        ).fetchone()
        return row[0]

    # --- vocabulary and snippets ---------------------------------------------------------------

    def vocabulary(self, min_df: int = 1) -> list[str]:
        rows = self.db.execute("SELECT word FROM vocab WHERE df >= ? ORDER BY word", (min_df,))
        return [r[0] for r in rows]

    def snippets(
        self, key_prefix: str | None = None, entry_ids: Sequence[str] = ()
    ) -> list[SnippetRow]:
        """Snippets whose name key starts with ``key_prefix``, and those of the given entries."""
        out: list[SnippetRow] = []
        seen: set[tuple[str, str]] = set()
        queries: list[tuple[str, tuple]] = []
        base = "SELECT e.id, s.name, s.code, s.language FROM snippets s JOIN entries e ON e.rowid = s.entry "
        if key_prefix is None and not entry_ids:
            queries.append((base + "ORDER BY s.id", ()))
        if key_prefix:
            queries.append(
                (base + "WHERE s.key >= ? AND s.key < ? ORDER BY s.id LIMIT 200",
                 (key_prefix, key_prefix + "\U0010ffff"))
            )  # fmt: skip
        ids = list(dict.fromkeys(entry_ids))[:200]
        if ids:
            marks = ",".join("?" * len(ids))
            queries.append((base + f"WHERE e.id IN ({marks}) ORDER BY s.id", tuple(ids)))
        for sql, args in queries:
            for ident, name, code, language in self.db.execute(sql, args):
                if (ident, name) not in seen:
                    seen.add((ident, name))
                    out.append(SnippetRow(ident, name, code, language))
        return out


class _Tx:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on one connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


__all__ = ["STORE", "FileRow", "SnippetRow", "Store", "entry_json", "sort_key"]
