"""The team corpus as a reader sees it: ``TeamIndex``, what ``lookup.Reference`` adds to its
searches and cards when a database is configured.

Never blocking the editor:

* every database call runs on a worker thread of ours and is waited for at most
  ``timeout_ms`` (default 300 ms; the server also cancels it then: ``statement_timeout``);
  a call that times out is cancelled and its connection abandoned;
* a database that is down or slow means local results and one warning; calls are not even
  tried until a background thread has reconnected (backoff 0.5 s doubling to 30 s);
* a connection lost mid-call (a primary stopped, a replica promoted) is re-opened and the
  call retried once at once: with a multi-host URL (``host=a,b target_session_attrs=any``)
  libpq takes the next host, and the search answers from it;
* a search sends its team half before the local half runs and collects it after: the
  database and the local index work at the same time;
* hover cards never touch the database: they read a local cache of the team's concept ->
  best entry map (``<cache>/team/<hash>.json``, private like the rest of the cache),
  refreshed in the background when a search or the poll sees a new publish generation.

Core: no pygls, no lsprotocol.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..corpus.entry import TEXT_LAYOUTS, Entry
from ..index import Hit
from ..normalize import fold
from . import db
from .copies import Copies
from .docs import FIELD_ID, FIELDS, PREFIX
from .search import DEFAULT_K, DEFAULT_M, Compiled, TeamHits, compile_plan, run, upper_bound

if TYPE_CHECKING:
    from ..config import Settings
    from ..glossary import Concept
    from ..lookup import Reference, Result

log = logging.getLogger("llmref.team")

POLL_SECONDS = 60.0  # the publish generation is checked this often (besides every search)
BACKOFF = (0.5, 30.0)  # reconnect delays: first, longest
FIRST_CONNECT_WAIT = 3.0  # the first search waits this long for the first connection
CACHE_TIMEOUT_MS = 30_000  # the background concept-map refresh may take this long
SEND_WAIT = 0.005  # a search waits this long (s) at most for its team statement to leave
COPIES_NOW = 5  # a search's first team hits get their local copies before it returns
LONG_TIMEOUT_MS = 60_000  # `llmref list` / `show`: a person waits, not an editor


class Unavailable(Exception):
    """The team database did not answer (down, slow, or not connected yet)."""


class Busy(Exception):
    """Our one connection stayed busy with other searches for the whole timeout."""


@dataclass
class _Box:
    done: threading.Event
    result: Any = None
    error: BaseException | None = None


class _Worker(threading.Thread):
    """Owns one connection; runs the calls given to it, one at a time (a daemon thread: one
    stuck on a hung server never holds the process)."""

    def __init__(self, team: TeamIndex) -> None:
        super().__init__(name="llmref-team-db", daemon=True)
        import queue

        self.team = team
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.conn: Any = None
        self.retired = False

    def connection(self):
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.drop()
            self.conn = db.connect(self.team.url, timeout_ms=self.team.timeout_ms)
        return self.conn

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def run(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                break
            fn, box = task
            try:
                box.result = fn(self)
            except BaseException as exc:  # handed to the caller
                box.error = exc
            box.done.set()
            if self.retired:
                break
        self.drop()


class ConceptCache:
    """concept -> (best team entry, how many team entries are about it, how many questions
    name it), on disk so hovers have it at once, even with the database down."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.generation: int | None = None
        self.docs = 0
        self.items: dict[str, dict] = {}
        self._entries: dict[str, Entry] = {}
        if path is not None:
            self.load()

    def load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict) or not isinstance(data.get("concepts"), dict):
            return
        self.generation = data.get("generation")
        self.docs = int(data.get("docs") or 0)
        self.items = data["concepts"]
        self._entries = {}

    def replace(self, generation: int, docs: int, items: dict[str, dict]) -> None:
        self.generation, self.docs, self.items, self._entries = generation, docs, items, {}
        if self.path is None:
            return
        body = {"generation": generation, "docs": docs, "concepts": items}
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, self.path)

    def best(self, concept: str) -> tuple[Entry, int] | None:
        item = self.items.get(concept)
        if not item:
            return None
        entry = self._entries.get(concept)
        if entry is None:
            try:
                entry = Entry.from_dict(json.loads(item["best"]))
            except (ValueError, TypeError, KeyError):
                return None
            self._entries[concept] = entry
        return entry, int(item.get("count") or 1)

    def questions(self, concept: str) -> int:
        item = self.items.get(concept)
        return int(item.get("questions") or 0) if item else 0


