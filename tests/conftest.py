"""Shared fixtures: every test gets its own index cache, never the user's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
sys.path.insert(0, str(ROOT / "server"))  # run from a checkout without installing, too
DATA = ROOT / "tests" / "data"  # copies of the team's shared data the tests need
# the team's shared folder (seed corpus, eval sets) beside the checkout, where there is one:
# the copies in DATA are checked against it
SHARED = Path(os.environ.get("LLMREF_SHARED", ROOT.parent / "shared"))


def shared_copy(path: Path) -> Path | None:
    """``path`` in the shared folder, to check a copy in DATA against; None where there is no
    shared folder (a clone elsewhere: the copy alone is used). CI has one beside its clone."""
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but there is no {path} (LLMREF_SHARED?)", pytrace=False)
    return None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "llmref-cache"
    monkeypatch.setenv("LLMREF_CACHE_DIR", str(cache))
    monkeypatch.setenv("LLMREF_CONFIG", str(tmp_path_factory.getbasetemp() / "no-config.yaml"))
    monkeypatch.delenv("LLMREF_CORPUS", raising=False)
    monkeypatch.delenv("LLMREF_DATABASE", raising=False)  # no team database unless a test sets one
    yield


@pytest.fixture(scope="session")
def reference():
    """The bundled corpus, indexed once per session in a private cache."""
    import tempfile

    from llmref.config import Settings
    from llmref.lookup import Reference

    cache = Path(tempfile.mkdtemp(prefix="llmref-ref-")) / "index"
    ref = Reference.open(Settings(cache=cache))
    yield ref
    ref.close()


def env_without_user_state(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LLMREF_CACHE_DIR"] = str(tmp_path / "cache")
    env["LLMREF_CONFIG"] = str(tmp_path / "no-config.yaml")
    env.pop("LLMREF_CORPUS", None)
    env.pop("LLMREF_DATABASE", None)
    return env
