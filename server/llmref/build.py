"""Building and updating the index: full builds and incremental syncs.

One corpus configuration (roots, exclusions, glossary, versions) has one *slot* in the cache:

    ix-<name>/        name = HMAC(install key, configuration): unguessable, per install
      write.lock      held by whoever builds or syncs: one writer at a time, across processes
      read.lock       shared while a reader opens a generation, exclusive while a sync commits
      current         the name of the generation in use (replaced atomically)
      g-<random>/     a generation: whoosh/ (full text) and state.sqlite (entries, files, …)

A full build makes a new generation beside the one in use (which keeps serving, in this and
other processes) and swaps ``current`` when it is complete; a build killed at any point
leaves only a folder the next writer removes. A sync updates the current generation in
place: only the files whose contents changed are parsed, and their entries replace the old
ones in Whoosh and in the store (duplicate groups are recomputed only where they were
touched). Big builds parse and index in worker processes (started fresh, never forked from
this possibly threaded process), each writing its own Whoosh segment.
Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, normalize
from .corpus import group as grouping
from .corpus.entry import TEXT_LAYOUTS, Entry
from .corpus.loader import NoteFile, Problem, Scan, ScanRules, read_note, scan
from .glossary import Glossary
from .index import SCHEMA_VERSION, SearchIndex, document
from .locks import FileLock
from .ranking import about_candidates, about_key, names_text, tag_entry
from .snippets import extract as extract_snippets
from .store import STORE, FileRow, Store, entry_json, sort_key

log = logging.getLogger("llmref.build")

PIPELINE_VERSION = "4"  # parse/tag/group behaviour: part of the slot key
WHOOSH = "whoosh"
PARALLEL_BYTES = 3_000_000  # corpora above this are parsed and indexed by worker processes
FULL_REBUILD_SHARE = 0.25  # a sync touching more of the files than this rebuilds instead
EXACT_STATS_DOCS = 1_000  # below this, every sync merges the index into one segment (exact
# BM25 statistics); above, Whoosh merges small segments only (one-file edits stay cheap)

Progress = Callable[[int, int], None]


# --- configuration --------------------------------------------------------------------------


@dataclass
class Config:
    """What one index depends on."""

    roots: list[tuple[Path, str]]
    rules: ScanRules = field(default_factory=ScanRules)
    glossary_paths: list[Path] = field(default_factory=list)
    glossary_digests: list[tuple[str, str]] = field(default_factory=list)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(
            f"schema={SCHEMA_VERSION};analyzer={normalize.ANALYZER_VERSION};"
            f"pipeline={PIPELINE_VERSION};segmenter={normalize.segmenter_version()};"
            f"rules={self.rules.key()}\n".encode()
        )
        for path, label in self.roots:
            h.update(f"root\0{Path(path).expanduser().resolve()}\0{label}\n".encode())
        for name, digest in self.glossary_digests:
            h.update(f"glossary\0{name}\0{digest}\n".encode())
        return h.hexdigest()


# --- one file ---------------------------------------------------------------------------------


@dataclass
class FileResult:
    """One note file parsed and tagged (what a worker sends back)."""

    path: str
    display: str
    sort: str
    size: int
    mtime_ns: int
    digest: str
    entries: list[Entry]
    problems: list[list] = field(default_factory=list)  # [line, message]


def process(note: NoteFile, glossary: Glossary, slug: str | None = None) -> FileResult:
    """Read, parse and tag one note (a broken file gives a result with a problem)."""
    from .corpus.parse import parse_markdown  # markdown-it only when notes are parsed

    data, text, problem = read_note(note.path)
    digest = hashlib.sha256(data).hexdigest() if data is not None else "unreadable"
    result = FileResult(
        str(note.path), note.display, note.sort, note.size, note.mtime_ns, digest, []
    )
    if problem is not None or text is None:
        p = problem or Problem(str(note.path), None, "unreadable")
        result.problems.append([p.line, p.message])
        return result
    found: list = []
    try:
        if _parser_reports_problems():
            entries = parse_markdown(text, note.display, str(note.path), problems=found)  # type: ignore[call-arg]
        else:
            entries = parse_markdown(text, note.display, str(note.path))
    except Exception as exc:  # a parser bug must not lose the other files
        log.exception("parsing %s failed", note.path)
        result.problems.append([None, f"could not parse: {exc}"])
        return result
    for p in found:
        result.problems.append([getattr(p, "line", None), getattr(p, "message", str(p))])
    from .corpus.parse import slugify

    own = slugify(note.display.rsplit(".", 1)[0])
    for entry in entries:
        if slug is not None and slug != own and entry.id.startswith(own + ":"):
            entry.id = slug + entry.id[len(own) :]
        tag_entry(entry, glossary)
    result.entries = entries
    return result


@functools.cache
def _parser_reports_problems() -> bool:
    from .corpus.parse import parse_markdown

    return "problems" in inspect.signature(parse_markdown).parameters


def unique_slugs(notes: Sequence[NoteFile]) -> dict[str, str]:
    """Display path -> id prefix, made unique where two paths slugify alike."""
    from .corpus.parse import slugify

    out: dict[str, str] = {}
    used: dict[str, int] = {}
    for note in notes:
        slug = slugify(note.display.rsplit(".", 1)[0])
        n = used.get(slug, 0)
        used[slug] = n + 1
        out[note.display] = slug if n == 0 else f"{slug}-{n + 1}"
    return out


def latin_words(entry: Entry) -> set[str]:
    """The Latin words of an entry, as the analyzer writes them (did-you-mean vocabulary)."""
    words: set[str] = set()
    for text in (entry.question, entry.detail, entry.answer):
        for m in normalize.LATIN_RUN.finditer(text):
            words.update(_run_words(m.group()))
    return words


@functools.lru_cache(maxsize=65536)
def _run_words(run: str) -> tuple[str, ...]:
    """``latin_words`` of one Latin run (runs repeat: a build sees each word thousands of
    times)."""
    parts = [normalize.singular(p) for p in normalize.split_identifier(run)]
    out = [p for p in parts if len(p) > 2 and p.isascii()]
    if len(parts) > 1:
        cat = normalize.singular("".join(parts))
        if cat.isascii():
            out.append(cat)
    return tuple(out)


# --- the store side of one file ---------------------------------------------------------------


def _sig_json(sig: grouping.Signature) -> str:
    return json.dumps([sig.key, sorted(sig.aspects), sorted(sig.concepts)], ensure_ascii=False)


def _sig_from(text: str) -> grouping.Signature:
    key, aspects, concepts = json.loads(text)
    return grouping.Signature(key, frozenset(aspects), frozenset(concepts))


class _Vocab:
    """Word -> entry-count changes, flushed to the store once per batch."""

    def __init__(self) -> None:
        self.delta: dict[str, int] = {}

    def add(self, words: Iterable[str], n: int) -> None:
        for w in words:
            self.delta[w] = self.delta.get(w, 0) + n

    def flush(self, db) -> None:
        for word, n in self.delta.items():
            if n > 0:
                db.execute(
                    "INSERT INTO vocab VALUES (?, ?) ON CONFLICT(word) DO UPDATE SET df = df + ?",
                    (word, n, n),
                )
            elif n < 0:
                db.execute("UPDATE vocab SET df = df + ? WHERE word = ?", (n, word))
        db.execute("DELETE FROM vocab WHERE df <= 0")
        self.delta.clear()


@dataclass
class PreparedEntry:
    """The store's rows for one entry (computed where the file is parsed)."""

    id: str
    data: str  # the entry as JSON
    sig: grouping.Signature
    groups: bool  # takes part in duplicate grouping
    about: list[tuple[str, int, str]]  # (concept, tier, rank key)
    snippets: list[tuple[str, str, str, str]]  # (name, key, code, language)
    words: list[str]  # Latin words (did-you-mean vocabulary)