_CACHE_SQL = """
SELECT b.concept, e.data, t.tiers, t.counts
FROM (SELECT DISTINCT ON (a.concept) a.concept, a.entry FROM llmref.about a
      JOIN llmref.entries e ON e.rowid = a.entry JOIN llmref.files f ON f.id = e.file
      ORDER BY a.concept, a.key, f.sort, e.ord) b
JOIN llmref.entries e ON e.rowid = b.entry
JOIN (SELECT concept, array_agg(tier ORDER BY tier) AS tiers, array_agg(n ORDER BY tier) AS counts
      FROM (SELECT concept, tier, count(*) AS n FROM llmref.about GROUP BY concept, tier) x
      GROUP BY concept) t USING (concept)
"""


@dataclass
class Pending:
    """The team half of one search, under way (``TeamIndex.begin``)."""

    planned: Any  # lookup._Query: the plan with the team corpus's statistics
    compiled: Compiled
    future: Future
    limit: int = 10  # how many results the search returns


class TeamIndex:
    """The team database for one reader (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_ms: int = db.DEFAULT_TIMEOUT_MS,
        cache_dir: Path | None = None,
        k: int = DEFAULT_K,
        m: int = DEFAULT_M,
        connect: bool = True,
    ) -> None:
        self.url = url
        self.masked = db.mask(url)
        self.timeout_ms = max(int(timeout_ms), 1)
        self.k, self.m = k, m
        self.on_warning: Callable[[str], None] | None = None
        self.on_refresh: Callable[[], None] | None = None
        self.warnings: list[str] = []  # not yet shown (the CLI prints them)
        self._warned = False
        self._lock = threading.Lock()  # one call at a time on the worker
        self._state_lock = threading.Lock()
        self._worker: _Worker | None = None
        self._up = False
        self._ready = threading.Event()  # the first connection attempt is over
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._refreshing = False
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None  # waits on the team half of searches
        self._retry_at = 0.0  # after a failure, searches wait for this (backoff)
        self._retry_delay = BACKOFF[0]
        path: Path | None = None
        copies: Path | None = None
        if cache_dir is not None:
            try:
                from .. import cache

                folder = cache.private_dir(cache_dir)
                key = hashlib.sha256(self.masked.encode()).hexdigest()[:24]
                path = folder / f"team-{key}.json"
                copies = cache.private_dir(folder / f"team-{key}-copies")
            except (OSError, Exception) as exc:  # an unusable cache: cards without team entries
                log.warning("the team concept cache is unusable (%s)", exc)
        self.concepts = ConceptCache(path)
        self.copies = Copies(copies)  # where team entries open on this machine
        self._thread: threading.Thread | None = None
        if connect:
            self._thread = threading.Thread(
                target=self._background, name="llmref-team", daemon=True
            )
            self._thread.start()
            threading.Thread(
                target=self.copies.prune, name="llmref-team-prune", daemon=True
            ).start()
        else:
            self._ready.set()

    @classmethod
    def from_settings(cls, settings: Settings) -> TeamIndex:
        return cls(
            str(settings.database),
            timeout_ms=settings.database_timeout_ms,
            cache_dir=Path(settings.cache) / "team",
        )

    # --- state ---------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    def _warn(self, message: str) -> None:
        with self._state_lock:
            if self._warned:
                return
            self._warned = True
        log.warning("%s", message)
        self.warnings.append(message)
        if self.on_warning is not None:
            try:
                self.on_warning(message)
            except Exception:
                pass

    def _fail(self, exc: BaseException) -> None:
        """The database did not answer: local results from now on, one warning, and a
        background reconnect."""
        self._up = False
        now = time.monotonic()
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, BACKOFF[1])
        reason = _reason(exc, self.url)
        if not self._warned:
            self._warn(
                f"the team database {self.masked} is unavailable ({reason}); searching the "
                "local corpus only, retrying in the background"
            )
        self._wake.set()

    def take_warnings(self) -> list[str]:
        out, self.warnings = self.warnings, []
        return out

    # --- calls on the worker ---------------------------------------------------------------------

    def _call(self, fn: Callable[[Any], Any], timeout_ms: int | None = None) -> Any:
        """``fn(connection)`` on the worker, waited for at most the timeout; a connection
        lost on the way is re-opened (next host of a multi-host URL) and ``fn`` retried once."""
        budget = (timeout_ms or self.timeout_ms) / 1000.0
        deadline = time.monotonic() + budget
        if not self._lock.acquire(timeout=budget):
            raise Busy(f"busy for more than {budget * 1000:.0f} ms")
        try:
            worker = self._worker
            if worker is None or worker.retired or not worker.is_alive():
                worker = self._worker = _Worker(self)
                worker.start()

            def task(w: _Worker) -> Any:
                psycopg = db.driver()
                for attempt in (0, 1):
                    conn = w.connection()
                    try:
                        if timeout_ms:
                            with conn.transaction():
                                conn.execute(
                                    "SELECT set_config('statement_timeout', %s, true)",
                                    (str(timeout_ms),),
                                )
                                return fn(conn)
                        return fn(conn)
                    except psycopg.OperationalError:
                        if attempt == 0 and (conn.broken or conn.closed):
                            w.drop()  # gone mid-call: reconnect (another host) and retry
                            continue
                        raise
                return None

            box = _Box(threading.Event())
            worker.tasks.put((task, box))
            if not box.done.wait(max(deadline - time.monotonic(), 0.001)):
                worker.retired = True  # abandon it: cancel its query, close its connection
                self._worker = None
                threading.Thread(target=_cancel, args=(worker,), daemon=True).start()
                raise Unavailable(f"no answer within {budget * 1000:.0f} ms")
            if box.error is not None:
                raise box.error
            return box.result
        finally:
            self._lock.release()

    def _guarded(self, fn: Callable[[Any], Any], timeout_ms: int | None = None) -> Any:
        """``_call`` for a search-path request: None (and the state goes down) when the
        database is unavailable; nothing is tried while it is down."""
        if not self._up:
            if self._ready.is_set() or not self._ready.wait(FIRST_CONNECT_WAIT):
                return None
            if not self._up:
                return None
        if time.monotonic() < self._retry_at:
            return None
        try:
            result = self._call(fn, timeout_ms)
        except Busy:  # our own searches queued up (typing fast): this one goes without
            return None
        except db.TeamError as exc:
            self._fail(exc)
        except Unavailable as exc:
            self._fail(exc)
        except Exception as exc:  # a driver error: the database is unwell, never the user
            psycopg = db.driver()
            if isinstance(exc, psycopg.errors.QueryCanceled):  # our statement_timeout
                budget = timeout_ms or self.timeout_ms
                self._fail(Unavailable(f"no answer within {budget} ms"))
            elif isinstance(exc, psycopg.Error):
                self._fail(exc)
            else:
                raise
        else:
            if self._warned or self._retry_delay != BACKOFF[0]:
                with self._state_lock:  # it answered: a later outage is news again
                    self._warned = False
                self._retry_delay = BACKOFF[0]
            return result
        return None

    # --- the background thread -------------------------------------------------------------------

    def _background(self) -> None:
        delay = BACKOFF[0]
        last_poll = 0.0
        while not self._stop.is_set():
            if not self._up:
                try:
                    generation = self._call(
                        _generation, timeout_ms=db.CONNECT_TIMEOUT_S * 1000 + 2000
                    )
                except Exception as exc:
                    if not self._ready.is_set() or not self._warned:
                        self._fail(exc)
                    self._ready.set()
                    self._wake.clear()
                    self._wake.wait(delay)
                    delay = min(delay * 2, BACKOFF[1])
                    continue
                if self._warned:
                    log.info("the team database %s is reachable again", self.masked)
                self._up = True
                self._ready.set()
                delay = BACKOFF[0]
                last_poll = time.monotonic()
                self._check_generation(generation)
            self._wake.clear()
            self._wake.wait(POLL_SECONDS if self._up else delay)
            if self._stop.is_set():
                break
            if self._up and time.monotonic() - last_poll >= POLL_SECONDS:
                last_poll = time.monotonic()
                generation = self._guarded(_generation)
                if generation is not None:
                    self._check_generation(generation)

    def _check_generation(self, generation: int | None) -> None:
        if generation is None or generation == self.concepts.generation or self._refreshing:
            return
        self._refreshing = True
        threading.Thread(target=self._refresh, args=(generation,), daemon=True,
                         name="llmref-team-cache").start()  # fmt: skip

    def _refresh(self, generation: int) -> None:
        """Reload the concept -> best entry map (background; hovers keep the old one)."""
        try:

            def load(conn) -> tuple[int, int, list]:
                row = conn.execute("SELECT generation, docs FROM llmref.stats").fetchone()
                return int(row[0]), int(row[1]), conn.execute(_CACHE_SQL).fetchall()

            found = self._guarded(load, CACHE_TIMEOUT_MS)
            if found is None:
                return
            gen, docs, rows = found
            items: dict[str, dict] = {}
            for concept, data, tiers, counts in rows:
                by_tier = dict(zip(tiers, counts, strict=True))
                best_tier = min(by_tier)
                allowed = (0, 2) if best_tier == 0 else (1, 2) if best_tier == 1 else (0, 1, 2, 3)
                items[concept] = {
                    "best": data,
                    "count": sum(n for t, n in by_tier.items() if t in allowed),
                    "questions": by_tier.get(0, 0),
                }
            self.concepts.replace(gen, docs, items)
            log.info("team concept map: %d concepts (generation %d)", len(items), gen)
            if self.on_refresh is not None:
                self.on_refresh()
        except Exception as exc:
            log.warning("refreshing the team concept map failed: %s", _reason(exc, self.url))
        finally:
            self._refreshing = False

    def close(self) -> None:
        with self._state_lock:
            self._stop.set()
            pool, self._pool = self._pool, None
        self._wake.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.retired = True
            worker.tasks.put(None)
        self.copies.flush()

    # --- statistics for the planner (lookup.Reference._prepare(stats=...)) -----------------------

    def doc_frequency(self, field: str, term: str) -> int:
        """Concepts: how many team questions name it (from the concept map). Words: 1 (the
        engine itself drops the alternatives whose terms the corpus lacks: Clause.prune)."""
        if field == "concepts":
            return self.concepts.questions(term)
        if field == "answer_concepts":
            return 0
        return 1

    def doc_count(self) -> int:
        return max(self.concepts.docs, 1)

    def holds(self, tokens: Sequence[str]) -> bool:
        """Whether the last search (this thread's) found all these tokens in the team corpus."""
        known: set[str] = getattr(self._local, "known", None) or set()
        return bool(known) and all(t in known for t in tokens)

    # --- search ------------------------------------------------------------------------------------

    def search_plan(self, compiled: Compiled, limit: int) -> TeamHits | None:
        """The best ``limit`` team hits of a compiled plan; None when unavailable."""
        return self._found(self._guarded(self._runner(compiled, limit)))

    def _runner(self, compiled: Compiled, limit: int) -> Callable[[Any], TeamHits]:
        return lambda conn: run(conn, compiled, k=self.k, m=self.m, r=limit)

    def _found(self, found: TeamHits | None) -> TeamHits | None:
        self._local.known = {t for (_f, t) in found.dfs} if found is not None else set()
        if found is not None:
            self._check_generation(found.generation)
        return found

    def begin(
        self, ref: Reference, query: str, concepts: Sequence[str] | None, limit: int
    ) -> Pending:
        """Send the team half of a search (the query planned with the team corpus's
        statistics) before the local half runs; ``merge`` collects it."""
        from ..lookup import RERANK

        planned = ref._prepare(query, concepts, stats=self)  # type: ignore[call-arg]
        compiled = compile_plan(planned.clauses)
        inner = self._runner(compiled, max(limit * 3, RERANK))
        sent = threading.Event()

        def runner(conn: Any) -> TeamHits:
            sent.set()
            return inner(conn)

        with self._state_lock:
            if self._stop.is_set():  # closed: searches still running get no team half
                future: Future = Future()
                future.set_result(None)
                return Pending(planned, compiled, future, limit)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(4, thread_name_prefix="llmref-team-search")
            future = self._pool.submit(self._guarded, runner)
        # the statement leaves before the local half starts: the local search is pure Python
        # and holds the interpreter lock, so the two hand-offs to the database's worker thread
        # would otherwise each wait out a switch interval (5 ms) while the database idles
        # (waited for at most SEND_WAIT: another search on the connection is not waited out)
        sent.wait(SEND_WAIT)
        return Pending(planned, compiled, future, limit)

    def merge(self, ref: Reference, pending: Pending, local: list[Result]) -> list[Result]:
        """Local results and the team's (``begin``), merged by normalized score.

        Each engine's BM25F score is divided by the highest score the query could reach in
        that corpus (``search.upper_bound``: the same plan, that corpus's document count and
        frequencies), which puts corpora of different sizes on one scale; both are then
        re-ranked by coverage (``Reference._rerank``) and merged, each engine's order kept."""
        from ..lookup import Result

        found = self._found(pending.future.result())
        planned, compiled = pending.planned, pending.compiled
        if found is None or not found.hits:
            return local
        hits = sorted(found.hits, key=lambda he: (-round(he[0].score, 6), he[1].source, he[1].line))
        candidates = [(Result(entry, hit.score), hit.terms) for hit, entry in hits]
        team = ref._rerank(planned, candidates)
        u_team = upper_bound(compiled, lambda f, t: found.dfs.get((f, t), 0), found.docs)
        with ref._lock:
            local_docs = ref.index.doc_count() if local else 1
            u_local = upper_bound(
                compiled, lambda f, t: ref.index.doc_frequency(FIELDS[f], t), local_docs
            )
        for r in local:
            r.score /= u_local or 1.0
        for r in team:
            r.score /= u_team or 1.0
        merged = _one_per_question(heapq.merge(local, team, key=lambda r: -r.score))
        shown = [r for r in merged[: pending.limit] if r.entry.id.startswith(PREFIX)]
        for i, r in enumerate(shown):
            # where the editor may jump at once (the first results) is on disk before we return
            self.copies.place(r.entry, now=i < COPIES_NOW)
        return merged

    # --- entries -------------------------------------------------------------------------------

    def get(self, entry_id: str, timeout_ms: int | None = None) -> Entry | None:
        found = self.entries([entry_id], timeout_ms)
        return found.get(entry_id)

    def entries(self, ids: Sequence[str], timeout_ms: int | None = None) -> dict[str, Entry]:
        ids = [i for i in dict.fromkeys(ids) if i.startswith(PREFIX)]
        if not ids:
            return {}

        def fetch(conn) -> list:
            return conn.execute(
                "SELECT id, data FROM llmref.entries WHERE id = ANY(%s)", (ids,)
            ).fetchall()

        rows = self._guarded(fetch, timeout_ms) or []
        return {i: self.copies.place(Entry.from_dict(json.loads(d)), now=True) for i, d in rows}

    def find_ids(self, prefix: str, limit: int = 20, timeout_ms: int | None = None) -> list[str]:
        """Team ids ``prefix`` names: itself, ids starting with it, or whose hash part does."""
        if not prefix:
            return []
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

        def find(conn) -> list:
            exact = conn.execute(
                "SELECT id FROM llmref.entries WHERE id = %s", (prefix,)
            ).fetchall()
            if exact:
                return [exact[0][0]]
            return [
                r[0]
                for r in conn.execute(
                    "SELECT e.id FROM llmref.entries e JOIN llmref.files f ON f.id = e.file "
                    "WHERE e.id LIKE %s ESCAPE '\\' OR e.id LIKE %s ESCAPE '\\' "
                    "ORDER BY f.sort, e.ord LIMIT %s",
                    (like + "%", "%:" + like + "%", limit),
                )
            ]

        return self._guarded(find, timeout_ms) or []

    def iter_entries(self, batch: int = 500) -> Iterator[Entry]:
        """Every team entry in corpus order (`llmref list`), a page at a time."""
        after: tuple[str, int] | None = None
        while True:
            last = after

            def page(conn, last=last) -> list:
                sql = (
                    "SELECT f.sort, e.ord, e.data FROM llmref.entries e "
                    "JOIN llmref.files f ON f.id = e.file "
                )
                if last is None:
                    return conn.execute(
                        sql + "ORDER BY f.sort, e.ord LIMIT %s", (batch,)
                    ).fetchall()
                return conn.execute(
                    sql + "WHERE (f.sort, e.ord) > (%s, %s) ORDER BY f.sort, e.ord LIMIT %s",
                    (*last, batch),
                ).fetchall()

            rows = self._guarded(page, LONG_TIMEOUT_MS)
            if not rows:
                return
            for _sort, _ord, data in rows:
                entry = Entry.from_dict(json.loads(data))
                entry.path = ""  # the publisher's checkout: not a file here (no copy per entry)
                yield entry
            after = (rows[-1][0], rows[-1][1])

    # --- cards ---------------------------------------------------------------------------------

    def card_parts(
        self, concept: Concept, best: Entry | None, others: list[Entry], more: int
    ) -> tuple[Entry | None, list[Entry], int]:
        """The card's best entry, its other sources and how many more answers, with the team's
        (from the local concept map: no database call)."""
        from ..ranking import about_key

        found = self.concepts.best(concept.id)
        if found is None:
            return best, others, more
        team_best, count = found
        self.copies.place(team_best, now=True)  # go-to-definition may open it at once
        if best is None:
            return team_best, [], max(count - 1, 0)
        mine, theirs = about_key(best, concept), about_key(team_best, concept)
        try:
            team_wins = theirs is not None and (mine is None or theirs < mine)
        except TypeError:
            team_wins = False
        if team_wins:
            return team_best, [], more + count
        return best, others, more + count


def _one_per_question(results: Iterable[Result]) -> list[Result]:
    """Merged results with a question the other corpus already answered higher up left out
    (a team that published the same interview notes as the bundled corpus): each corpus
    groups its own duplicates, this does it across them, for questions asked word for word."""
    out: list[Result] = []
    asked: dict[str, bool] = {}  # folded question -> from the team corpus
    for r in results:
        entry = r.entry
        if entry.layout in TEXT_LAYOUTS:  # a note's sections are not questions
            out.append(r)
            continue
        key = " ".join(fold(entry.question).split())
        team = entry.id.startswith(PREFIX)
        if asked.get(key, team) != team:
            continue
        asked.setdefault(key, team)
        out.append(r)
    return out


def _generation(conn) -> int:
    row = conn.execute("SELECT generation FROM llmref.stats").fetchone()
    return int(row[0]) if row else 0


def _cancel(worker: _Worker) -> None:
    conn = worker.conn
    if conn is None:
        return
    try:
        cancel = getattr(conn, "cancel_safe", None)
        if cancel is not None:
            cancel(timeout=2.0)
        else:
            conn.cancel()
    except Exception:
        pass
    worker.tasks.put(None)


def _reason(exc: BaseException, url: str) -> str:
    if isinstance(exc, db.TeamError):
        return str(exc)
    return db.describe(exc, url)


__all__ = ["ConceptCache", "FIELD_ID", "Hit", "TeamIndex", "Unavailable"]
