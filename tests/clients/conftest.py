"""Real editors (Neovim, Emacs + eglot) driving the real server over stdio.

Each editor runs headless with a driver script (nvim_probe.lua, eglot_probe.el) that reads a
JSON spec (file, server command, probes), runs the requests through the editor's own LSP
client and writes the results as JSON; the tests assert on those results in Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = HERE / "fixtures"
SERVER_COMMAND = [sys.executable, "-m", "llmref", "serve", "--stdio"]
INIT_OPTIONS = {  # what a user would put in their editor config
    "languages": ["python", "markdown", "plaintext"],
    "hover": {"enabled": True, "maxLines": 40},
    "completion": {"enabled": True, "snippets": True},
}


def require_editor(binary: str) -> str:
    """The editor's path; skip when it is missing (fail under CI, which installs it)."""
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} is not installed (tests/clients/install.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


_UNIT = {"utf-8": ("utf-8", 1), "utf-16": ("utf-16-le", 2), "utf-32": ("utf-32-le", 4)}


def lsp_column(line: str, char_index: int, encoding: str = "utf-16") -> int:
    """An LSP `character` for a Python str index (UTF-16 code units unless negotiated)."""
    codec, width = _UNIT[encoding]
    return len(line[:char_index].encode(codec)) // width


def lsp_slice(line: str, start: int, end: int, encoding: str = "utf-16") -> str:
    """The text between two LSP columns of `line`."""
    codec, width = _UNIT[encoding]
    return line.encode(codec)[width * start : width * end].decode(codec)


@dataclass
class ClientEnv:
    env: dict[str, str]
    workspace: Path  # a copy of fixtures/ (editors may leave swap or lock files)
    tmp: Path


def editor_env(tmp: Path) -> dict[str, str]:
    """The environment of an editor run: our server on PYTHONPATH, its cache and config, and
    the editor's own config and state under ``tmp`` (nothing from $HOME)."""
    env = dict(os.environ)
    env.pop("LLMREF_CORPUS", None)
    env.pop("LLMREF_DATABASE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "server"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["LLMREF_CACHE_DIR"] = str(tmp / "cache")
    env["LLMREF_CONFIG"] = str(tmp / "no-config.yaml")
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp / "xdg" / var.lower())
    return env


@pytest.fixture(scope="session")
def client_env(tmp_path_factory) -> ClientEnv:
    """One cache for every editor run, with the index built up front (so the first hover
    already has the Q&A), user config and editor state kept out of $HOME."""
    tmp = tmp_path_factory.mktemp("clients")
    env = editor_env(tmp)
    index = subprocess.run(
        [sys.executable, "-m", "llmref", "index"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert index.returncode == 0, index.stderr
    workspace = tmp / "workspace"
    shutil.copytree(FIXTURES, workspace)
    return ClientEnv(env=env, workspace=workspace, tmp=tmp)


def run_editor(
    client_env: ClientEnv,
    name: str,
    argv: list[str],
    spec: dict,
    extra_env: dict[str, str] | None = None,
    timeout: float = 90,
) -> dict:
    """Run one headless editor session; its JSON results (plus wall time as `wall_s`)."""
    spec_path = client_env.tmp / f"{name}.spec.json"
    out_path = client_env.tmp / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    out_path.unlink(missing_ok=True)
    env = {
        **client_env.env,
        **(extra_env or {}),
        "LLMREF_PROBE_SPEC": str(spec_path),
        "LLMREF_PROBE_OUT": str(out_path),
    }
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        env=env,
        cwd=client_env.workspace,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    wall = time.monotonic() - started
    output = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert out_path.exists(), f"{name}: no results written\n{output}"
    result = json.loads(out_path.read_text(encoding="utf-8"))
    assert proc.returncode == 0 and "error" not in result, (
        f"{name}: {result.get('error')}\n{output}"
    )
    result["wall_s"] = round(wall, 2)
    return result


def probes(result: dict) -> dict[str, dict]:
    return {p["name"]: p for p in result["probes"]}


# What both editors are asked, by fixture file. `line` is 1-based; `after` puts the cursor
# after `find` (where it is when you have just typed it).
PYTHON_PROBES = [
    {"name": "class", "method": "hover", "find": "LlamaRMSNorm"},
    {"name": "plain", "method": "hover", "find": "hidden_states"},
    {"name": "rmsn", "method": "completion", "find": "RMSN", "line": 17, "after": True},
]
MARKDOWN_PROBES = [
    {"name": "rope", "method": "hover", "find": "位置", "line": 3},
    {"name": "rope_after_emoji", "method": "hover", "find": "位置", "line": 5},
    {"name": "zh_prefix", "method": "completion", "find": "旋转", "line": 7, "after": True},
    {"name": "zh_list_item", "method": "completion", "find": "旋转", "line": 9, "after": True},
]


def fixture_line(name: str, line: int) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()[line - 1]
