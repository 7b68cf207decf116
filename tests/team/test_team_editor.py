"""Real editors (headless Neovim, Emacs + eglot in batch) with a team database, on a machine
where the published notes do not exist: the publisher's checkout is deleted before the editor
starts, as it never existed on a reader's machine. The card, go-to-definition and symbol
search must land on the team's Q&A (a local read-only copy), not on the publisher's path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.clients.conftest import HERE as CLIENTS
from tests.clients.conftest import (
    SERVER_COMMAND,
    ClientEnv,
    editor_env,
    probes,
    require_editor,
    run_editor,
)

from .conftest import make_db
from .test_team import write_notes

NOTE = "# 复习\n\n今天复习了 KV cache 的显存预算。\n"
PROBES = [  # `until`: the concept map and the connection come up in the background
    {"name": "card", "method": "hover", "find": "KV cache", "until": "team:wiki"},
    {"name": "definition", "method": "definition", "find": "KV cache", "until": "team-"},
    {"name": "symbol", "method": "symbol", "query": "Zephyrine shed load", "until": "Zephyrine"},
]


@pytest.fixture(scope="module")
def published(pg, tmp_path_factory):
    from llmref.team.publish import publish

    db = make_db(pg.primary, "editor")
    checkout = tmp_path_factory.mktemp("publisher")
    publish([write_notes(checkout)], db.writer)
    shutil.rmtree(checkout)  # the reader's machine never had it
    return db


def reader_setup(tmp: Path, published, probe_list: list[dict]) -> tuple[ClientEnv, dict]:
    """A reader's editor environment (a note open, the team database in the server
    options, no local corpus) and the probe spec for it."""
    workspace = tmp / "workspace"
    workspace.mkdir()
    (workspace / "notes.md").write_text(NOTE, encoding="utf-8")
    spec = {
        "file": str(workspace / "notes.md"),
        "root": str(workspace),
        "cmd": SERVER_COMMAND,
        "init_options": {"database": published.reader, "databaseTimeoutMs": 2000, "bundled": False},
        "probes": probe_list,
    }
    return ClientEnv(editor_env(tmp), workspace, tmp), spec


@pytest.fixture(scope="module")
def run(published, tmp_path_factory) -> dict:
    nvim = require_editor("nvim")
    env, spec = reader_setup(tmp_path_factory.mktemp("team-nvim"), published, PROBES)
    argv = [nvim, "--headless", "--clean", "-i", "NONE", "-n", "-u"]
    argv.append(str(CLIENTS / "nvim_probe.lua"))
    return run_editor(env, "nvim-team", argv, spec, timeout=120)


def _landed_on_the_team_copy(probe: dict, question: str) -> Path:
    landed = probe.get("landed")
    assert landed, probe
    path = Path(landed["file"])
    assert path.is_file(), landed  # not the publisher's path: that is gone
    assert "-copies" in str(path) and path.name == "serving.md", path  # named like the original
    assert landed["text"].startswith("## ") and question in landed["text"], landed  # on it
    text = path.read_text(encoding="utf-8")
    assert "a read-only copy from the team database" in text.splitlines()[0]
    assert path.stat().st_mode & 0o777 == 0o444  # read-only: the team's notes are edited elsewhere
    return path


def test_the_card_cites_the_team_entry_and_links_a_file_that_exists(run):
    probe = probes(run)["card"]
    value = (probe.get("result") or {}).get("contents", {}).get("value", "")
    assert "team:wiki/serving.md:3" in value, value
    link = value.split("team:wiki/serving.md:3](", 1)[1].split(")", 1)[0]
    assert link.startswith("file://") and link.endswith("#L3"), link
    from urllib.parse import unquote, urlparse

    path = Path(unquote(urlparse(link).path))
    assert path.is_file(), path
    line = path.read_text(encoding="utf-8").splitlines()[2]
    assert line.startswith("## ") and "如何为 Zephyrine" in line, line


def test_go_to_definition_opens_the_team_answer(run):
    probe = probes(run)["definition"]
    path = _landed_on_the_team_copy(probe, "如何为 Zephyrine 路由器配置 KV cache 预算？")
    assert probe["landed"]["cursor"][0] == 3  # the line the card cites
    assert "按租户切分" in path.read_text(encoding="utf-8")


def test_symbol_search_opens_the_team_answer(run):
    probe = probes(run)["symbol"]
    first = probe["result"][0]
    assert first["containerName"].startswith("team:wiki/serving.md"), first
    _landed_on_the_team_copy(probe, "Why does the Zephyrine router shed load?")
    assert probe["landed"]["cursor"][0] == 7


@pytest.fixture(scope="module")
def emacs_run(published, tmp_path_factory) -> dict:
    emacs = require_editor("emacs")
    tmp = tmp_path_factory.mktemp("team-emacs")
    env, spec = reader_setup(tmp, published, [PROBES[1]])  # go-to-definition (M-.)
    spec["mode"] = "markdown-mode"
    home = tmp / "emacs-home"
    home.mkdir()
    argv = [emacs, "--batch", "-q", "-l", str(CLIENTS / "eglot_probe.el")]
    return run_editor(env, "emacs-team", argv, spec, {"HOME": str(home)}, 120)


def test_emacs_go_to_definition_opens_the_team_answer(emacs_run):
    probe = probes(emacs_run)["definition"]
    landed = probe["landed"]
    path = Path(landed["file"])
    assert path.is_file() and "-copies" in str(path) and path.name == "serving.md", landed
    assert landed["line"] == 3 and "如何为 Zephyrine" in landed["text"], landed
    assert landed["readonly"] is True  # Emacs opens the 0444 copy read-only
