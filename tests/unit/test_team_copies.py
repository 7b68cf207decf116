"""Local copies of team entries (team/copies.py): where a team hit opens on a reader's machine.
No database needed: the copies are made from the entry alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from llmref.corpus.entry import Entry
from llmref.team.copies import Copies, copy_text


def team_entry(source: str = "team:wiki/serving.md", line: int = 12, **kw) -> Entry:
    base = dict(
        id="team:wiki-serving:5f1901f5",
        question="如何为 Zephyrine 路由器配置 KV cache 预算？",
        answer="按租户切分。\n\n```yaml\nquota: 4GiB\n```",
        source=source,
        path="/builds/ci/notes/wiki/serving.md",  # the publisher's checkout
        line=line,
        end_line=line + 5,
    )
    base.update(kw)
    return Entry(**base)


def test_the_copy_holds_the_entry_at_its_own_line(tmp_path):
    copies = Copies(tmp_path / "copies")
    entry = copies.place(team_entry())
    copies.flush()
    path = Path(entry.path)
    assert path.is_file() and path.name == "serving.md"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("<!-- team:wiki/serving.md:12 · a read-only copy")
    assert lines[11] == "## 如何为 Zephyrine 路由器配置 KV cache 预算？"  # line 12
    assert "quota: 4GiB" in lines
    assert path.stat().st_mode & 0o777 == 0o444


def test_an_entry_on_the_first_line_has_no_header():
    text = copy_text(team_entry(line=1))
    assert text.startswith("## 如何为")


@pytest.mark.parametrize(
    "source",
    [
        "team:../../../../.bashrc",
        "team:/etc/passwd",
        "team:..\\..\\evil.md",
        "team:wiki/./../x\x00y\x1b[31m.md",
        "team:",
        "team:" + "/".join(["deep"] * 40) + "/n.md",
    ],
)
def test_hostile_source_paths_stay_inside_the_copies_folder(tmp_path, source):
    root = tmp_path / "copies"
    copies = Copies(root)
    entry = copies.place(team_entry(source=source))
    copies.flush()
    path = Path(entry.path)
    assert path.resolve().is_relative_to(root.resolve()), path
    assert path.is_file()
    assert not any(ch in str(path) for ch in "\x00\x1b")
    assert not (tmp_path / ".bashrc").exists()


def test_copies_are_written_once_and_rewritten_when_the_answer_changes(tmp_path):
    copies = Copies(tmp_path / "copies")
    first = copies.place(team_entry())
    copies.flush()
    path = Path(first.path)
    mtime = path.stat().st_mtime_ns
    copies.place(team_entry())  # same text: nothing written
    copies.flush()
    assert path.stat().st_mtime_ns == mtime
    changed = copies.place(team_entry(answer="按模型切分。"))
    copies.flush()
    assert changed.path == first.path
    assert "按模型切分" in path.read_text(encoding="utf-8")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_local_entries_and_a_missing_folder_keep_their_paths(tmp_path):
    local = team_entry(id="rope:1234abcd", source="notes.md", path=str(tmp_path / "notes.md"))
    assert Copies(tmp_path / "copies").place(local).path == str(tmp_path / "notes.md")
    assert Copies(None).place(team_entry()).path == "/builds/ci/notes/wiki/serving.md"


def test_a_planted_symlink_is_not_followed(tmp_path):
    root = tmp_path / "copies"
    root.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, root / "wiki")
    copies = Copies(root)
    entry = copies.place(team_entry())
    copies.flush()
    assert not any(target.iterdir())  # nothing written through the link
    assert not Path(entry.path).exists()


def test_a_copy_placed_now_is_on_disk_when_place_returns(tmp_path):
    copies = Copies(tmp_path / "copies")
    entry = copies.place(team_entry(), now=True)  # no flush: the editor opens it at once
    assert "## 如何为" in Path(entry.path).read_text(encoding="utf-8")


def test_old_copies_are_pruned_and_a_pruned_copy_is_written_again(tmp_path):
    copies = Copies(tmp_path / "copies")
    old = Path(copies.place(team_entry(), now=True).path)
    fresh = Path(copies.place(team_entry(line=40), now=True).path)
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    assert copies.prune() == 1
    assert not old.exists() and not old.parent.exists() and fresh.exists()
    assert Path(copies.place(team_entry(), now=True).path).exists()  # needed again: rewritten


def test_sources_whose_names_had_to_change_do_not_share_a_copy(tmp_path):
    copies = Copies(tmp_path / "copies")
    a = copies.place(team_entry(source="team:wiki/a:b.md", answer="A"), now=True)
    b = copies.place(team_entry(source="team:wiki/a_b.md", answer="B"), now=True)
    assert a.path != b.path
    assert "A" in Path(a.path).read_text(encoding="utf-8").splitlines()
    assert "B" in Path(b.path).read_text(encoding="utf-8").splitlines()
