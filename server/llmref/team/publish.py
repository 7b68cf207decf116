"""``llmref publish``: note folders -> the team database, incrementally.

* Each file is keyed by its display path (folder name / relative path, the same on every
  machine) and its content digest (with a fingerprint of the parser, analyzer and
  glossary): unchanged files are not read twice, changed ones are replaced, files gone
  from a published folder are removed (folders not named in this publish are left alone).
* Changed files are parsed, tagged and tokenized in worker processes (``team/worker.py``)
  when there are many; the parent writes them in batches, one transaction per batch. A
  publish interrupted at any point leaves every file either in its old or its new state
  (the corpus stays searchable); the next publish redoes what is left (digests).
* One publisher at a time (an advisory lock); readers never wait (MVCC).
* Hostile notes: every value is a bound parameter or COPY data; NUL characters are removed
  with a warning naming the file and line; oversize files are skipped by the scan (its size
  cap), oversize sections are cut by the parser, tokens over 240 bytes are not indexed and a
  huge entry keeps its first 120,000 tokens in the tsvector.

Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, normalize
from ..build import PIPELINE_VERSION, unique_slugs
from ..corpus.loader import NoteFile, Problem, ScanRules, scan
from ..glossary import Glossary
from ..store import entry_json
from . import db
from .docs import FIELDS, Doc, digest_key, path_hash
from .search import scoring_constants
from .worker import FileOut, prepare

log = logging.getLogger("llmref.team")

FORMAT_VERSION = "1"  # what publish writes per entry (part of every file's digest key)
BULK_BYTES = 5_000_000  # a first publish bigger than this drops the search indexes, loads,
# then builds them once (much cheaper than maintaining them row by row)
# the indexes of schema.sql that publish does not need while it writes
INDEXES = {
    "entries_file": "CREATE INDEX IF NOT EXISTS entries_file ON llmref.entries (file, ord)",
    "entries_id_prefix": "CREATE INDEX IF NOT EXISTS entries_id_prefix ON llmref.entries "
    "(id text_pattern_ops)",
    "entries_tsv": "CREATE INDEX IF NOT EXISTS entries_tsv ON llmref.entries USING gin (tsv)",
    "postings_impact": "CREATE INDEX IF NOT EXISTS postings_impact ON llmref.postings "
    "(term, impact DESC) INCLUDE (entry, tf)",
    "postings_entry": "CREATE INDEX IF NOT EXISTS postings_entry ON llmref.postings (entry)",
    "about_concept": "CREATE INDEX IF NOT EXISTS about_concept ON llmref.about (concept, key)",
    "about_entry": "CREATE INDEX IF NOT EXISTS about_entry ON llmref.about (entry)",
}
BATCH_ENTRIES = 4000  # entries per transaction
PARALLEL_FILES = 40  # more changed files than this: worker processes

Progress = Callable[[int, int], None]


@dataclass
class PublishReport:
    files: int = 0  # note files found
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    entries: int = 0  # entries written
    batches: int = 0
    seconds: float = 0.0
    workers: int = 0
    write_seconds: float = 0.0  # of ``seconds``: in database writes (the rest: scan, parsing)
    dry_run: bool = False
    problems: list[Problem] = field(default_factory=list)
    plan: list[tuple[str, str]] = field(default_factory=list)  # (add|update|remove, path)


def roots_of(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """(folder, label) for each path, labelled like the config's corpus folders."""
    from ..config import Settings

    return Settings(corpora=[Path(p) for p in paths], bundled=False).roots()


def fingerprint(glossary: Glossary) -> str:
    h = hashlib.sha256()
    h.update(
        f"team={FORMAT_VERSION};pipeline={PIPELINE_VERSION};analyzer={normalize.ANALYZER_VERSION}\n".encode()
    )
    for name, digest in glossary.digests:
        h.update(f"glossary\0{Path(name).name}\0{digest}\n".encode())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable:{exc.errno}"


# --- the database side -----------------------------------------------------------------------------

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS llmref_stage_map (note int, ord int, rowid int)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS llmref_stage_post (
    note int, ord int, field int2, term text, tf int2, len int) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS llmref_stage_about (
    note int, ord int, concept text, tier int2, key bytea) ON COMMIT DELETE ROWS
"""

_LEXICON = """
INSERT INTO llmref.lexicon AS l (field, term, df)
SELECT field, term, count(*) FROM llmref_stage_post GROUP BY field, term
ON CONFLICT (field, term) DO UPDATE SET df = l.df + excluded.df
"""

_POSTINGS = """
INSERT INTO llmref.postings (term, entry, tf, impact)
SELECT l.id, m.rowid, s.tf,
       s.tf * %(k1p1)s / (s.tf + %(k1)s * (%(omb)s + %(b)s * s.len / (%(avg)s::float8[])[s.field + 1]))