@dataclass
class Prepared:
    """One file's rows for the store: what a build worker sends back."""

    path: str
    display: str
    sort: str
    size: int
    mtime_ns: int
    digest: str
    problems: list[list]
    entries: list[PreparedEntry]


def prepare(fr: FileResult, glossary: Glossary) -> Prepared:
    """The store rows of a parsed file (pure: runs in build workers too)."""
    entries: list[PreparedEntry] = []
    for ord_, entry in enumerate(fr.entries):
        about: list[tuple[str, int, str]] = []
        for cid in about_candidates(entry, glossary):
            concept = glossary.get(cid)
            rank = about_key(entry, concept) if concept is not None else None
            if rank is not None:
                about.append((cid, rank[0], sort_key(*rank, fr.sort, ord_)))
        snippets = [
            (sn.name, _key(sn.name), sn.code, sn.language) for sn in extract_snippets(entry)
        ]
        entries.append(
            PreparedEntry(
                entry.id,
                entry_json(entry),
                grouping.signature(entry.question, entry.question_concepts),
                _groups(entry),
                about,
                snippets,
                sorted(latin_words(entry)),
            )
        )
    return Prepared(
        fr.path, fr.display, fr.sort, fr.size, fr.mtime_ns, fr.digest, fr.problems, entries
    )


