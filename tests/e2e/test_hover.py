"""Hover: the card of the term under the cursor, and silence on ordinary code."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import FIXTURES, open_doc, position_of, wait_loaded


async def hover_at(client: LanguageClient, uri: str, text: str, needle: str, offset: int = 1):
    return await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, needle, offset),
        )
    )


async def test_capability_is_advertised(client: LanguageClient):
    assert client.init_result.capabilities.hover_provider


async def test_hover_identifier_in_code_shows_the_rmsnorm_card(client: LanguageClient):
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "python")
    await wait_loaded(client)
    result = await hover_at(client, uri, text, "LlamaRMSNorm", 3)
    assert result is not None
    value = result.contents.value
    title, source = value.split("\n")[:2]
    assert title.startswith("**RMSNorm**")
    # the citation right under the title: what VS Code shows without scrolling
    assert source.startswith("Source: [llm-interview-104-questions.md:685](file://")
    assert source.endswith("· 1 more answer")
    assert "RMS Norm 相比于 Layer Norm 有什么特点？" in value
    line = text.splitlines()[result.range.start.line]
    assert line[result.range.start.character : result.range.end.character] == "LlamaRMSNorm"


@pytest.mark.parametrize(
    ("needle", "title"),
    [
        ("kv_cache", "**KV cache**"),
        ("past_key_values", "**KV cache**"),
        ("repeat_kv", "**Grouped-query attention**"),
        ("apply_rotary_pos_emb", "**RoPE**"),
    ],
)
async def test_hover_concept_identifiers(client: LanguageClient, needle, title):
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "python")
    await wait_loaded(client)
    result = await hover_at(client, uri, text, needle, 2)
    assert result is not None and result.contents.value.startswith(title)


@pytest.mark.parametrize(
    "needle", ["self.", "value =", "hidden_states", "forward", "dropout", "weight"]
)
async def test_no_hover_on_ordinary_identifiers(client: LanguageClient, needle):
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "python")
    await wait_loaded(client)
    assert await hover_at(client, uri, text, needle, 1) is None


async def test_hover_chinese_term_inside_unsegmented_text(client: LanguageClient):
    path = FIXTURES / "notes.md"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "markdown")
    await wait_loaded(client)
    result = await hover_at(client, uri, text, "位置编码", 1)
    assert result is not None
    assert result.contents.value.startswith("**RoPE** · 旋转位置编码")
    assert "旋转位置编码 RoPE 思路是什么？" in result.contents.value
    line = text.splitlines()[result.range.start.line]
    # UTF-16 columns: the range covers exactly the Chinese term
    assert line[result.range.start.character : result.range.end.character] == "旋转位置编码"


async def test_hover_multiword_term_in_notes(client: LanguageClient):
    path = FIXTURES / "notes.md"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "markdown")
    await wait_loaded(client)
    result = await hover_at(client, uri, text, "KV cache", 4)
    assert result is not None and result.contents.value.startswith("**KV cache**")
