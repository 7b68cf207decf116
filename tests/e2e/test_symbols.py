"""workspace/symbol: the editor's symbol search is corpus search."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import wait_loaded


async def test_capability_is_advertised(client: LanguageClient):
    assert client.init_result.capabilities.workspace_symbol_provider


async def test_symbol_search_finds_corpus_answers_with_locations(client: LanguageClient):
    await wait_loaded(client)
    symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="KV cache"))
    assert symbols
    first = symbols[0]
    assert first.name == "什么是 Kv cache 技术，它具体是如何实现的？"
    assert first.location.uri.endswith("/corpus/llm-interview-104-questions.md")
    assert first.location.range.start.line == 179  # line 180, 0-based
    assert "llm-interview-104-questions.md" in first.container_name


async def test_chinese_symbol_query(client: LanguageClient):
    await wait_loaded(client)
    symbols = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="旋转位置编码"))
    assert symbols[0].name.startswith("旋转位置编码 RoPE")


async def test_empty_query_is_empty(client: LanguageClient):
    await wait_loaded(client)
    assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="")) == []