def _insert_file(db, p: Prepared, vocab: _Vocab) -> list[tuple[int, PreparedEntry]]:
    """Write one file's rows (entries, concepts, snippets; not groups): (rowid, entry)."""
    cur = db.execute(
        "INSERT INTO files (path, display, sort, mtime_ns, size, digest, problems) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (p.path, p.display, p.sort, p.mtime_ns, p.size, p.digest, json.dumps(p.problems)),
    )
    file_id = cur.lastrowid
    out: list[tuple[int, PreparedEntry]] = []
    about: list[tuple[str, int, str, int]] = []
    snippets: list[tuple[int, str, str, str, str]] = []
    for ord_, e in enumerate(p.entries):
        cur = db.execute(
            "INSERT INTO entries (id, file, ord, grp, sig, skey, ngrams, data) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
            (e.id, file_id, ord_, _sig_json(e.sig), e.sig.key, len(grouping.grams(e.sig)), e.data),
        )
        rowid = cur.lastrowid
        assert rowid is not None
        about.extend((cid, tier, key, rowid) for cid, tier, key in e.about)
        snippets.extend((rowid, *sn) for sn in e.snippets)
        vocab.add(e.words, 1)
        out.append((rowid, e))
    db.executemany("INSERT OR IGNORE INTO about VALUES (?, ?, ?, ?)", about)
    db.executemany(
        "INSERT INTO snippets (entry, name, key, code, language) VALUES (?, ?, ?, ?, ?)", snippets
    )
    return out


def _groups(entry: Entry) -> bool:
    """Whether an entry takes part in duplicate grouping: questions do; a note's sections
    do not (heading paths share prefixes, split parts are near-identical, and neither is
    "the same question asked elsewhere")."""
    return entry.layout not in TEXT_LAYOUTS


def _key(text: str) -> str:
    from .glossary import term_key

    return term_key(text)


def _delete_file(db, path: str, vocab: _Vocab) -> set[str]:
    """Remove one file's rows; returns the duplicate groups its entries were in."""
    row = db.execute("SELECT id FROM files WHERE path=?", (path,)).fetchone()
    if row is None:
        return set()
    file_id = row[0]
    groups: set[str] = set()
    for rowid, grp, data in db.execute(
        "SELECT rowid, grp, data FROM entries WHERE file=?", (file_id,)
    ).fetchall():
        if grp is not None:
            groups.add(grp)
        vocab.add(latin_words(Entry.from_dict(json.loads(data))), -1)
        db.execute("DELETE FROM about WHERE entry=?", (rowid,))
        db.execute("DELETE FROM grams WHERE entry=?", (rowid,))
        db.execute("DELETE FROM snippets WHERE entry=?", (rowid,))
    db.execute("DELETE FROM entries WHERE file=?", (file_id,))
    db.execute("DELETE FROM files WHERE id=?", (file_id,))
    return groups


def _unique_ids(db, results: Sequence[FileResult]) -> None:
    """Entry ids already used by another file get a suffix (two paths that slugify alike)."""
    for fr in results:
        for entry in fr.entries:
            row = db.execute(
                "SELECT f.path FROM entries e JOIN files f ON f.id = e.file WHERE e.id=?",
                (entry.id,),
            ).fetchone()
            if row is not None and row[0] != fr.path:
                entry.id = f"{entry.id}~{hashlib.sha1(fr.path.encode()).hexdigest()[:4]}"


