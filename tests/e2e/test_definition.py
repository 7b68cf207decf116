"""textDocument/definition: jump to the exact Q&A in the corpus."""

from __future__ import annotations

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import FIXTURES, open_doc, position_of, wait_loaded


async def test_capability_is_advertised(client: LanguageClient):
    assert client.init_result.capabilities.definition_provider


async def test_definition_of_a_term_is_its_best_qa(client: LanguageClient):
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "python")
    await wait_loaded(client)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, "past_key_values", 3),
        )
    )
    assert isinstance(result, types.Location)
    assert result.uri.endswith("/corpus/llm-interview-104-questions.md")
    assert result.range.start.line == 179
    assert result.range.end.line >= result.range.start.line


async def test_no_definition_on_ordinary_code(client: LanguageClient):
    path = FIXTURES / "model.py"
    text = path.read_text(encoding="utf-8")
    uri = open_doc(client, path, "python")
    await wait_loaded(client)
    result = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=position_of(text, "hidden_states", 2),
        )
    )
    assert result is None
