"""The on-disk index: reused while the corpus is unchanged, rebuilt when it changes,
never left half-built, rebuilt when corrupt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmref.config import Settings
from llmref.lookup import Reference

NOTE = "# Notes\n\n### 1. 什么是 KV cache？\n\n缓存已经算过的 key 和 value。\n\n### 2. What is RoPE?\n\nRotary position embedding.\n"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "inference.md").write_text(NOTE, encoding="utf-8")
    return folder


def open_ref(notes: Path, cache: Path, **kw) -> Reference:
    return Reference.open(Settings(corpora=[notes], bundled=False, cache=cache), **kw)


def test_index_is_reused_while_nothing_changes(notes, tmp_path):
    cache = tmp_path / "cache"
    first = open_ref(notes, cache)
    assert first.built and len(first) == 3  # two questions and the "# Notes" heading
    first.close()
    second = open_ref(notes, cache)
    assert not second.built and len(second) == 3
    assert second.search("KV cache").results[0].entry.question == "什么是 KV cache？"
    second.close()


def test_index_is_rebuilt_when_a_note_changes(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    with (notes / "inference.md").open("a", encoding="utf-8") as f:
        f.write("\n### 3. 什么是 PagedAttention？\n\n分页管理 KV cache。\n")
    ref = open_ref(notes, cache)
    assert ref.built and len(ref) == 4
    assert ref.search("PagedAttention").results[0].entry.question == "什么是 PagedAttention？"
    ref.close()


def test_index_is_rebuilt_when_a_note_is_added_or_removed(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    (notes / "more.md").write_text("### 1. 什么是 LoRA？\n\n低秩。\n", encoding="utf-8")
    ref = open_ref(notes, cache)
    assert ref.built and len(ref) == 4
    ref.close()
    (notes / "more.md").unlink()
    ref = open_ref(notes, cache)
    assert len(ref) == 3
    ref.close()


def test_forced_rebuild(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    ref = open_ref(notes, cache, rebuild=True)
    assert ref.built
    ref.close()


def _index_dir(cache: Path) -> Path:
    (found,) = [p for p in cache.iterdir() if p.name.startswith("ix-")]
    return found


@pytest.mark.parametrize(
    "damage", ["truncate-segments", "drop-meta", "garbage-entries", "drop-toc"]
)
def test_corrupt_index_is_detected_and_rebuilt(notes, tmp_path, damage):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    ix = _index_dir(cache)
    if damage == "truncate-segments":
        for seg in ix.glob("*.seg"):
            seg.write_bytes(seg.read_bytes()[:20])
    elif damage == "drop-meta":
        (ix / "llmref-meta.json").unlink()
    elif damage == "garbage-entries":
        (ix / "entries.json").write_text("{not json", encoding="utf-8")
    else:
        for toc in ix.glob("*.toc"):
            toc.unlink()
    ref = open_ref(notes, cache)
    assert ref.built, damage
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    ref.close()


def test_a_crashed_build_leaves_nothing_that_is_opened(notes, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / "building-crashed"
    stale.mkdir()
    (stale / "junk").write_text("half an index")
    old = 10**9
    os.utime(stale, (old, old))
    ref = open_ref(notes, cache)
    assert ref.built and len(ref) == 3
    ref.close()
    assert not stale.exists()  # old leftovers are swept
    assert not [p for p in cache.iterdir() if p.name.startswith("building-")]


def test_build_failure_leaves_no_index(notes, tmp_path, monkeypatch):
    from llmref import index as index_mod

    cache = tmp_path / "cache"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(index_mod, "_document", boom)
    with pytest.raises(RuntimeError):
        open_ref(notes, cache)
    assert not [p for p in cache.iterdir() if p.name.startswith(("ix-", "building-"))]
    monkeypatch.undo()
    ref = open_ref(notes, cache)
    assert ref.built
    ref.close()


def test_different_corpus_sets_get_different_indexes(notes, tmp_path):
    cache = tmp_path / "cache"
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.md").write_text("### 1. 什么是 DPO？\n\n偏好优化。\n", encoding="utf-8")
    open_ref(notes, cache).close()
    both = Reference.open(Settings(corpora=[notes, other], bundled=False, cache=cache))
    assert len(both) == 4
    both.close()
    again = open_ref(notes, cache)
    assert not again.built  # the first configuration's index is still there
    again.close()


def test_an_edited_user_glossary_is_reloaded_not_reused(notes, tmp_path):
    """The server hands its loaded glossary to the index load; an edit must not be missed."""
    from llmref.glossary import Glossary

    cache = tmp_path / "cache"
    (notes / "glossary.yaml").write_text(
        "- name: Kestrel attention\n  zh: [红隼注意力]\n", encoding="utf-8"
    )
    first = open_ref(notes, cache)
    assert first.glossary.lookup("红隼注意力") is not None
    stale: Glossary = first.glossary
    first.close()
    (notes / "glossary.yaml").write_text(
        "- name: Kestrel attention\n  zh: [红隼注意力, 隼式注意力]\n", encoding="utf-8"
    )
    again = Reference.open(Settings(corpora=[notes], bundled=False, cache=cache), glossary=stale)
    assert again.glossary is not stale and again.glossary.lookup("隼式注意力") is not None
    assert again.built  # the glossary is part of the index key
    again.close()
    same = Reference.open(
        Settings(corpora=[notes], bundled=False, cache=cache), glossary=again.glossary
    )
    assert same.glossary is again.glossary and not same.built
    same.close()
