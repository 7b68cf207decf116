"""Cards, snippet docs and `llmref.show` stay inert whatever a user's notes and glossary hold:
the attack report's payloads, through the real server over stdio. Every markdown answer is
rendered to HTML (tests/unit/test_sanitize.py: strictly) and must hold no command:/javascript:
link, no image, no raw HTML, no file link out of the corpus roots."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from llmref.config import bundled_corpus_dir

from ..unit.test_sanitize import problems
from .conftest import CACHE, FIXTURES, open_doc, server_env, start, wait_loaded

PAYLOADS = """\
[run](command:workbench.action.terminal.new) [js](javascript:alert(1))
![remote](http://evil.example/track.png) [x]( command:workbench.action.terminal.new )
[y](command:evil 'single-quoted title') [[nested [brackets]]](command:evil)
[split
over two lines](command:evil) [ref link][evil] ![ref image][pic]
![x]( http://evil.example/x.png ) [passwd](../../../../etc/passwd) [e](&#99;ommand:evil)
<command:evil> <img src="http://evil.example/x.png" onerror="alert(1)">

[evil]: command:workbench.action.terminal.new
[pic]: http://evil.example/x.png
"""

GLOSSARY = f"""\
- name: Zorblax attention
  zh: [佐布拉克斯注意力]
  code: [zorblax_attn]
  definition: |
{"".join("    " + line + chr(10) for line in PAYLOADS.splitlines())}
"""

NOTE = f"""\
# Zorblax

## 什么是 Zorblax attention？

{PAYLOADS}
~~~python
class ZorblaxLayer:
    x = 1
```
[run](command:workbench.action.terminal.new)
<img src=x onerror=alert(1)>
```
    y = 2
~~~

[the other note](other.md) [up](../../../../etc/passwd)
"""

RAW = ClientServerConfig(
    server_command=[sys.executable, "-m", "llmref", "serve", "--stdio"],
    server_env=server_env(CACHE),
)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile-notes"
    folder.mkdir()
    (folder / "glossary.yaml").write_text(GLOSSARY, encoding="utf-8")
    (folder / "zorblax.md").write_text(NOTE, encoding="utf-8")
    (folder / "other.md").write_text("# Other\n\nnothing here\n", encoding="utf-8")
    return folder


@pytest_lsp.fixture(config=RAW)
async def raw_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


def roots(notes: Path) -> list[Path]:
    return [notes.resolve(), bundled_corpus_dir().resolve()]


def assert_inert(markdown: str, notes: Path) -> None:
    assert problems(markdown, roots(notes)) == [], markdown
    assert "etc/passwd" not in markdown.replace("../../../../etc/passwd", "")


async def test_hover_and_completion_cards_are_inert(raw_client: LanguageClient, notes: Path):
    await start(raw_client, {"corpus": [str(notes)]})
    await wait_loaded(raw_client)
    text = "x = zorblax_attn\ny = zorbl"
    uri = open_doc(raw_client, FIXTURES / "scratch.py", "python", text)
    hover = await raw_client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=8),
        )
    )
    assert hover is not None
    card = hover.contents.value
    assert card.startswith(
        "**Zorblax attention** · 佐布拉克斯注意力  \nSource: [hostile-notes/zorblax.md:3]"
    )
    assert "[image: remote](http://evil.example/track.png)" in card  # linked, never embedded
    assert_inert(card, notes)

    result = await raw_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=len("y = zorbl")),
        )
    )
    assert isinstance(result, types.CompletionList)
    term = next(i for i in result.items if i.label == "zorblax_attn")
    assert term.detail == "Zorblax attention · 佐布拉克斯注意力"
    resolved = await raw_client.completion_item_resolve_async(term)
    doc = resolved.documentation.value
    assert doc.startswith("Source: [hostile-notes/zorblax.md:3]")  # the title is the item's detail
    assert_inert(doc, notes)

    # the code block held a ``` line: it stays one snippet, and its docs stay one code block
    snippet = next(i for i in result.items if i.kind == types.CompletionItemKind.Snippet)
    assert snippet.label == "ZorblaxLayer"
    assert "[run](command:workbench.action.terminal.new)" in snippet.text_edit.new_text
    assert_inert(snippet.documentation.value, notes)
    assert snippet.documentation.value.startswith("````python\nclass ZorblaxLayer:")


async def test_show_is_inert(raw_client: LanguageClient, notes: Path):
    await start(raw_client, {"corpus": [str(notes)]})
    await wait_loaded(raw_client)
    hits = await raw_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="llmref.search", arguments=["Zorblax attention"])
    )
    hit = next(h for h in hits if h["source"].endswith("zorblax.md"))
    shown = await raw_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="llmref.show", arguments=[hit["id"]])
    )
    markdown = shown["markdown"]
    assert markdown.startswith("# Zorblax › 什么是 Zorblax attention？")
    assert_inert(markdown, notes)
    # a link to another note inside the corpus stays a link; one out of it is text
    other = (notes / "other.md").resolve().as_uri()
    assert f"[the other note]({other})" in markdown
    assert "[up](" not in markdown and " up" in markdown
    assert "passwd" in markdown and "file:///etc" not in markdown
