"""pytest-lsp: the real server over stdio, a client that says it is VS Code."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def server_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "server")
    env["LLMREF_CACHE_DIR"] = str(cache)
    env["LLMREF_CONFIG"] = str(cache / "no-config.yaml")
    env.pop("LLMREF_CORPUS", None)
    env.pop("LLMREF_DATABASE", None)
    return env


CACHE = Path(os.environ.get("LLMREF_E2E_CACHE", "/tmp")) / f"llmref-e2e-{os.getpid()}"

CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(CACHE),
)


async def start(client: LanguageClient, options: dict | None = None, root: Path = FIXTURES) -> None:
    if types.CLIENT_REGISTER_CAPABILITY not in client.protocol.fm.features:
        # like VS Code: accept the server's dynamic registrations (file watchers)
        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def _register(params: types.RegistrationParams) -> None:
            client.registrations = getattr(client, "registrations", []) + list(params.registrations)

    client.init_result = await client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options or {},
        )
    )


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient):
    await start(lsp_client)
    yield
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, path: Path, language: str, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id=language,
                version=1,
                text=text if text is not None else path.read_text(encoding="utf-8"),
            )
        )
    )
    return uri


async def wait_loaded(client: LanguageClient, timeout: float = 30.0) -> None:
    """Until the corpus is indexed (llmref.search stops answering "loading")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="llmref.search", arguments=["KV cache"])
        )
        if isinstance(result, list):
            return
        await __import__("asyncio").sleep(0.1)
    raise TimeoutError("the corpus did not load")


def position_of(text: str, needle: str, offset: int = 1) -> types.Position:
    """The LSP position (UTF-16 columns) of ``needle`` + offset characters."""
    for lineno, line in enumerate(text.splitlines()):
        col = line.find(needle)
        if col >= 0:
            prefix = line[: col + offset]
            return types.Position(line=lineno, character=len(prefix.encode("utf-16-le")) // 2)
    raise ValueError(needle)
