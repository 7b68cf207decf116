"""The configs in docs/editors.md, run as users would: the snippet is the editor's init
file, `llmref` is a command on PATH, cards are read where the user sees them (Neovim's `K`
float, eglot's eldoc), and `corpus: ["~/notes"]` must reach the server."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HERE, ROOT, require_editor, run_editor

DOCS = ROOT / "docs" / "editors.md"
NOTE_QUESTION = "What is FlashAttention-9000?"


def snippet(name: str) -> str:
    """The code block right after `<!-- check: NAME -->` in docs/editors.md."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(rf"<!-- check: {re.escape(name)} -->\n```\w*\n(.*?)\n```", text, re.S)
    assert m, f"docs/editors.md has no checked block {name!r}"
    return m.group(1) + "\n"


@pytest.fixture(scope="module")
def user(client_env):
    """A home with ~/notes (one Q&A of the user's), a git project, `llmref` on PATH, and the
    index for bundled + ~/notes built up front."""
    home = client_env.tmp / "home"
    notes = home / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "mine.md").write_text(
        f"# My notes\n\n## {NOTE_QUESTION}\n\nA made-up kernel from my notes.\n", encoding="utf-8"
    )
    project = home / "project"
    if not project.exists():
        (project / ".git").mkdir(parents=True)
        for f in ("modeling_llama.py", "notes.md"):
            (project / f).write_bytes((client_env.workspace / f).read_bytes())
    bin_dir = client_env.tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "llmref"  # the console script, for this checkout
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m llmref "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = {
        **client_env.env,
        "HOME": str(home),
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
    }
    index = subprocess.run(
        [str(wrapper), "index", "--corpus", str(notes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert index.returncode == 0, index.stderr
    return {"home": home, "project": project, "env": env}


def files(project: Path) -> list[dict]:
    return [
        {"file": str(project / "modeling_llama.py"), "find": "LlamaRMSNorm", "line": 5},
        {"file": str(project / "notes.md"), "find": "位置", "line": 3},
    ]


def found_note(search) -> bool:
    # the note's sections are named by their heading path ("My notes › What is …")
    return any(str(r.get("question", "")).endswith(NOTE_QUESTION) for r in search or [])


def nvim_version(path: str) -> tuple[int, int]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def run_nvim_config(client_env, user, nvim: str, name: str) -> dict:
    config = client_env.tmp / f"{name}.init.lua"
    config.write_text(snippet(name), encoding="utf-8")
    spec = {"files": files(user["project"]), "search": "FlashAttention-9000"}
    argv = [nvim, "--headless", "--clean", "-n", "-u", str(config)]
    argv += ["-c", f"luafile {HERE / 'docs_check.lua'}"]
    return run_editor(client_env, f"docs-{name}", argv, spec, extra_env=user["env"])


def check_nvim(result: dict, user) -> None:
    py, md = result["files"]
    assert (py["filetype"], md["filetype"]) == ("python", "markdown")
    assert py["attached"] and md["attached"], result
    assert py["client_id"] == md["client_id"], "one server for the project"
    assert py["root_dir"] == str(user["project"])
    assert py["hover"].startswith("**RMSNorm**"), py["hover"]
    assert "RMS Norm 相比于 Layer Norm" in py["hover"]
    assert md["hover"].startswith("**RoPE** · 旋转位置编码"), md["hover"]
    assert md["omnifunc"] == "v:lua.vim.lsp.omnifunc"  # <C-x><C-o> completes
    assert found_note(result.get("search")), result.get("search")


def test_neovim_0_7_config(client_env, user):
    nvim = require_editor("nvim")  # Debian's 0.7.2 here; the snippet serves 0.7-0.10
    check_nvim(run_nvim_config(client_env, user, nvim, "nvim-0.7"), user)


def test_neovim_0_11_config(client_env, user):
    # a Neovim 0.11+ binary: $LLMREF_TEST_NVIM, or `nvim` when it is new enough
    nvim = os.environ.get("LLMREF_TEST_NVIM") or require_editor("nvim")
    if nvim_version(nvim) < (0, 11):
        pytest.skip(f"{nvim} is older than 0.11 (set LLMREF_TEST_NVIM to a 0.11+ nvim)")
    check_nvim(run_nvim_config(client_env, user, nvim, "nvim-0.11"), user)


def test_emacs_eglot_config(client_env, user):
    emacs = require_editor("emacs")
    config = client_env.tmp / "emacs-eglot.init.el"
    config.write_text(snippet("emacs-eglot"), encoding="utf-8")
    spec = {
        "config": str(config),
        "files": files(user["project"]),
        "search": "FlashAttention-9000",
    }
    argv = [emacs, "--batch", "-q", "-l", str(HERE / "docs_check.el")]
    result = run_editor(client_env, "docs-emacs-eglot", argv, spec, extra_env=user["env"])
    py, md = result["files"]
    assert (py["language_id"], md["language_id"]) == ("python", "markdown")
    assert py["eldoc"].startswith("RMSNorm"), py["eldoc"]
    assert "RMS Norm 相比于 Layer Norm" in py["eldoc"]
    assert md["eldoc"].startswith("RoPE · 旋转位置编码"), md["eldoc"]
    assert found_note(result.get("search")), result.get("search")
