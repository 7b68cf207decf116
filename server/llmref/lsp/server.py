"""The language server: state, background loading, and all feature wiring in one place.

Handlers are thin: each calls a function of one small module (hover, completion, …) that
returns lsprotocol types or None. One feature's failure is logged and answered with "nothing
here", never a crash. Logs go to stderr and to the editor (window/logMessage), never stdout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..cards import CardInput, render_card, to_plain
from ..config import Settings, load_settings
from ..glossary import Glossary
from ..terms import TermFinder
from . import commands, completion, definition, hover, symbols
from .loading import Loader
from .options import Options, parse_options
from .transport import LlmrefProtocol, serve_stdio, serve_tcp

if TYPE_CHECKING:
    from ..lookup import Reference

log = logging.getLogger("llmref.lsp")


class EditorLogHandler(logging.Handler):
    """Forwards llmref's log records to the editor's output (window/logMessage)."""

    LEVELS = {
        logging.ERROR: types.MessageType.Error,
        logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, server: LlmrefServer) -> None:
        super().__init__(logging.INFO)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("pygls"):
            return
        kind = self.LEVELS.get(record.levelno, types.MessageType.Log)
        try:
            message = self.format(record)
        except Exception:  # pragma: no cover
            return
        self.server.notify_soon(
            lambda: self.server.window_log_message(
                types.LogMessageParams(type=kind, message=message)
            )
        )


class LlmrefServer(LanguageServer):
    def __init__(self, cli_corpora: list[str] | None = None) -> None:
        super().__init__(
            "llmref",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=LlmrefProtocol,
        )
        self.cli_corpora = list(cli_corpora or [])
        self.options = Options()
        self.glossary: Glossary | None = None
        self.finder: TermFinder | None = None
        self.ref: Reference | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._cards: dict[tuple[str, str, int], str] = {}
        self.loader = Loader(self)
        self.markup_kind = types.MarkupKind.Markdown
        self._init_raw: dict = {}

    # --- threads and the event loop ------------------------------------------------------------

    def notify_soon(self, send) -> None:
        """Run a server->client send on the event loop (safe from any thread)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            if threading.current_thread() is threading.main_thread():
                send()
            else:
                loop.call_soon_threadsafe(send)
        except RuntimeError:  # loop closed during shutdown
            pass

    # --- settings and loading ----------------------------------------------------------------------

    def settings(self) -> Settings:
        corpora = [*self.options.corpus, *self.cli_corpora]
        settings = load_settings(corpora, bundled=self.options.bundled)
        settings.exclude.extend(self.options.exclude)
        if self.options.max_file_mb is not None:
            settings.max_file_bytes = int(self.options.max_file_mb * 1_000_000)
        if self.options.database is not None:
            settings.database = self.options.database
        if self.options.database_timeout_ms is not None:
            settings.database_timeout_ms = self.options.database_timeout_ms
        return settings

    def apply_options(self, raw: Any, *, source: str) -> bool:
        """Take new options; returns True when the corpus must be reloaded."""
        if source == "initializationOptions":
            self._init_raw = raw if isinstance(raw, dict) else {}
        elif isinstance(raw, dict):
            # settings refine what the editor passed at start-up; they do not wipe it
            raw = _merge(self._init_raw, raw)
        opts, problems = parse_options(raw)
        if problems:
            message = f"llmref: invalid {source} ({'; '.join(problems)}); using defaults for those."
            log.warning(message)
            self.notify_soon(
                lambda: self.window_show_message(
                    types.ShowMessageParams(type=types.MessageType.Warning, message=message)
                )
            )
        reload = opts.corpus_key() != self.options.corpus_key()
        self.options = opts
        self._cards.clear()
        return reload

    def load_glossary(self) -> None:
        self.loader.load_glossary()

    def shutdown_llmref(self) -> None:
        self.loader.stop()

    def show_message(self, kind: types.MessageType, message: str) -> None:
        self.notify_soon(
            lambda: self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        )

    def clear_cards(self) -> None:
        self._cards.clear()

    # --- cards -------------------------------------------------------------------------------------

    def card_text(self, concept: str) -> str | None:
        key = (concept, self.markup_kind, self.options.hover_max_lines)
        cached = self._cards.get(key)
        if cached is not None:
            return cached
        ref = self.ref
        card: CardInput | None
        if ref is not None:
            card = ref.card(concept)
        else:
            glossary = self.glossary
            c = glossary.get(concept) if glossary else None
            if glossary is None or c is None:
                return None
            related = [r for r in (glossary.get(x) for x in c.related) if r is not None]
            card = CardInput(c, None, [], related, 0, loading=True)
        if card is None:
            return None
        text = render_card(card, self.options.hover_max_lines)
        if self.markup_kind == types.MarkupKind.PlainText:
            text = to_plain(text)
        if ref is not None:
            self._cards[key] = text
        return text


def _safely(feature: str):
    """A handler's exception is logged and answered with None: it never sinks the server."""

    def wrap(fn):
        def handler(ls: LlmrefServer, params):
            try:
                return fn(ls, params)
            except Exception:
                log.exception("%s failed", feature)
                return None

        handler.__name__ = fn.__name__
        return handler

    return wrap