# --- duplicate groups -------------------------------------------------------------------------


class _Ranks:
    """The fixed global order of grams (their entry counts at the last full build; a gram
    first seen later counts 0): prefix filtering is exact under any fixed order."""

    def __init__(self, db) -> None:
        self.db = db
        self.cache: dict[str, int] = {}

    def __call__(self, gram: str) -> int:
        df = self.cache.get(gram)
        if df is None:
            row = self.db.execute("SELECT df FROM gram_rank WHERE gram=?", (gram,)).fetchone()
            df = self.cache[gram] = row[0] if row else 0
        return df


MAX_CANDIDATES = 3000  # beyond this, a new question is compared with identical intent keys only


def _prefix(sig: grouping.Signature, rank: Callable[[str], int], threshold: float) -> list[str]:
    """The prefix-filter grams of ``sig`` for a Dice threshold: any two signatures at least
    that similar share one of their prefix grams (Dice t = Jaccard t/(2-t))."""
    ordered = sorted(grouping.grams(sig), key=lambda g: (rank(g), g))
    jaccard = threshold / (2 - threshold)
    keep = len(ordered) - math.ceil(jaccard * len(ordered)) + 1
    return ordered[: max(1, keep)]


def _probe_rows(
    rowid: int, sig: grouping.Signature, rank: Callable[[str], int]
) -> Iterable[tuple[str, str, int]]:
    """(gram, concept set, entry) rows: text-rule probes under '' and, for questions naming
    concepts, concept-rule probes under their concept set."""
    for g in _prefix(sig, rank, grouping.THRESHOLD):
        yield g, "", rowid
    if sig.concepts:
        cset = "\x1f".join(sorted(sig.concepts))
        for g in _prefix(sig, rank, grouping.CONCEPT_THRESHOLD):
            yield g, cset, rowid


def _candidates(db, sig: grouping.Signature, rank: Callable[[str], int]) -> list[int]:
    text = _prefix(sig, rank, grouping.THRESHOLD)
    sql = f"SELECT entry FROM grams WHERE cset='' AND gram IN ({','.join('?' * len(text))})"
    args: list = list(text)
    if sig.concepts:
        concept = _prefix(sig, rank, grouping.CONCEPT_THRESHOLD)
        sql += f" UNION SELECT entry FROM grams WHERE cset=? AND gram IN ({','.join('?' * len(concept))})"
        args += ["\x1f".join(sorted(sig.concepts)), *concept]
    return [r[0] for r in db.execute(sql, args)]


def _group_key(ids: Iterable[str]) -> str:
    return min(ids)


SPLIT_LIMIT = 300  # a group that loses members is re-split when at most this big


def _set_group(db, ids: Sequence[str], group: str | None) -> None:
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        db.execute(f"UPDATE entries SET grp=? WHERE id IN ({marks})", (group, *chunk))


