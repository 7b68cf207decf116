"""workspace/executeCommand: llmref.search, llmref.show, llmref.reindex."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import wait_loaded


async def run(client: LanguageClient, command: str, *args):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(args))
    )


async def test_commands_are_advertised(client: LanguageClient):
    commands = client.init_result.capabilities.execute_command_provider.commands
    assert {"llmref.search", "llmref.show", "llmref.reindex"} <= set(commands)


async def test_search_returns_the_cli_json_shape(client: LanguageClient):
    await wait_loaded(client)
    results = await run(client, "llmref.search", "RMSNorm", 3)
    assert 1 <= len(results) <= 3
    first = results[0]
    assert {"id", "question", "answer", "source", "line", "score", "concepts"} <= set(first)
    assert "RMS Norm" in first["question"]


async def test_show_returns_the_full_entry_as_markdown(client: LanguageClient):
    await wait_loaded(client)
    hit = (await run(client, "llmref.search", "Deep Norm 代码"))[0]
    shown = await run(client, "llmref.show", hit["id"])
    assert shown["id"] == hit["id"]
    assert shown["markdown"].startswith("# 写一下 Deep Norm 代码实现？")
    assert "class DeepNormLayer(nn.Module):" in shown["markdown"]
    assert "Source: [llm-interview-104-questions.md:697]" in shown["markdown"]


async def test_bad_arguments_get_an_error_not_a_crash(client: LanguageClient):
    await wait_loaded(client)
    assert "error" in await run(client, "llmref.show", "no-such-id")
    assert "error" in await run(client, "llmref.search", 42)
    # the server still answers
    assert isinstance(await run(client, "llmref.search", "LoRA"), list)


async def test_reindex_rebuilds_and_keeps_answering(client: LanguageClient):
    await wait_loaded(client)
    assert (await run(client, "llmref.reindex")) == {"started": True}
    await wait_loaded(client)
    assert (await run(client, "llmref.search", "KV cache"))[0]["line"] == 180
