"""Start-up: hovers answer from the glossary at once while the index builds in the background,
with $/progress reported to the editor."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import FIXTURES, open_doc, position_of, server_env, start, wait_loaded

# a cache nobody else uses: this server always starts by building the index
FRESH = Path(os.environ.get("TMPDIR", "/tmp")) / f"llmref-fresh-{uuid.uuid4().hex[:8]}"

FRESH_CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(FRESH),
)


@pytest_lsp.fixture(config=FRESH_CONFIG)
async def fresh_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def test_cold_start_answers_at_once_then_indexes_with_progress(fresh_client: LanguageClient):
    await start(fresh_client)
    path = FIXTURES / "notes.md"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(fresh_client, path, "markdown")
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position_of(text, "位置编码", 1),
    )
    started = time.monotonic()
    first = await fresh_client.text_document_hover_async(params)
    assert time.monotonic() - started < 1.0  # not blocked by the index build
    assert first is not None and first.contents.value.startswith("**RoPE**")
    await wait_loaded(fresh_client, timeout=60)
    full = await fresh_client.text_document_hover_async(params)
    assert "旋转位置编码 RoPE 思路是什么？" in full.contents.value

    async def progress_ended():
        for reports in fresh_client.progress_reports.values():
            if (
                reports
                and isinstance(reports[0], types.WorkDoneProgressBegin)
                and isinstance(reports[-1], types.WorkDoneProgressEnd)
            ):
                return reports
        return None

    deadline = time.monotonic() + 10
    reports = None
    while reports is None and time.monotonic() < deadline:
        reports = await progress_ended()
        await asyncio.sleep(0.1)
    assert reports is not None, fresh_client.progress_reports
    assert reports[0].title == "llmref"
    assert "170 entries" in (reports[-1].message or "")
