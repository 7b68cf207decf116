"""Completion: terms by prefix (case, separators, Chinese), cards on resolve, snippets."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import FIXTURES, open_doc, wait_loaded


async def complete(
    client: LanguageClient, uri: str, line: int, character: int
) -> types.CompletionList:
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
        )
    )
    assert isinstance(result, types.CompletionList)
    return result


async def test_capability_is_advertised(client: LanguageClient):
    provider = client.init_result.capabilities.completion_provider
    assert provider is not None and provider.resolve_provider


async def test_prefix_offers_the_term_and_resolve_brings_the_card(client: LanguageClient):
    uri = open_doc(client, FIXTURES / "scratch.py", "python", "x = RMSN")
    await wait_loaded(client)
    result = await complete(client, uri, 0, 8)
    labels = [i.label for i in result.items]
    assert labels[0] == "RMSNorm"
    assert "RMS Norm" not in labels  # one row per concept; its aliases are filter text
    item = result.items[0]
    assert "RMS Norm" in item.filter_text
    assert item.text_edit.new_text == "RMSNorm"
    assert item.text_edit.range.start.character == 4
    assert item.documentation is None  # the list stays light
    # the title once: in the detail, not again at the top of the card
    assert item.detail == "RMSNorm · 均方根归一化 / 均方根层归一化"
    resolved = await client.completion_item_resolve_async(item)
    doc = resolved.documentation.value
    assert "RMS Norm 相比于 Layer Norm" in doc
    assert doc.startswith("Source: [llm-interview-104-questions.md:685]")
    assert "均方根归一化" not in doc.split("\n")[0]


async def test_prefix_ignores_case_and_separators(client: LanguageClient):
    uri = open_doc(client, FIXTURES / "scratch.py", "python", "cache = kv_ca")
    await wait_loaded(client)
    labels = [i.label for i in (await complete(client, uri, 0, 13)).items]
    assert any(
        label.lower().replace("_", "").replace(" ", "").startswith("kvca") for label in labels
    )
    assert "kv_cache" in labels or "KV cache" in labels


async def test_chinese_prefix_inside_a_sentence(client: LanguageClient):
    text = "今天复习了旋转"
    uri = open_doc(client, FIXTURES / "scratch.md", "markdown", text)
    await wait_loaded(client)
    result = await complete(client, uri, 0, len(text))
    labels = [i.label for i in result.items]
    # the canonical Chinese name, once: RoPE's variants (旋转位置嵌入 …) are not rows of their own
    assert labels[0] == "旋转位置编码"
    assert "旋转位置嵌入" not in labels and "旋转式位置编码" not in labels
    item = result.items[0]
    assert item.text_edit.range.start.character == 5  # only 旋转 is replaced


async def test_code_snippet_from_the_corpus_in_code(client: LanguageClient):
    uri = open_doc(client, FIXTURES / "scratch.py", "python", "DeepNo")
    await wait_loaded(client)
    result = await complete(client, uri, 0, 6)
    snippet = next(i for i in result.items if i.kind == types.CompletionItemKind.Snippet)
    assert snippet.label == "DeepNormLayer"
    assert snippet.insert_text_format == types.InsertTextFormat.Snippet
    assert "class DeepNormLayer(nn.Module):" in snippet.text_edit.new_text
    doc = snippet.documentation.value
    assert doc.startswith("```python\nimport torch\n") and "class DeepNormLayer(nn.Module):" in doc
    assert "— [llm-interview-104-questions.md:697]" in doc


async def test_citation_snippet_in_notes(client: LanguageClient):
    uri = open_doc(client, FIXTURES / "scratch.md", "markdown", "复习 KV ca")
    await wait_loaded(client)
    result = await complete(client, uri, 0, 8)
    cite = next(i for i in result.items if i.label.endswith("— cite"))
    text = cite.text_edit.new_text
    assert text.startswith("**KV cache**（键值缓存）：")
    assert "llm-interview-104-questions.md:180" in text and "#L180" in text


async def test_no_completion_for_nothing_typed(client: LanguageClient):
    uri = open_doc(client, FIXTURES / "scratch.py", "python", "x = ")
    await wait_loaded(client)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=4),
        )
    )
    assert result is None