def create_server(cli_corpora: list[str] | None = None) -> LlmrefServer:
    server = LlmrefServer(cli_corpora)

    @server.feature(types.INITIALIZE)
    def on_initialize(ls: LlmrefServer, params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()
        formats = None
        try:
            formats = params.capabilities.text_document.hover.content_format  # type: ignore[union-attr]
        except AttributeError:
            formats = None
        if formats and types.MarkupKind.Markdown not in formats:
            ls.markup_kind = types.MarkupKind.PlainText
        ls.apply_options(params.initialization_options, source="initializationOptions")
        try:
            ls.load_glossary()
        except Exception:
            log.exception("loading the glossary failed")

    @server.feature(types.INITIALIZED)
    def on_initialized(ls: LlmrefServer, params: types.InitializedParams) -> None:
        ls.loader.start()
        ls.loader.watch()
        _register_watchers(ls)

    @server.feature(types.SHUTDOWN)
    def on_shutdown(ls: LlmrefServer, params: None) -> None:
        ls.shutdown_llmref()

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_safely("hover")
    def on_hover(ls: LlmrefServer, params: types.HoverParams) -> types.Hover | None:
        return hover.hover(ls, params)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(resolve_provider=True, trigger_characters=["_", "-"]),
    )
    @_safely("completion")
    def on_completion(
        ls: LlmrefServer, params: types.CompletionParams
    ) -> types.CompletionList | None:
        return completion.complete(ls, params)

    @server.feature(types.COMPLETION_ITEM_RESOLVE)
    def on_resolve(ls: LlmrefServer, item: types.CompletionItem) -> types.CompletionItem:
        try:
            return completion.resolve(ls, item)
        except Exception:
            log.exception("completion resolve failed")
            return item

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @_safely("definition")
    def on_definition(ls: LlmrefServer, params: types.DefinitionParams) -> types.Location | None:
        return definition.definition(ls, params)

    @server.thread()
    @server.feature(types.WORKSPACE_SYMBOL)
    @_safely("workspace symbols")
    def on_symbols(
        ls: LlmrefServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation] | None:
        return symbols.workspace_symbols(ls, params)

    @server.thread()
    @server.command(commands.SEARCH)
    def cmd_search(ls: LlmrefServer, *args: Any) -> Any:
        return commands.search(ls, args)

    @server.thread()
    @server.command(commands.SHOW)
    def cmd_show(ls: LlmrefServer, *args: Any) -> Any:
        return commands.show(ls, args)

    @server.command(commands.REINDEX)
    def cmd_reindex(ls: LlmrefServer, *args: Any) -> Any:
        ls.loader.start(rebuild=True)
        return {"started": True}

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def on_configuration(
        ls: LlmrefServer, params: types.DidChangeConfigurationParams
    ) -> None:
        raw = params.settings
        if _supports_configuration(ls):
            try:
                pulled = await ls.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="llmref")])
                )
                if pulled and pulled[0] is not None:
                    raw = pulled[0]
            except Exception:
                log.info("workspace/configuration failed; using the pushed settings")
        if isinstance(raw, dict) and "llmref" in raw:
            raw = raw["llmref"]
        if not isinstance(raw, dict) or not raw:
            return  # nothing for llmref (eglot pushes {} at start): keep the current options
        if ls.apply_options(raw, source="settings"):
            log.info("corpus folders changed; reloading")
            ls.load_glossary()
            ls.loader.schedule(full=True)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def on_watched(ls: LlmrefServer, params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            if ls.loader.in_corpus(Path(_uri_to_path(change.uri))):
                ls.loader.schedule()
                return

    return server


def _merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, recursively for nested objects."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _supports_configuration(ls: LlmrefServer) -> bool:
    try:
        return bool(
            ls.client_capabilities.workspace and ls.client_capabilities.workspace.configuration
        )
    except Exception:
        return False


def _uri_to_path(uri: str) -> str:
    from pygls.uris import to_fs_path

    return to_fs_path(uri) or uri


def _register_watchers(ls: LlmrefServer) -> None:
    """Ask the client to watch the user's corpus folders (when it can); polling covers the rest."""
    try:
        caps = ls.client_capabilities.workspace
        dynamic = bool(
            caps
            and caps.did_change_watched_files
            and caps.did_change_watched_files.dynamic_registration
        )
    except Exception:
        dynamic = False
    if not dynamic:
        return
    watchers = [
        types.FileSystemWatcher(glob_pattern="**/*.{md,markdown,mdown,mkd,txt,yaml,yml}"),
    ]
    registration = types.Registration(
        id="llmref-corpus-watch",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
    )
    try:
        ls.client_register_capability(types.RegistrationParams(registrations=[registration]))
        ls.loader.client_watches = True  # events arrive: the poll is only a safety net
    except Exception:
        log.info("the client did not accept file watching; polling instead")


def run(args) -> int:
    """``llmref serve``: LSP over stdio (default) or TCP; returns the exit status (``exit``
    after ``shutdown``: 0; ``exit`` alone, a broken stream or a lost client: 1)."""
    logging.getLogger("pygls").setLevel(logging.WARNING)
    server = create_server(getattr(args, "corpus", None))
    handler = EditorLogHandler(server)
    handler.setFormatter(logging.Formatter("%(message)s"))
    llmref_log = logging.getLogger("llmref")
    llmref_log.addHandler(handler)
    llmref_log.setLevel(logging.INFO)
    if getattr(args, "tcp", None):
        host, _, port = args.tcp.rpartition(":")
        return serve_tcp(server, host or "127.0.0.1", int(port))
    return serve_stdio(server)
