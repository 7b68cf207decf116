"""Loading and keeping the reference current inside the language server.

* At start: the glossary synchronously (hovers answer at once), then the index in a
  background thread. A full build runs in a child process (``workers.build_in_child``): its
  memory never stays in the server, it cannot stall the server's threads, and it dies with
  the server. Progress goes to the editor as ``$/progress``.
* A changed note file (``workspace/didChangeWatchedFiles``, or the poll for clients without
  file watching) is applied incrementally within a fraction of a second: only that file is
  re-read, and hover, completion and search see it as soon as the sync returns.
* A changed glossary or corpus setting reopens the reference (a new index, built beside the
  one in use, which keeps answering until the new one is ready).
* An index that fails while answering is rebuilt in the background; the user is told once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from lsprotocol import types

from ..config import Settings, bundled_corpus_dir, glossary_cache, glossary_paths
from ..corpus.loader import Scan, scan
from ..glossary import Glossary
from ..terms import TermFinder

if TYPE_CHECKING:
    import subprocess

    from ..lookup import Reference
    from .server import LlmrefServer

log = logging.getLogger("llmref.lsp")

POLL_SECONDS = 2.0  # user corpus folders are checked this often when the client cannot watch
WATCHED_POLL_SECONDS = 30.0  # … and this often when it sends workspace/didChangeWatchedFiles
SYNC_DELAY = 0.1  # debounce: a burst of file events makes one sync


def settle_heap() -> None:
    """Move what a load made (entries, glossary, the team's concept map) out of the cyclic
    collector's way (``gc.freeze``). Otherwise every full collection walks all of it, ~25 ms
    at a time on a 5k-entry notes folder with a team database, in the middle of whatever
    request allocated last: 6 such pauses in 315 searches were their p99 (50 -> 45 ms, max
    74 -> 50 ms). What earlier loads left unreachable is collected first; objects freed later
    by reference counting are freed as usual."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Loader:
    """Owns the server's reference: loads it, syncs it with the files, rebuilds it."""

    def __init__(self, server: LlmrefServer) -> None:
        self.server = server
        self._lock = threading.RLock()  # one load or sync at a time
        self._timer: threading.Timer | None = None
        self._pending_full = False
        self._stop = threading.Event()
        self._snapshot: dict[str, tuple[int, int]] = {}
        self._child: subprocess.Popen | None = None
        self._repairing = False
        self.loaded = threading.Event()
        self.client_watches = False

    # --- glossary ----------------------------------------------------------------------------

    def load_glossary(self) -> None:
        """The glossary, synchronously (~0.15 s): hovers work before the index is ready."""
        settings = self.server.settings()
        found = scan(settings.roots(), settings.rules())
        glossary = Glossary.load(
            glossary_paths(found.glossaries), cache_dir=glossary_cache(settings)
        )
        self.server.glossary, self.server.finder = glossary, TermFinder(glossary)

    # --- loading -------------------------------------------------------------------------------

    def start(self, *, rebuild: bool = False) -> None:
        threading.Thread(
            target=self.load, kwargs={"rebuild": rebuild}, name="llmref-load", daemon=True
        ).start()

    def load(self, rebuild: bool = False) -> None:
        """Open (or build) the reference for the current settings, then swap it in."""
        with self._lock:
            if self._stop.is_set():
                return
            progress = _Progress(self.server, f"llmref-index-{uuid.uuid4().hex[:8]}")
            started = time.perf_counter()
            settings = self.server.settings()
            try:
                from ..lookup import Reference  # Whoosh loads here, off the start-up path

                ref = Reference.open(
                    settings,
                    rebuild=rebuild,
                    progress=progress.report,
                    glossary=self.server.glossary,
                    builder=lambda full, root: self._build(settings, full, root, progress),
                )
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.error("loading the corpus failed: %s", exc)
                progress.end(f"failed: {exc}")
                self.loaded.set()
                return
            self._watch_team(ref)
            self._swap(ref)
            self._snapshot = self._files()
            self.loaded.set()
            state = "built" if ref.built else "updated" if ref.report else "loaded"
            log.info(
                "index %s: %d entries from %d files, %d concepts, in %.2fs",
                state, len(ref), ref.store.file_count(), len(ref.glossary),
                time.perf_counter() - started,
            )  # fmt: skip
            for problem in ref.problems:
                log.warning("%s", problem)
            progress.end(f"{len(ref)} entries")
            settle_heap()

    def _watch_team(self, ref: Reference) -> None:
        """The team database's one warning reaches the editor; a refreshed team concept map
        clears the rendered cards."""
        team = ref.team
        if team is None:
            return

        def warn(message: str) -> None:
            self.server.show_message(types.MessageType.Warning, f"llmref: {message}")

        def refreshed() -> None:
            self.server.clear_cards()
            settle_heap()  # the new concept map

        team.on_warning = warn
        team.on_refresh = refreshed
        for message in team.take_warnings():
            warn(message)

    def _build(self, settings: Settings, rebuild: bool, root: Path, progress: _Progress) -> None:
        from ..workers import build_in_child

        def started(proc: subprocess.Popen) -> None:
            self._child = proc
            if self._stop.is_set():
                proc.kill()

        try:
            build_in_child(
                settings, root, rebuild=rebuild, progress=progress.report, started=started
            )
        finally:
            self._child = None

    def _swap(self, ref: Reference) -> None:
        server = self.server
        old, server.ref = server.ref, ref
        if ref.glossary is not server.glossary:  # the same object when it was reused
            server.glossary, server.finder = ref.glossary, TermFinder(ref.glossary)
        server.clear_cards()
        if old is not None and old is not ref:
            # requests already running may still read the old index: close it later
            timer = threading.Timer(30.0, old.close)
            timer.daemon = True
            timer.start()

    # --- incremental updates ---------------------------------------------------------------------

    def schedule(self, *, full: bool = False, delay: float = SYNC_DELAY) -> None:
        """Sync with the files soon (debounced); ``full``: reopen (settings changed)."""
        self._pending_full = self._pending_full or full
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(delay, self._run_scheduled)
        self._timer.daemon = True
        self._timer.start()

    def _run_scheduled(self) -> None:
        full, self._pending_full = self._pending_full, False
        if full:
            self.load()
        else:
            self.sync()

    def sync(self) -> None:
        from ..lookup import ConfigChanged

        with self._lock:
            ref = self.server.ref
            if ref is None or self._stop.is_set():
                return
            started = time.perf_counter()
            try:
                report = ref.sync()
            except ConfigChanged as exc:
                log.info("%s; reloading", exc)
                self.load_glossary()
                self.load()
                return
            except Exception:
                log.exception("updating the index failed")
                return
            # what the sync found (no second walk of a big folder while searches wait)
            self._snapshot = self._files(ref.last_scan)
            if report is None:
                return
            self.server.clear_cards()
            log.info(
                "index updated: %d changed and %d removed files, %d entries, in %.0f ms",
                report.changed, report.removed, report.entries,
                (time.perf_counter() - started) * 1000,
            )  # fmt: skip

    def repair(self) -> None:
        """The index failed while answering: rebuild it in the background (once at a time)."""
        if self._repairing or self._stop.is_set():
            return
        self._repairing = True
        message = (
            "llmref: the search index is damaged; rebuilding it (answers are partial meanwhile)."
        )
        log.warning(message)
        self.server.show_message(types.MessageType.Warning, message)

        def run() -> None:
            try:
                ref = self.server.ref
                if ref is not None:
                    with self._lock:
                        ref.rebuild()
                    self.server.clear_cards()
                    log.info("the index is rebuilt: %d entries", len(ref))
            except Exception as exc:
                log.error("rebuilding the index failed: %s", exc)
            finally:
                self._repairing = False

        threading.Thread(target=run, name="llmref-repair", daemon=True).start()

    # --- watching ----------------------------------------------------------------------------------

    def _files(self, found: Scan | None = None) -> dict[str, tuple[int, int]]:
        """mtime/size of every file in the user's corpus folders (the bundled one is static);
        ``found``: a scan of every root already made (the bundled corpus's files are left out)."""
        settings = self.server.settings()
        roots = [(p, p.name) for p in settings.corpora]
        if not roots:
            return {}
        skip: set[Path] = set()
        if found is None:
            found = scan(roots, settings.rules())
        else:
            skip = {bundled_corpus_dir(), bundled_corpus_dir().resolve()}
        snap = {
            str(n.path): (n.mtime_ns, n.size)
            for n in found.notes
            if not skip or skip.isdisjoint(n.path.parents)
        }
        for path in found.glossaries:
            if skip and not skip.isdisjoint(path.parents):
                continue
            try:
                st = path.stat()
                snap[str(path)] = (st.st_mtime_ns, st.st_size)
            except OSError:
                continue
        return snap

    def watch(self) -> None:
        threading.Thread(target=self._poll, name="llmref-watch", daemon=True).start()

    def _poll(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(POLL_SECONDS):
            every = WATCHED_POLL_SECONDS if self.client_watches else POLL_SECONDS
            if time.monotonic() - last < every:
                continue
            last = time.monotonic()
            if not self.loaded.is_set() or not self.server.settings().corpora:
                continue
            try:
                snap = self._files()
            except Exception:  # pragma: no cover - a folder vanishing mid-walk
                continue
            if snap != self._snapshot:
                self._snapshot = snap
                log.info("corpus files changed; updating the index")
                self.schedule()

    def in_corpus(self, path: Path) -> bool:
        roots = [Path(p).expanduser().resolve() for p in self.server.settings().corpora]
        return any(path == r or r in path.parents for r in roots)

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()
        ref = self.server.ref
        if ref is not None:
            ref.close()


class _Progress:
    """$/progress for one load, created on the client if it supports it."""

    def __init__(self, server: LlmrefServer, token: str) -> None:
        self.server = server
        self.token = token
        self.enabled = _supports_progress(server)
        self.last = 0.0
        self.begun = False

    def _begin(self) -> None:
        if self.begun or not self.enabled:
            return
        self.begun = True

        def create() -> None:
            def begin(*_args) -> None:
                self.server.work_done_progress.begin(
                    self.token,
                    types.WorkDoneProgressBegin(
                        title="llmref", message="indexing the corpus", percentage=0
                    ),
                )

            try:
                self.server.work_done_progress.create(self.token, begin)
            except Exception:  # a client that refuses: no progress, no harm
                self.enabled = False

        self.server.notify_soon(create)

    def report(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        self._begin()
        if time.monotonic() - self.last < 0.1 and done < total:
            return
        self.last = time.monotonic()
        value = types.WorkDoneProgressReport(
            message=f"indexing: {100 * done // max(total, 1)}%",
            percentage=int(100 * done / max(total, 1)),
        )
        self.server.notify_soon(
            lambda: self._send(lambda: self.server.work_done_progress.report(self.token, value))
        )

    def end(self, message: str) -> None:
        if not self.enabled:
            return
        self._begin()
        value = types.WorkDoneProgressEnd(message=message)
        self.server.notify_soon(
            lambda: self._send(lambda: self.server.work_done_progress.end(self.token, value))
        )

    def _send(self, send) -> None:
        if self.token in self.server.work_done_progress.tokens:
            send()


def _supports_progress(server: LlmrefServer) -> bool:
    try:
        caps = server.client_capabilities
        return bool(caps.window and caps.window.work_done_progress)
    except Exception:
        return False
