"""The VSIXes carry a server that runs from their own files: each one unpacked, its bundled
llmref run by a bare Python (`python -S`: no site-packages, only the VSIX's bundled/libs), as
the extension runs it. The Linux x64 VSIX segments Chinese with rjieba and has no jieba; the
universal one is pure Python and falls back to jieba.

Needs the VSIXes (`bash extension/scripts/package.sh linux-x64 universal`); each test is
skipped when its VSIX is missing, except under CI, which builds both.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXTENSION = ROOT / "extension"
MB = 1024 * 1024

PROBE = """
import json, yaml, llmref
from llmref.normalize import SEGMENTER
print(json.dumps({"segmenter": SEGMENTER.identity(), "libyaml": yaml.__with_libyaml__,
                  "llmref": llmref.__file__}))
"""


def unpack(name: str, tmp_path: Path) -> Path:
    vsix = EXTENSION / name
    if not vsix.is_file():
        reason = f"no {vsix} (run `bash extension/scripts/package.sh linux-x64 universal`)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but there is {reason}", pytrace=False)
        pytest.skip(reason)
    with zipfile.ZipFile(vsix) as z:
        z.extractall(tmp_path)
    return tmp_path / "extension" / "bundled" / "libs"


def bare_python(libs: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(libs),  # what the extension sets
        "LLMREF_CACHE_DIR": str(tmp_path / "cache"),
        "LLMREF_CONFIG": str(tmp_path / "no-config.yaml"),
        "PYTHONIOENCODING": "utf-8",
    }
    return subprocess.run(
        [sys.executable, "-S", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def check_runs(libs: Path, tmp_path: Path) -> dict:
    probe = bare_python(libs, tmp_path, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["llmref"]).is_relative_to(libs), found  # not the checkout's llmref
    search = bare_python(libs, tmp_path, "-m", "llmref", "search", "旋转位置编码", "-n", "1")
    assert search.returncode == 0, search.stderr
    assert "旋转位置编码 RoPE" in search.stdout.splitlines()[0]
    return found


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"), reason="not Linux x64"
)
def test_linux_x64_vsix_runs_with_rjieba_and_no_jieba(tmp_path):
    vsix = EXTENSION / "llmref-linux-x64.vsix"
    libs = unpack(vsix.name, tmp_path)
    assert (libs / "rjieba").is_dir()
    assert not (libs / "jieba").exists()
    assert vsix.stat().st_size < 10 * MB, f"{vsix.name}: {vsix.stat().st_size / MB:.1f} MB"
    found = check_runs(libs, tmp_path)
    assert found["segmenter"] == "rjieba"
    assert found["libyaml"], "PyYAML's C loader for this Python is missing"


def test_universal_vsix_is_pure_python_and_falls_back_to_jieba(tmp_path):
    libs = unpack("llmref.vsix", tmp_path)
    assert (libs / "jieba").is_dir()
    assert not (libs / "rjieba").exists()
    binaries = [p for p in libs.rglob("*") if p.suffix in (".so", ".pyd", ".dylib")]
    assert not binaries, binaries
    found = check_runs(libs, tmp_path)
    assert found["segmenter"] == "jieba"
