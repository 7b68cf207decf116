"""`llmref serve` with the ``"database"`` option: symbol search and hovers include the team
corpus (real server over stdio, real PostgreSQL)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.e2e.conftest import open_doc, server_env, start

from .conftest import make_db
from .test_team import write_notes

CACHE = Path(os.environ.get("LLMREF_E2E_CACHE", "/tmp")) / f"llmref-team-e2e-{os.getpid()}"

CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(CACHE),
)


@pytest.fixture(scope="module")
def published(pg, tmp_path_factory):
    from llmref.team.publish import publish

    db = make_db(pg.primary, "lsp")
    publish([write_notes(tmp_path_factory.mktemp("notes"))], db.writer)
    return db


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient, published):
    options = {"database": published.reader, "databaseTimeoutMs": 2000, "bundled": False}
    await start(lsp_client, options)
    yield
    await lsp_client.shutdown_session()


async def test_symbol_search_and_hover_include_the_team_corpus(client: LanguageClient, tmp_path):
    deadline = time.monotonic() + 60
    symbols: list = []
    while time.monotonic() < deadline:
        symbols = (
            await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Zephyrine"))
            or []
        )
        if symbols:
            break
        time.sleep(0.3)
    assert symbols, "no team results"
    assert "team:wiki/serving.md" in symbols[0].container_name
    assert "Zephyrine" in symbols[0].name

    note = tmp_path / "n.md"
    text = "今天复习了 KV cache 的显存预算\n"
    uri = open_doc(client, note, "markdown", text)
    column = text.index("KV cache") + 1
    deadline = time.monotonic() + 30
    value = ""
    while time.monotonic() < deadline:
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=0, character=column),
            )
        )
        value = hover.contents.value if hover and hasattr(hover.contents, "value") else ""
        if "team:wiki/serving.md" in value:
            break
        time.sleep(0.3)
    # the card's Q&A is the team's (from the concept map the server keeps locally)
    assert "KV cache" in value and "team:wiki/serving.md" in value
