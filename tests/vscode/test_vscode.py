"""The VS Code extension in real VS Code: code-server in headless Chromium (tests/vscode/run.sh
and drive.js) with the VSIX installed in a fresh profile. Hover in code and in Chinese notes,
completion with its details card, the search QuickPick and the entry preview; screenshots go to
artifacts/vscode/.

Needs tests/vscode/install.sh (as root, once: ~3.5 min, ~900 MB) and the VSIX
(`bash extension/scripts/package.sh`). Skipped when either is missing, except under CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TOOLS = Path(os.environ.get("LLMREF_VSCODE_TOOLS", "/opt/llmref-vscode"))
VSIX = Path(os.environ.get("LLMREF_VSIX", ROOT / "extension" / "llmref.vsix"))
ARTIFACTS = Path(os.environ.get("LLMREF_ARTIFACTS", ROOT / "artifacts"))
SCREENSHOTS = ["hover-code.png", "hover-notes.png", "completion.png", "search.png", "entry.png"]


def missing_prerequisites() -> list[str]:
    missing = []
    needed = {
        "code-server": TOOLS / "code-server" / "bin" / "code-server",
        "Node 24": TOOLS / "node" / "bin" / "node",
        "playwright-core": TOOLS / "playwright" / "node_modules" / "playwright-core",
        "chromium": Path("/usr/bin/chromium"),
    }
    for name, path in needed.items():
        if not path.exists():
            missing.append(f"{name} ({path}; run tests/vscode/install.sh as root)")
    if not VSIX.is_file():
        missing.append(f"the VSIX ({VSIX}; run `bash extension/scripts/package.sh`)")
    return missing


def test_extension_in_code_server() -> None:
    missing = missing_prerequisites()
    if missing:
        reason = "real VS Code test needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the {reason}", pytrace=False)
        pytest.skip(reason)
    shots = ARTIFACTS / "vscode"
    env = {
        **os.environ,
        "LLMREF_VSCODE_TOOLS": str(TOOLS),
        "LLMREF_ARTIFACTS": str(ARTIFACTS),
        "LLMREF_TEST_PYTHON": sys.executable,  # -> the llmref.python.interpreter setting
    }
    proc = subprocess.run(
        ["bash", str(HERE / "run.sh"), str(VSIX)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"run.sh exited {proc.returncode}; screenshots in {shots}\n{output}"
    )
    absent = [name for name in SCREENSHOTS if not (shots / name).is_file()]
    assert not absent, f"missing screenshots {absent} in {shots}\n{output}"
