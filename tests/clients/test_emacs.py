"""Emacs (batch) + eglot as the client: the raw `textDocument/hover` request, eglot's eldoc
function (the text users see) and `eglot-completion-at-point`.

eglot only asks for markdown hovers when markdown-mode is installed; without it the server
answers in plain text, so the card starts with `RMSNorm`, not `**RMSNorm**`. When
markdown-mode is missing the driver defines a stand-in `markdown-mode` (languageId
"markdown", as eglot derives it from the mode's name).
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


def run_emacs(
    emacs: str, client_env, name: str, file: str, mode: str, probe_list: list[dict]
) -> dict:
    spec = {
        "file": str(client_env.workspace / file),
        "root": str(client_env.workspace),
        "mode": mode,
        "cmd": SERVER_COMMAND,
        "init_options": INIT_OPTIONS,
        "probes": probe_list,
    }
    # -q, not -Q: -Q skips Debian's site-start, which puts elpa-eglot on the load path
    argv = [emacs, "--batch", "-q", "-l", str(HERE / "eglot_probe.el")]
    home = client_env.tmp / "emacs-home"  # ~/.emacs.d stays untouched
    home.mkdir(exist_ok=True)
    return run_editor(client_env, name, argv, spec, extra_env={"HOME": str(home)})


@pytest.fixture(scope="module")
def emacs() -> str:
    return require_editor("emacs")  # before client_env: no index build just to skip


@pytest.fixture(scope="module")
def python_run(emacs, client_env):
    return run_emacs(
        emacs, client_env, "emacs-python", "modeling_llama.py", "python-mode", PYTHON_PROBES
    )


@pytest.fixture(scope="module")
def markdown_run(emacs, client_env):
    return run_emacs(
        emacs, client_env, "emacs-markdown", "notes.md", "markdown-mode", MARKDOWN_PROBES
    )


def card_title(probe: dict, title: str) -> str:
    """How the card's first line looks in the kind of markup eglot asked for."""
    return f"**{title}**" if probe["kind"] == "markdown" else title


def test_language_ids(python_run, markdown_run):
    assert python_run["language_id"] == "python"
    assert markdown_run["language_id"] == "markdown"


def test_hover_on_class_name_shows_rmsnorm_card(python_run):
    probe = probes(python_run)["class"]
    value = probe["value"]
    assert value is not None, probe
    assert value.startswith(card_title(probe, "RMSNorm")), value[:200]
    assert "RMS Norm 相比于 Layer Norm" in value, value
    line = fixture_line("modeling_llama.py", 5)
    rng = probe["range"]
    assert lsp_slice(line, rng["start"]["character"], rng["end"]["character"]) == "LlamaRMSNorm"


def test_eldoc_shows_the_card(python_run):
    probe = probes(python_run)["class"]
    eldoc = probe["eldoc"]
    assert eldoc is not None, probe
    assert eldoc.startswith("RMSNorm"), eldoc[:200]  # eglot renders markdown; `**` is gone
    assert "RMS Norm 相比于 Layer Norm" in eldoc, eldoc


def test_no_hover_on_ordinary_identifier(python_run):
    probe = probes(python_run)["plain"]
    assert probe["position"] == {"line": 10, "character": 22}  # on `hidden_states`
    assert probe["value"] is None, probe["value"]
    assert probe["eldoc"] is None, probe["eldoc"]


def test_completion_offers_rmsnorm(python_run):
    probe = probes(python_run)["rmsn"]
    assert probe["prefix"] == "RMSN"
    assert "RMSNorm" in probe["labels"], probe["labels"]
    assert "RMSNorm" in probe["matches"], probe["matches"]


@pytest.mark.parametrize("name, line", [("rope", 3), ("rope_after_emoji", 5)])
def test_hover_in_chinese_prose_shows_rope_card(markdown_run, name, line):
    probe = probes(markdown_run)[name]
    text = fixture_line("notes.md", line)
    # eglot counts UTF-16 units (the emoji on line 5 is two)
    char = lsp_column(text, text.index("位置"))
    assert probe["position"] == {"line": line - 1, "character": char}
    value = probe["value"]
    assert value is not None, probe
    assert value.startswith(card_title(probe, "RoPE") + " · 旋转位置编码"), value[:200]
    assert probe["eldoc"].startswith("RoPE · 旋转位置编码"), probe["eldoc"][:200]
    rng = probe["range"]
    assert lsp_slice(text, rng["start"]["character"], rng["end"]["character"]) == "旋转位置编码"


def test_completion_of_chinese_prefix(markdown_run):
    # the server offers the term after "下一步：旋转" (its textEdit replaces just 旋转), but
    # eglot 1.9 takes the whole run of CJK text before point as the typed prefix and
    # filters the items by it, so a user sees them only when 旋转 starts a "symbol" for
    # Emacs (after a space, as in the list item) -- see docs/editors.md
    probe = probes(markdown_run)["zh_prefix"]
    assert probe["prefix"].endswith("旋转")
    assert "旋转位置编码" in probe["labels"], probe["labels"]
    probe = probes(markdown_run)["zh_list_item"]
    assert probe["prefix"] == "旋转"
    assert "旋转位置编码" in probe["matches"], probe["matches"]