FROM llmref_stage_post s
JOIN llmref_stage_map m USING (note, ord)
JOIN llmref.lexicon l ON l.field = s.field AND l.term = s.term
ORDER BY l.id  -- index order: each batch touches the posting lists' leaf pages once
"""

ENTRY_TERMS = """
INSERT INTO llmref.entry_terms (entry, terms, tfs)
SELECT m.rowid, array_agg(l.id ORDER BY l.id), array_agg(s.tf ORDER BY l.id)
FROM llmref_stage_post s
JOIN llmref_stage_map m USING (note, ord)
JOIN llmref.lexicon l ON l.field = s.field AND l.term = s.term
GROUP BY m.rowid
"""

_ABOUT = """
INSERT INTO llmref.about (concept, tier, key, entry)
SELECT s.concept, s.tier, s.key, m.rowid
FROM llmref_stage_about s JOIN llmref_stage_map m USING (note, ord)
"""


def _add_stats(conn, docs: int, sizes: list[float]) -> tuple[int, list[float]]:
    row = conn.execute(
        "UPDATE llmref.stats SET docs = docs + %s, "
        "lengths = ARRAY(SELECT a + b FROM unnest(lengths, %s::float8[]) AS x(a, b)) "
        "RETURNING docs, lengths",
        (docs, sizes),
    ).fetchone()
    return int(row[0]), [float(x) for x in row[1]]


def _remove(conn, file_ids: list[int]) -> int:
    """Delete files and everything of theirs; returns the entries removed."""
    if not file_ids:
        return 0
    rows = conn.execute(
        "DELETE FROM llmref.entries WHERE file = ANY(%s) RETURNING rowid, sizes", (file_ids,)
    ).fetchall()
    rowids = [r[0] for r in rows]
    if rowids:
        terms = Counter(
            r[0]
            for r in conn.execute(
                "DELETE FROM llmref.postings WHERE entry = ANY(%s) RETURNING term", (rowids,)
            )
        )
        ids = list(terms)
        conn.execute(
            "UPDATE llmref.lexicon AS l SET df = l.df - d.n "
            "FROM unnest(%s::int[], %s::int[]) AS d(id, n) WHERE l.id = d.id",
            (ids, [terms[i] for i in ids]),
        )
        conn.execute("DELETE FROM llmref.lexicon WHERE id = ANY(%s) AND df <= 0", (ids,))
        conn.execute("DELETE FROM llmref.about WHERE entry = ANY(%s)", (rowids,))
        conn.execute("DELETE FROM llmref.entry_terms WHERE entry = ANY(%s)", (rowids,))
        sizes = [0.0] * len(FIELDS)
        for _rowid, s in rows:
            for i, v in enumerate(s[: len(FIELDS)]):
                sizes[i] -= v
        _add_stats(conn, -len(rows), sizes)
    conn.execute("DELETE FROM llmref.files WHERE id = ANY(%s)", (file_ids,))
    return len(rows)


def _unique_ids(conn, docs: list[tuple[int, FileOut, int, Doc]]) -> None:
    """Entry ids stay unique: where two paths slugify alike, the later one gets a suffix."""
    ids = [d.entry.id for _fid, _f, _o, d in docs]
    taken = {r[0] for r in conn.execute("SELECT id FROM llmref.entries WHERE id = ANY(%s)", (ids,))}
    seen: set[str] = set()
    for _fid, f, _o, d in docs:
        ident = d.entry.id
        if ident in taken or ident in seen:
            base = f"{ident}~{path_hash(f.display)}"
            ident, n = base, 2
            while ident in taken or ident in seen:
                ident, n = f"{base}-{n}", n + 1
            d.entry.id = ident
            d.data = entry_json(d.entry)
        seen.add(ident)


def _write(conn, batch: list[FileOut], known: dict[str, tuple[int, str]], fp: str) -> int:
    """One transaction: the batch's files replace their old versions. Returns entries.

    The workers wrote the postings and concept ranks as COPY rows keyed by (note, ordinal);
    they go to temporary stage tables, and SQL turns them into lexicon counts, postings and
    ranks (no per-posting work in Python here)."""
    with conn.transaction():
        _remove(conn, [known[f.display][0] for f in batch if f.display in known])
        rows = conn.execute(
            "INSERT INTO llmref.files (path, origin, sort, digest, entries, problems) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int[], "
            "%s::text[]) RETURNING id, path",
            (
                [f.display for f in batch],
                [f.path for f in batch],
                [f.sort for f in batch],
                [digest_key(fp, f.digest) for f in batch],
                [len(f.docs) for f in batch],
                [json.dumps(f.problems, ensure_ascii=False) for f in batch],
            ),
        ).fetchall()
        file_id = {path: i for i, path in rows}
        docs = [(file_id[f.display], f, o, d) for f in batch for o, d in enumerate(f.docs)]
        if not docs:
            return 0
        _unique_ids(conn, docs)
        rowids = [
            r[0]
            for r in conn.execute(
                "SELECT nextval('llmref.entry_rowid') FROM generate_series(1, %s)", (len(docs),)
            )
        ]
        sizes = [0.0] * len(FIELDS)
        for _fid, _f, _o, d in docs:
            for i, v in enumerate(d.sizes):
                sizes[i] += v
        total_docs, lengths = _add_stats(conn, len(docs), sizes)
        average = [(x / max(total_docs, 1)) or 1.0 for x in lengths]
        conn.execute(_STAGE.encode())
        cur = conn.cursor()
        with cur.copy("COPY llmref_stage_map (note, ord, rowid) FROM STDIN") as cp:
            for rowid, (_fid, f, o, _d) in zip(rowids, docs, strict=True):
                cp.write_row((f.index, o, rowid))
        with cur.copy(
            "COPY llmref.entries (rowid, id, file, ord, data, lens, sizes, concepts, "
            "answer_concepts, tsv) FROM STDIN"
        ) as cp:
            for rowid, (fid, _f, o, d) in zip(rowids, docs, strict=True):
                e = d.entry
                cp.write_row(
                    (rowid, e.id, fid, o, d.data, d.lens, d.sizes, e.question_concepts,
                     [c for c in e.concepts if c not in e.question_concepts], d.tsv)
                )  # fmt: skip
        with cur.copy("COPY llmref_stage_post FROM STDIN") as cp:
            for f in batch:
                if f.postings:
                    cp.write(f.postings.encode("utf-8"))
        with cur.copy("COPY llmref_stage_about FROM STDIN") as cp:
            for f in batch:
                if f.about:
                    cp.write(f.about.encode("utf-8"))
        conn.execute("ANALYZE llmref_stage_map, llmref_stage_post")
        conn.execute(_LEXICON)
        conn.execute(_POSTINGS, {"avg": average, **scoring_constants()})
        conn.execute(ENTRY_TERMS)
        conn.execute(_ABOUT)
    return len(docs)


# --- producing the files -------------------------------------------------------------------------


def _in_process(
    notes: list[NoteFile], glossary: Glossary, slugs: dict[str, str]
) -> Iterator[FileOut]:
    for index, note in enumerate(notes):
        yield prepare(index, note, glossary, slugs.get(note.display))


def _in_workers(
    notes: list[NoteFile], glossary: Glossary, slugs: dict[str, str], workers: int
) -> Iterator[FileOut]:
    """Files prepared by worker processes, as they come (a reader thread drains the pipes
    while the caller writes to the database)."""
    from ..workers import balance, child_frames, close_outputs, start_child, stop_children

    procs: list[subprocess.Popen] = []
    results: queue.Queue = queue.Queue(maxsize=2000)
    for shard in balance(notes, workers):
        job = {
            "glossary": [str(p) for p in glossary.paths],
            "glossary_digests": glossary.digests,
            "notes": [
                [i, str(n.path), n.display, n.sort, n.size, n.mtime_ns, slugs.get(n.display)]
                for i, n in ((i, notes[i]) for i in sorted(shard))
            ],
        }
        procs.append(start_child("llmref.team.worker", job))
    stop = threading.Event()

    def drain() -> None:
        try:
            for kind, payload in child_frames(procs, stop):
                if kind in ("file", "error"):
                    results.put((kind, payload))
            results.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            results.put(("error", f"{type(exc).__name__}: {exc}"))

    reader = threading.Thread(target=drain, name="llmref-publish-read", daemon=True)
    reader.start()
    try:
        while True:
            kind, payload = results.get()
            if kind == "file":
                yield payload
            elif kind == "error":
                raise RuntimeError(f"a publish worker failed: {payload}")
            else:
                break
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"a publish worker exited with code {proc.returncode}")
    finally:
        stop.set()
        stop_children(procs)
        reader.join(timeout=5)
        close_outputs(procs)


# --- publish -------------------------------------------------------------------------------------


def publish(
    paths: Sequence[Path],
    url: str,
    *,
    rules: ScanRules | None = None,
    dry_run: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    batch_entries: int = BATCH_ENTRIES,
    on_batch: Callable[[int], None] | None = None,
) -> PublishReport:
    """Publish the note folders (or files) ``paths`` to the database at ``url`` (a role that
    may write: llmref_writer). ``on_batch(n)`` runs after each committed batch (tests)."""
    started = time.perf_counter()
    psycopg = db.driver()
    report = PublishReport(dry_run=dry_run)
    roots = roots_of(paths)
    found = scan(roots, rules or ScanRules())
    report.problems += found.problems
    report.files = len(found.notes)
    glossary = Glossary.load(config.glossary_paths(found.glossaries))
    report.problems += glossary.problems
    fp = fingerprint(glossary)
    labels = {label for _path, label in roots}
    conn = db.connect(url, writer=not dry_run, timeout_ms=None)
    try:
        encoding = conn.execute("SHOW server_encoding").fetchone()
        if encoding is None or str(encoding[0]).upper() not in ("UTF8", "UTF-8"):
            raise db.TeamError(
                f"the team database must be UTF8 (it is {encoding[0] if encoding else '?'})"
            )
        if not dry_run:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (db.LOCK_KEY,)).fetchone()
            if not (locked and locked[0]):
                log.warning("another publish is running; waiting for it")
                conn.execute("SELECT pg_advisory_lock(%s)", (db.LOCK_KEY,))
        known = {
            path: (i, digest)
            for i, path, digest in conn.execute("SELECT id, path, digest FROM llmref.files")
        }
        current = {n.display: n for n in found.notes}
        changed: list[NoteFile] = []
        for note in found.notes:
            old = known.get(note.display)
            if old is None:
                changed.append(note)
                report.added += 1
                report.plan.append(("add", note.display))
            elif old[1] != digest_key(fp, _file_digest(note.path)):
                changed.append(note)
                report.changed += 1
                report.plan.append(("update", note.display))
            else:
                report.unchanged += 1
        gone = [p for p in known if p not in current and p.split("/", 1)[0] in labels]
        report.removed = len(gone)
        report.plan += [("remove", p) for p in sorted(gone)]
        if dry_run:
            return report
        _ensure_indexes(conn)  # a bulk load that was interrupted left them out
        docs_before = conn.execute("SELECT docs FROM llmref.stats").fetchone()
        bulk = bool(docs_before and docs_before[0] == 0) and (
            sum(n.size for n in changed) >= BULK_BYTES
        )
        if bulk:
            conn.execute("SELECT set_config('maintenance_work_mem', '256MB', false)")
            for name in INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS llmref.{name}".encode())
        if gone:
            with conn.transaction():
                _remove(conn, [known[p][0] for p in gone])
        slugs = unique_slugs(found.notes)
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if len(changed) > PARALLEL_FILES else 1
        workers = max(1, min(workers, len(changed) or 1))
        report.workers = workers if workers > 1 else 0
        source = (
            _in_workers(changed, glossary, slugs, workers)
            if workers > 1
            else _in_process(changed, glossary, slugs)
        )
        batch: list[FileOut] = []
        pending = 0
        done = 0

        def flush() -> None:
            nonlocal batch, pending
            if not batch:
                return
            t0 = time.perf_counter()
            report.entries += _write(conn, batch, known, fp)
            report.write_seconds += time.perf_counter() - t0
            report.batches += 1
            batch, pending = [], 0
            if on_batch is not None:
                on_batch(report.batches)

        for out in source:
            done += 1
            for line, message in out.problems:
                report.problems.append(Problem(out.path, line, message))
            batch.append(out)
            pending += len(out.docs)
            if pending >= batch_entries:
                flush()
            if progress is not None:
                progress(done, len(changed))
        flush()
        if bulk:
            _ensure_indexes(conn)
        if changed or gone:
            from .. import __version__

            with conn.transaction():
                conn.execute(
                    "UPDATE llmref.stats SET generation = generation + 1, published = now()"
                )
                conn.execute(
                    "INSERT INTO llmref.meta VALUES ('analyzer', %s), ('fingerprint', %s), "
                    "('published_by', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (normalize.ANALYZER_VERSION, fp, f"llmref {__version__}"),
                )
                conn.execute("SELECT pg_notify('llmref_published', %s)", (str(report.entries),))
            if bulk or report.entries > 10_000:
                _analyze(conn)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise db.TeamError(
            f"this role may not publish to {db.mask(url)} (use a {db.WRITER} URL): "
            f"{db.describe(exc, url)}"
        ) from None
    except psycopg.Error as exc:
        raise db.TeamError(
            f"publishing to {db.mask(url)} failed: {db.describe(exc, url)}"
        ) from None
    finally:
        try:
            conn.close()  # the advisory lock goes with the session
        except Exception:
            pass
    report.seconds = time.perf_counter() - started
    return report


def _ensure_indexes(conn) -> None:
    for name, ddl in INDEXES.items():
        conn.execute(ddl.encode())
        del name


def _analyze(conn) -> None:
    """Fresh planner statistics (and visibility maps) after a big publish, where our role
    may (owners only before PostgreSQL 16; autovacuum does it otherwise)."""
    for table in ("postings", "entries", "lexicon", "about"):
        try:
            conn.execute(f"VACUUM (ANALYZE) llmref.{table}".encode())
        except Exception as exc:
            log.debug("vacuum of llmref.%s skipped: %s", table, exc)


__all__ = ["PublishReport", "fingerprint", "publish", "roots_of"]
