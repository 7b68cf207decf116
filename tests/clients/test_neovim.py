"""Neovim (0.7+, headless) as the client: `vim.lsp.start_client` + `buf_request_sync`.

Neovim's cursor columns are bytes; the driver asks `make_position_params(0, encoding)` for
the LSP position, with the encoding the server chose (UTF-16 with Neovim 0.7, which offers no
other), and these tests check it against the column of the Chinese text in those units.
"""

from __future__ import annotations

import pytest

from .conftest import (
    HERE,
    INIT_OPTIONS,
    MARKDOWN_PROBES,
    PYTHON_PROBES,
    SERVER_COMMAND,
    fixture_line,
    lsp_column,
    lsp_slice,
    probes,
    require_editor,
    run_editor,
)


def run_nvim(nvim: str, client_env, name: str, file: str, probe_list: list[dict]) -> dict:
    spec = {
        "file": str(client_env.workspace / file),
        "root": str(client_env.workspace),
        "cmd": SERVER_COMMAND,
        "init_options": INIT_OPTIONS,
        "probes": probe_list,
    }
    argv = [nvim, "--headless", "--clean", "-i", "NONE", "-n", "-u", str(HERE / "nvim_probe.lua")]
    return run_editor(client_env, name, argv, spec)


@pytest.fixture(scope="module")
def nvim() -> str:
    return require_editor("nvim")  # before client_env: no index build just to skip


@pytest.fixture(scope="module")
def python_run(nvim, client_env):
    return run_nvim(nvim, client_env, "nvim-python", "modeling_llama.py", PYTHON_PROBES)


@pytest.fixture(scope="module")
def markdown_run(nvim, client_env):
    return run_nvim(nvim, client_env, "nvim-markdown", "notes.md", MARKDOWN_PROBES)


def test_python_buffer_is_python(python_run):
    assert python_run["filetype"] == "python"  # so the server saw languageId "python"


def enc(run: dict) -> str:
    return run["offset_encoding"]


def test_hover_on_class_name_shows_rmsnorm_card(python_run):
    probe = probes(python_run)["class"]
    hover = probe["result"]
    assert hover is not None, probe
    assert hover["contents"]["kind"] == "markdown"
    value = hover["contents"]["value"]
    assert value.startswith("**RMSNorm**"), value[:200]
    assert "RMS Norm 相比于 Layer Norm" in value, value
    # the range is the whole identifier, not just the RMSNorm inside it
    line = fixture_line("modeling_llama.py", 5)
    rng = hover["range"]
    assert rng["start"]["line"] == rng["end"]["line"] == 4
    assert lsp_slice(line, rng["start"]["character"], rng["end"]["character"], enc(python_run)) == (
        "LlamaRMSNorm"
    )


def test_no_hover_on_ordinary_identifier(python_run):
    probe = probes(python_run)["plain"]
    assert probe["position"] == {"line": 10, "character": 22}  # on `hidden_states`
    assert probe.get("result") is None, probe["result"]


def test_completion_offers_rmsnorm(python_run):
    probe = probes(python_run)["rmsn"]
    assert probe["position"] == {"line": 16, "character": len("norm = RMSN")}
    assert "RMSNorm" in probe["labels"], probe["labels"]
    item = next(i for i in probe["items"] if i["label"] == "RMSNorm")
    rng = item["textEdit"]["range"]  # replaces the typed prefix
    assert (rng["start"]["character"], rng["end"]["character"]) == (7, 11)


def test_markdown_buffer_is_markdown(markdown_run):
    assert markdown_run["filetype"] == "markdown"


@pytest.mark.parametrize("name, line", [("rope", 3), ("rope_after_emoji", 5)])
def test_hover_in_chinese_prose_shows_rope_card(markdown_run, name, line):
    probe = probes(markdown_run)[name]
    text = fixture_line("notes.md", line)
    # the editor sent LSP units (UTF-16 on 0.7), not the byte column its cursor is at
    char = text.index("位置")
    column = lsp_column(text, char, enc(markdown_run))
    assert probe["position"] == {"line": line - 1, "character": column}
    assert probe["cursor"] == [line, len(text[:char].encode("utf-8"))]
    hover = probe["result"]
    assert hover is not None, probe
    value = hover["contents"]["value"]
    assert value.startswith("**RoPE** · 旋转位置编码"), value[:200]
    rng = hover["range"]
    assert lsp_slice(
        text, rng["start"]["character"], rng["end"]["character"], enc(markdown_run)
    ) == ("旋转位置编码")


@pytest.mark.parametrize("name, line", [("zh_prefix", 7), ("zh_list_item", 9)])
def test_completion_of_chinese_prefix(markdown_run, name, line):
    probe = probes(markdown_run)[name]
    text = fixture_line("notes.md", line)
    column = lsp_column(text, len(text), enc(markdown_run))
    assert probe["position"] == {"line": line - 1, "character": column}
    assert "旋转位置编码" in probe["labels"], probe["labels"]
    item = next(i for i in probe["items"] if i["label"] == "旋转位置编码")
    rng = item["textEdit"]["range"]  # replaces just the typed 旋转
    assert lsp_slice(
        text, rng["start"]["character"], rng["end"]["character"], enc(markdown_run)
    ) == ("旋转")
