"""Options (initializationOptions, didChangeConfiguration), user corpus folders re-indexed on
change without a restart, and bad input never crashing the server."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .conftest import CACHE, FIXTURES, open_doc, position_of, server_env, start, wait_loaded

RAW = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(CACHE),
)


@pytest_lsp.fixture(config=RAW)
async def raw_client(lsp_client: LanguageClient):
    """A client that has not initialized yet: the test chooses the options."""
    yield
    await lsp_client.shutdown_session()


async def search(client: LanguageClient, query: str):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="llmref.search", arguments=[query])
    )


async def until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise TimeoutError


async def test_invalid_options_fall_back_to_defaults_with_one_message(raw_client: LanguageClient):
    await start(
        raw_client,
        {"languages": 42, "hover": {"maxLines": "many"}, "completion": {"enabled": "yes"}},
    )
    await wait_loaded(raw_client)
    warnings = [m for m in raw_client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1
    text = warnings[0].message
    assert "languages" in text and "hover.maxLines" in text and "completion.enabled" in text
    path = FIXTURES / "model.py"
    uri = open_doc(raw_client, path, "python")
    hover = await raw_client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(path.read_text(encoding="utf-8"), "LlamaRMSNorm", 2),
        )
    )
    assert hover is not None  # defaults still on


async def test_languages_option_limits_where_hovers_appear(raw_client: LanguageClient):
    await start(raw_client, {"languages": ["markdown"]})
    await wait_loaded(raw_client)
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(raw_client, path, "python")
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position_of(text, "LlamaRMSNorm", 2),
    )
    assert await raw_client.text_document_hover_async(params) is None
    # and the user turns python on without a restart
    raw_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"llmref": {"languages": ["python", "markdown"]}}
        )
    )
    assert await until(lambda: raw_client.text_document_hover_async(params))


async def test_settings_are_pulled_like_vscode_does(raw_client: LanguageClient):
    await start(raw_client, {"languages": ["markdown"]})
    await wait_loaded(raw_client)
    path = FIXTURES / "model.py"
    uri = open_doc(raw_client, path, "python")
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position_of(path.read_text(encoding="utf-8"), "kv_cache", 2),
    )
    assert await raw_client.text_document_hover_async(params) is None
    # pytest-lsp answers workspace/configuration from its stored configuration, as VS Code
    # answers from the user's settings
    raw_client.set_configuration({"languages": ["*"], "hover": {"enabled": True}}, section="llmref")
    raw_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    assert await until(lambda: raw_client.text_document_hover_async(params))


async def test_hover_length_and_plaintext(raw_client: LanguageClient):
    await start(raw_client, {"hover": {"maxLines": 3}})
    await wait_loaded(raw_client)
    path = FIXTURES / "notes.md"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(raw_client, path, "markdown")
    hover = await raw_client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, "KV cache", 3),
        )
    )
    assert hover is not None
    assert "…" in hover.contents.value  # the long answer was cut


async def test_user_corpus_folder_is_searched_and_reindexed_on_change(
    raw_client: LanguageClient, tmp_path: Path
):
    notes = tmp_path / "my-notes"
    notes.mkdir()
    (notes / "serving.md").write_text(
        "### 1. 什么是连续批处理 continuous batching？\n\n动态拼批。\n", encoding="utf-8"
    )
    await start(raw_client, {"corpus": [str(notes)]})
    await wait_loaded(raw_client)
    results = await search(raw_client, "continuous batching")
    assert results[0]["source"] == "my-notes/serving.md"
    # a new note appears: re-indexed without a restart (watcher or polling)
    (notes / "more.md").write_text(
        "### 1. 什么是投机解码 speculative decoding？\n\n草稿模型。\n", encoding="utf-8"
    )
    raw_client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(uri=(notes / "more.md").as_uri(), type=types.FileChangeType.Created)
            ]
        )
    )

    async def found():
        res = await search(raw_client, "speculative decoding")
        return isinstance(res, list) and res and res[0]["source"] == "my-notes/more.md"

    assert await until(found)


async def test_configuration_change_adds_a_corpus_folder(
    raw_client: LanguageClient, tmp_path: Path
):
    notes = tmp_path / "later"
    notes.mkdir()
    (notes / "a.md").write_text(
        "## 梯度检查点\n\n用计算换显存 gradient checkpointing。\n", encoding="utf-8"
    )
    await start(raw_client, {})
    await wait_loaded(raw_client)
    raw_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"llmref": {"corpus": [str(notes)]}})
    )

    async def found():
        res = await search(raw_client, "梯度检查点")
        return isinstance(res, list) and res and res[0]["source"] == "later/a.md"

    assert await until(found)


async def test_broken_requests_never_crash_the_server(client: LanguageClient):
    await wait_loaded(client)
    missing = (FIXTURES / "does-not-exist.py").as_uri()
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=missing),
            position=types.Position(line=0, character=0),
        )
    )
    assert hover is None
    uri = open_doc(client, FIXTURES / "scratch.py", "python", "x = 1\n")
    far = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=99, character=99),
        )
    )
    assert far is None
    assert isinstance(await search(client, "KV cache"), list)


async def test_logs_reach_the_editor_not_stdout(client: LanguageClient):
    await wait_loaded(client)
    await until(lambda: _has_log(client))


async def _has_log(client: LanguageClient):
    return any("entries" in m.message and "index" in m.message for m in client.log_messages)


@pytest.mark.parametrize("flag", [["--stdio"], []])
def test_serve_accepts_stdio_flag(flag):
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "llmref", "serve", *flag],
        input=b"",
        capture_output=True,
        timeout=30,
        env=server_env(CACHE),
    )
    assert proc.stdout == b""  # nothing but LSP on stdout


async def test_an_empty_settings_push_keeps_the_startup_options(
    raw_client: LanguageClient, tmp_path: Path
):
    """eglot pushes {"settings": {}} right after start: that must not wipe initializationOptions."""
    notes = tmp_path / "kept"
    notes.mkdir()
    (notes / "a.md").write_text(
        "## 连续批处理\n\ncontinuous batching 动态拼批。\n", encoding="utf-8"
    )
    await start(raw_client, {"corpus": [str(notes)], "languages": ["markdown"]})
    await wait_loaded(raw_client)
    raw_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    await asyncio.sleep(1.0)
    results = await search(raw_client, "连续批处理")
    assert results[0]["source"] == "kept/a.md"