def _regroup(db, added: set[int], touched: set[str]) -> None:
    """Recompute duplicate groups after a sync: groups in ``touched`` lost members (what is
    left may split, found among themselves: a link to an outside question would have put
    it in the group already); the ``added`` entries find their candidates in the probe-gram
    table, and the groups they join come along whole."""
    sigs: dict[int, grouping.Signature] = {}
    info: dict[int, tuple[str, str | None]] = {}  # rowid -> (id, grp)

    def load(rowids: Iterable[int]) -> None:
        need = [r for r in rowids if r not in sigs]
        for start in range(0, len(need), 500):
            chunk = need[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rowid, ident, grp, sig in db.execute(
                f"SELECT rowid, id, grp, sig FROM entries WHERE rowid IN ({marks})", chunk
            ):
                sigs[rowid] = _sig_from(sig)
                info[rowid] = (ident, grp)

    # 1. what is left of groups that lost members
    for grp in touched:
        rows = db.execute("SELECT rowid FROM entries WHERE grp=?", (grp,)).fetchall()
        members = [r[0] for r in rows if r[0] not in added]
        load(members)
        if len(members) > SPLIT_LIMIT:  # big: kept together (a full build re-splits)
            parts = [members]
        else:
            labels = grouping.group_labels([sigs[m] for m in members])
            by_label: dict[int, list[int]] = {}
            for m, label in zip(members, labels, strict=True):
                by_label.setdefault(label, []).append(m)
            parts = list(by_label.values())
        for part in parts:
            ids = [info[m][0] for m in part]
            key = _group_key(ids) if len(ids) > 1 else None
            _set_group(db, ids, key)
            for m in part:
                info[m] = (info[m][0], key)
    # 2. the new entries
    if not added:
        return
    ranks = _Ranks(db)
    load(added)
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # type: ignore[index]
            x = parent[x]
        return x

    def union(a: object, b: object) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for x in sorted(added):
        if x not in sigs:
            continue
        find(x)
        candidates = [y for y in _candidates(db, sigs[x], ranks) if y != x]
        if len(candidates) > MAX_CANDIDATES:  # pathological (thousands of alike headings)
            candidates = [
                r[0]
                for r in db.execute(
                    "SELECT rowid FROM entries WHERE skey = ? AND rowid != ? LIMIT ?",
                    (sigs[x].key, x, MAX_CANDIDATES),
                )
            ]
        load(candidates)
        for y in candidates:
            if y in sigs and grouping.same_question(sigs[x], sigs[y]):
                joined = info[y][1]
                union(x, ("g", joined) if y not in added and joined is not None else y)
    components: dict[object, list[str]] = {}
    for node in list(parent):
        if isinstance(node, tuple):
            ids = [r[0] for r in db.execute("SELECT id FROM entries WHERE grp=?", (node[1],))]
        else:
            ids = [info[node][0]]  # type: ignore[index]
        components.setdefault(find(node), []).extend(ids)
    for ids in components.values():
        _set_group(db, ids, _group_key(ids) if len(ids) > 1 else None)


def _group_all(db, rows: Sequence[tuple[int, str, grouping.Signature]]) -> None:
    """Full build: groups, the gram order, and every entry's probe grams."""
    labels = grouping.group_labels([sig for _r, _i, sig in rows])
    members: dict[int, list[str]] = {}
    for (_rowid, ident, _sig), label in zip(rows, labels, strict=True):
        members.setdefault(label, []).append(ident)
    for ids in members.values():
        if len(ids) > 1:
            key = _group_key(ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                db.execute(f"UPDATE entries SET grp=? WHERE id IN ({marks})", (key, *chunk))
    df: dict[str, int] = {}
    for _r, _i, sig in rows:
        for g in grouping.grams(sig):
            df[g] = df.get(g, 0) + 1
    db.executemany("INSERT INTO gram_rank VALUES (?, ?)", df.items())

    def rank(g: str) -> int:
        return df.get(g, 0)

    db.executemany(
        "INSERT OR IGNORE INTO grams VALUES (?, ?, ?)",
        (row for rowid, _i, sig in rows for row in _probe_rows(rowid, sig, rank)),
    )


def _add_probe_grams(db, rows: Sequence[tuple[int, grouping.Signature]]) -> None:
    ranks = _Ranks(db)
    db.executemany(
        "INSERT OR IGNORE INTO grams VALUES (?, ?, ?)",
        (row for rowid, sig in rows for row in _probe_rows(rowid, sig, ranks)),
    )


# --- slots and generations ----------------------------------------------------------------------


class Slot:
    """One configuration's folder in the cache (see the module docstring)."""

    def __init__(self, root: Path, fingerprint: str, key: bytes) -> None:
        self.root = root
        self.key = key
        self.fingerprint = fingerprint
        self.path = root / f"ix-{cache.sign(key, fingerprint.encode())[:24]}"
        cache.private_dir(self.path)
        self.write_lock = FileLock(self.path / "write.lock")
        self.read_lock_path = self.path / "read.lock"

    def current(self) -> Path | None:
        try:
            name = (self.path / "current").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not name.startswith("g-") or "/" in name or "\\" in name:
            return None
        gen = self.path / name
        return gen if gen.is_dir() else None

    def publish(self, gen: Path) -> None:
        tmp = self.path / f"current.{uuid.uuid4().hex[:8]}"
        tmp.write_text(gen.name, encoding="utf-8")
        os.replace(tmp, self.path / "current")

    def new_generation(self) -> Path:
        gen = self.path / f"b-{uuid.uuid4().hex[:12]}"
        gen.mkdir(mode=0o700)
        return gen

    def clean(self, keep: Sequence[Path]) -> None:
        """Remove unfinished builds and superseded generations (under the write lock)."""
        keep_names = {p.name for p in keep if p is not None}
        for child in self.path.iterdir():
            if child.is_dir() and child.name[:2] in ("b-", "g-") and child.name not in keep_names:
                shutil.rmtree(child, ignore_errors=True)


# --- building -----------------------------------------------------------------------------------


@dataclass
class BuildReport:
    entries: int = 0
    files: int = 0
    seconds: float = 0.0
    workers: int = 0
    changed: int = 0  # syncs: files re-read
    removed: int = 0


def full_build(
    slot: Slot,
    config: Config,
    glossary: Glossary,
    found: Scan,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
) -> tuple[Path, BuildReport]:
    """Build a new generation of the whole corpus and publish it (caller holds the write
    lock). Returns the generation's folder."""
    started = time.perf_counter()
    report = BuildReport(files=len(found.notes))
    gen = slot.new_generation()
    try:
        index = SearchIndex.create(gen / WHOOSH)
        store = Store(gen / STORE, create=True)
        # nobody reads a generation before it is published: no syncing on every commit
        store.db.execute("PRAGMA synchronous=OFF")
        # a big build inserts a few million rows in random key order (about, grams): a page
        # cache that holds the tables saves re-reading B-tree pages (the default is 2 MB)
        store.db.execute("PRAGMA cache_size=-131072")
        total = sum(n.size for n in found.notes) or 1
        done = 0
        slugs = unique_slugs(found.notes)
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if total >= PARALLEL_BYTES else 1
        workers = max(1, min(workers, len(found.notes) or 1))
        report.workers = workers if workers > 1 else 0
        rows: list[tuple[int, str, grouping.Signature]] = []
        vocab = _Vocab()

        def take(db, prepared: Prepared) -> None:
            nonlocal done
            for rowid, entry in _insert_file(db, prepared, vocab):
                if entry.groups:
                    rows.append((rowid, entry.id, entry.sig))
                report.entries += 1
            done += prepared.size
            if progress is not None:
                progress(done, total)

        if workers > 1:
            from .workers import parallel_index

            with store.tx() as db:

                def group() -> None:  # every file is in; the workers write their segments
                    phase = _phases(started, "parsed by the workers")
                    _group_all(db, rows)
                    _phases(phase, f"grouped {len(rows)} questions")

                segments = parallel_index(
                    gen / WHOOSH,
                    config,
                    found.notes,
                    slugs,
                    workers,
                    lambda fr: take(db, fr),
                    group,
                )
                phase = _phases(started, "indexed by the workers")
                _commit_segments(index, segments)
                vocab.flush(db)
            _phases(phase, "store committed")
        else:
            writer = index.writer(limitmb=256)
            try:
                with store.tx() as db:
                    for note in found.notes:
                        fr = process(note, glossary, slugs.get(note.display))
                        for entry in fr.entries:
                            writer.add_document(**document(entry, names_text(entry, glossary)))
                        take(db, prepare(fr, glossary))
                    _group_all(db, rows)
                    vocab.flush(db)
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
        with store.tx() as db:
            store.set_meta(db, "fingerprint", config.fingerprint())
            store.set_meta(db, "built", str(time.time()))
        store.db.execute("PRAGMA synchronous=FULL")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all on disk before publishing
        store.close()
        index.sign(slot.key)
        index.close()
        final = slot.path / ("g-" + gen.name[2:])
        os.replace(gen, final)
        slot.publish(final)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    report.seconds = time.perf_counter() - started
    return final, report


def _phases(since: float, what: str) -> float:
    now = time.perf_counter()
    log.debug("build: %s in %.1fs", what, now - since)
    return now


def _commit_segments(index: SearchIndex, segments: list) -> None:
    """Add segments written by worker processes to the index, without merging them."""
    from whoosh.writing import SegmentWriter

    writer = SegmentWriter(index._ix)  # takes Whoosh's own lock
    try:
        writer._close_segment()
        writer._commit_toc(segments)
        writer._finish()
    except BaseException:
        writer.cancel()
        raise


def sync(
    slot: Slot,
    gen: Path,
    config: Config,
    glossary: Glossary,
    found: Scan,
    store: Store,
    index: SearchIndex,
    known: dict[str, FileRow] | None = None,
) -> BuildReport | None:
    """Bring generation ``gen`` up to date with the files (caller holds the write lock).
    Returns None when nothing changed. ``known``: the store's file rows, if already read."""
    started = time.perf_counter()
    if known is None:
        known = store.files()
    current = {str(n.path): n for n in found.notes}
    removed = [p for p in known if p not in current]
    changed: list[NoteFile] = []
    restat: list[tuple[NoteFile, int]] = []
    for path, note in current.items():
        row = known.get(path)
        if row is None:
            changed.append(note)
        elif (row.mtime_ns, row.size, row.display, row.sort) != (
            note.mtime_ns,
            note.size,
            note.display,
            note.sort,
        ):
            if row.size == note.size and (row.display, row.sort) == (note.display, note.sort):
                try:
                    same = hashlib.sha256(note.path.read_bytes()).hexdigest() == row.digest
                except OSError:
                    same = False
                if same:  # touched, not changed
                    restat.append((note, row.id))
                    continue
            changed.append(note)
    if not changed and not removed and not restat:
        return None
    if restat and not changed and not removed:
        with store.tx() as db:
            db.executemany(
                "UPDATE files SET mtime_ns=? WHERE id=?", [(n.mtime_ns, i) for n, i in restat]
            )
        return None
    slugs = unique_slugs(found.notes)
    results = [process(n, glossary, slugs.get(n.display)) for n in changed]
    read_lock = FileLock(slot.read_lock_path)
    read_lock.acquire(exclusive=True)
    try:
        writer = index.writer(limitmb=64)
        try:
            for path in [*removed, *(str(n.path) for n in changed)]:
                writer.delete_by_term("file", path)
            with store.tx() as db:
                _unique_ids(db, results)
                vocab = _Vocab()
                touched: set[str] = set()
                for path in [*removed, *(str(n.path) for n in changed)]:
                    touched |= _delete_file(db, path, vocab)
                added: list[tuple[int, PreparedEntry]] = []
                for fr in results:
                    added.extend(
                        r for r in _insert_file(db, prepare(fr, glossary), vocab) if r[1].groups
                    )
                    for entry in fr.entries:
                        writer.add_document(**document(entry, names_text(entry, glossary)))
                _add_probe_grams(db, [(rowid, e.sig) for rowid, e in added])
                _regroup(db, {rowid for rowid, _e in added}, touched)
                vocab.flush(db)
                db.executemany(
                    "UPDATE files SET mtime_ns=? WHERE id=?", [(n.mtime_ns, i) for n, i in restat]
                )
                store.set_meta(db, "synced", str(time.time()))
                # Whoosh first: if we die between the two commits, the store still has the
                # old digests and the next sync redoes these files (idempotent)
                small = len(store) < EXACT_STATS_DOCS
                writer.commit(optimize=small)
                writer = None
        finally:
            if writer is not None:
                writer.cancel()
        index.sign(slot.key)
    finally:
        read_lock.release()
    return BuildReport(
        entries=sum(len(fr.entries) for fr in results),
        files=len(current),
        seconds=time.perf_counter() - started,
        changed=len(changed),
        removed=len(removed),
    )


def needs_full_rebuild(store: Store, found: Scan, known: dict[str, FileRow] | None = None) -> bool:
    """When most of the corpus changed, one clean build beats many small updates."""
    if known is None:
        known = store.files()
    current = {str(n.path): n for n in found.notes}
    changed = sum(
        1
        for p, n in current.items()
        if p not in known or (known[p].mtime_ns, known[p].size) != (n.mtime_ns, n.size)
    ) + sum(1 for p in known if p not in current)
    return changed > max(200, FULL_REBUILD_SHARE * max(len(known), 1))


__all__ = [
    "BuildReport",
    "Config",
    "FileResult",
    "PIPELINE_VERSION",
    "Slot",
    "full_build",
    "needs_full_rebuild",
    "process",
    "scan",
    "sync",
]
