"""The on-disk index: reused while the corpus is unchanged, updated one file at a time when a
note changes, rebuilt beside the live one when asked, never opened half-built or damaged."""

from __future__ import annotations

import os
import shutil
import stat
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


def questions(ref: Reference) -> list[str]:
    return [e.question for e in ref.iter_entries()]


def generation(cache: Path) -> Path:
    (slot,) = [p for p in cache.iterdir() if p.name.startswith("ix-")]
    return slot / (slot / "current").read_text().strip()


def test_index_is_reused_while_nothing_changes(notes, tmp_path):
    cache = tmp_path / "cache"
    first = open_ref(notes, cache)
    assert first.built and len(first) == 3  # two questions and the "# Notes" heading
    first.close()
    second = open_ref(notes, cache)
    assert not second.built and second.report is None and len(second) == 3
    assert second.search("KV cache").results[0].entry.question == "什么是 KV cache？"
    second.close()


def test_an_edited_note_is_applied_without_a_rebuild(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    gen = generation(cache)
    with (notes / "inference.md").open("a", encoding="utf-8") as f:
        f.write("\n### 3. 什么是 PagedAttention？\n\n分页管理 KV cache。\n")
    ref = open_ref(notes, cache)
    assert not ref.built and ref.report is not None and ref.report.changed == 1
    assert generation(cache) == gen  # updated in place, not rebuilt
    assert len(ref) == 4
    assert ref.search("PagedAttention").results[0].entry.question == "什么是 PagedAttention？"
    ref.close()


def test_touching_a_note_without_changing_it_reindexes_nothing(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    os.utime(notes / "inference.md", (10**9, 10**9))
    ref = open_ref(notes, cache)
    assert ref.report is None and not ref.built
    ref.close()


def test_notes_added_removed_and_renamed(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    (notes / "more.md").write_text("### 1. 什么是 LoRA？\n\n低秩。\n", encoding="utf-8")
    ref = open_ref(notes, cache)
    assert len(ref) == 4 and ref.report is not None and ref.report.changed == 1
    ref.close()
    (notes / "more.md").rename(notes / "renamed.md")
    ref = open_ref(notes, cache)
    assert len(ref) == 4
    (lora,) = [e for e in ref.iter_entries() if "LoRA" in e.question]
    assert lora.source.endswith("renamed.md") and lora.path.endswith("renamed.md")
    assert ref.search("LoRA").results[0].entry.source.endswith("renamed.md")
    ref.close()
    (notes / "renamed.md").unlink()
    ref = open_ref(notes, cache)
    assert len(ref) == 3 and not ref.search("LoRA").results
    ref.close()


def test_sync_applies_changes_to_an_open_reference(notes, tmp_path):
    cache = tmp_path / "cache"
    ref = open_ref(notes, cache)
    assert ref.sync() is None
    (notes / "inference.md").write_text(
        NOTE.replace("What is RoPE?", "What is ALiBi?"), encoding="utf-8"
    )
    report = ref.sync()
    assert report is not None and report.changed == 1
    assert "What is ALiBi?" in questions(ref) and "What is RoPE?" not in questions(ref)
    assert ref.search("ALiBi").results[0].entry.question == "What is ALiBi?"
    ref.close()


def test_forced_rebuild_builds_beside_the_live_index(notes, tmp_path):
    cache = tmp_path / "cache"
    live = open_ref(notes, cache)
    old = generation(cache)
    other = open_ref(notes, cache, rebuild=True)
    assert other.built and generation(cache) != old
    # the reference opened before still answers from its own generation
    assert live.search("RoPE").results[0].entry.question == "What is RoPE?"
    other.close()
    live.close()


def _damage(gen: Path, how: str) -> None:
    whoosh = gen / "whoosh"
    if how == "truncate-segments":
        for seg in whoosh.glob("*.seg"):
            seg.write_bytes(seg.read_bytes()[:20])
    elif how == "drop-manifest":
        (whoosh / "manifest.json").unlink()
    elif how == "drop-toc":
        for toc in whoosh.glob("*.toc"):
            toc.unlink()
    elif how == "flip-toc-byte":
        for toc in whoosh.glob("*.toc"):
            data = bytearray(toc.read_bytes())
            data[len(data) // 2] ^= 0xFF
            toc.write_bytes(bytes(data))
    elif how == "garbage-store":
        (gen / "state.sqlite").write_bytes(b"not a database" * 100)
    elif how == "drop-store":
        (gen / "state.sqlite").unlink()
    elif how == "drop-generation":
        shutil.rmtree(gen)


@pytest.mark.parametrize(
    "how",
    [
        "truncate-segments",
        "drop-manifest",
        "drop-toc",
        "flip-toc-byte",
        "garbage-store",
        "drop-store",
        "drop-generation",
    ],
)
def test_a_damaged_index_is_detected_and_rebuilt(notes, tmp_path, how):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    _damage(generation(cache), how)
    ref = open_ref(notes, cache)
    assert ref.built, how
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    ref.close()


def test_damage_after_opening_degrades_search_then_rebuild_repairs(notes, tmp_path):
    cache = tmp_path / "cache"
    ref = open_ref(notes, cache)
    ref.search("RoPE")
    ref.index._searcher = None  # the next search reopens the files…
    for seg in (generation(cache) / "whoosh").glob("*.seg"):
        seg.write_bytes(b"\0" * 10)  # …which are garbage now
    result = ref.search("KV cache")  # no exception reaches the caller
    assert ref.damaged and result.degraded
    ref.rebuild()
    assert ref.damaged is None
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    ref.close()


def test_unfinished_builds_are_never_opened_and_are_swept(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    slot = generation(cache).parent
    crashed = slot / "b-crashed"
    crashed.mkdir()
    (crashed / "junk").write_text("half an index")
    (notes / "x.md").write_text("### 1. 什么是 DPO？\n\n偏好优化。\n", encoding="utf-8")
    ref = open_ref(notes, cache)  # a sync: takes the write lock, sweeps leftovers
    assert len(ref) == 4
    ref.close()
    assert not crashed.exists()


def test_build_failure_publishes_nothing(notes, tmp_path, monkeypatch):
    from llmref import build

    cache = tmp_path / "cache"

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(build, "document", boom)
    with pytest.raises(RuntimeError):
        open_ref(notes, cache)
    slots = [p for p in (cache).iterdir() if p.name.startswith("ix-")]
    assert all(not (s / "current").exists() for s in slots)
    assert not [p for s in slots for p in s.iterdir() if p.name.startswith(("b-", "g-"))]
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


def test_what_is_not_indexed(tmp_path):
    notes = tmp_path / "vault"
    (notes / ".obsidian").mkdir(parents=True)
    (notes / ".obsidian" / "hidden.md").write_text("### 1. 隐藏？\n\n不该出现。\n")
    (notes / "node_modules").mkdir()
    (notes / "node_modules" / "dep.md").write_text("### 1. 依赖？\n\n不该出现。\n")
    (notes / "build").mkdir()
    (notes / "build" / "out.md").write_text("### 1. 构建产物？\n\n不该出现。\n")
    (notes / "drafts").mkdir()
    (notes / "drafts" / "draft.md").write_text("### 1. 草稿？\n\n不该出现。\n")
    (notes / ".gitignore").write_text("build/\n*.tmp.md\n")
    (notes / "scratch.tmp.md").write_text("### 1. 临时？\n\n不该出现。\n")
    (notes / "big.md").write_text("### 1. 大文件？\n\n" + "很大。" * 400_000)
    (notes / "kept.md").write_text("### 1. 保留？\n\n应该出现。\n")
    settings = Settings(
        corpora=[notes], bundled=False, cache=tmp_path / "cache", exclude=["drafts/"],
        max_file_bytes=1_000_000,
    )  # fmt: skip
    ref = Reference.open(settings)
    assert questions(ref) == ["保留？"]
    assert any("big.md" in str(p) and "size cap" in str(p) for p in ref.problems)
    ref.close()


# --- the cache cannot be used to run code as the user ---------------------------------------


def test_cache_folders_are_private(notes, tmp_path):
    cache = tmp_path / "deep" / "cache"
    open_ref(notes, cache).close()
    for folder in (tmp_path / "deep", cache, generation(cache).parent, generation(cache)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    key = cache / "install.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_cache_others_can_write_is_refused(notes, tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    ref = open_ref(notes, shared)
    assert ref.index.path.is_relative_to(tmp_path / "home-cache")
    assert any("writable by group or others" in str(p) for p in ref.problems)
    assert not any(shared.iterdir())  # nothing was written there
    ref.close()


def test_index_folders_are_named_per_install(notes, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    open_ref(notes, a).close()
    open_ref(notes, b).close()
    assert generation(a).parent.name != generation(b).parent.name


def test_a_planted_pickle_never_runs(notes, tmp_path):
    """Even an index whose manifest verifies (an attacker who has the key) cannot make the
    Whoosh unpickling call anything but the classes an index of ours contains."""
    import pickle

    from llmref import cache as cache_mod
    from llmref.index import write_manifest

    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    whoosh = generation(cache) / "whoosh"
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (toc,) = whoosh.glob("*.toc")
    toc.write_bytes(pickle.dumps(Evil()))
    for seg in whoosh.glob("*.seg"):
        seg.write_bytes(pickle.dumps(Evil()))
    write_manifest(whoosh, cache_mod.install_key(cache))
    ref = open_ref(notes, cache)
    assert ref.built and not marker.exists()
    assert ref.search("RoPE").results
    ref.close()


def test_a_read_only_cache_falls_back_with_one_message(notes, tmp_path, monkeypatch):
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions")
    cache = tmp_path / "ro"
    cache.mkdir(mode=0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ro-home"))
    (tmp_path / "ro-home").mkdir(mode=0o500)
    ref = open_ref(notes, cache)
    assert ref.search("RoPE").results
    assert sum("unusable" in str(p) for p in ref.problems) == 1
    ref.close()


def test_random_bytes_in_a_small_index_are_caught_at_open(notes, tmp_path):
    cache = tmp_path / "cache"
    open_ref(notes, cache).close()
    (seg,) = (generation(cache) / "whoosh").glob("*.seg")
    data = bytearray(seg.read_bytes())
    for k in range(100, min(len(data), 400), 7):  # same size, different bytes
        data[k] ^= 0x5A
    seg.write_bytes(bytes(data))
    ref = open_ref(notes, cache)
    assert ref.built  # rebuilt at once, not "Block tag error" at the first search
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    ref.close()


@pytest.fixture
def small_mount(tmp_path):
    """A 300 kB tmpfs (root only, e.g. CI): a cache that fills up, or goes read-only."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_cache_falls_back_with_one_message(notes, tmp_path, monkeypatch, small_mount):
    (notes / "big.md").write_text(
        "".join(
            f"### {k}. 问题 {k}？\n\n回答 {k} " + "很长的回答。" * 80 + "\n\n"
            for k in range(1, 200)
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    ref = open_ref(notes, small_mount / "cache")
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    assert sum("unusable" in str(p) for p in ref.problems) == 1
    assert "No space left" in next(str(p) for p in ref.problems if "unusable" in str(p))
    ref.close()


def test_a_read_only_cache_falls_back(notes, tmp_path, monkeypatch, small_mount):
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    ref = open_ref(notes, small_mount / "cache")
    assert ref.search("RoPE").results[0].entry.question == "What is RoPE?"
    assert any("Read-only" in str(p) for p in ref.problems)
    ref.close()


@pytest.fixture(params=["arrays", "dicts"])
def bulk_engine(request, monkeypatch):
    """bulk.py's arithmetic: numpy arrays (when numpy imports) or plain dictionaries (the VS
    Code extension's vendored Python)."""
    from llmref import bulk

    if request.param == "dicts":
        monkeypatch.setattr(bulk, "_array_ops", lambda: None)
    else:
        pytest.importorskip("numpy")
    return request.param


def test_term_at_a_time_scoring_scores_the_plan_as_meant(reference, monkeypatch, bulk_engine):
    """Big indexes score a query term at a time from bulk-read postings (bulk.py); forced
    here on the bundled corpus, every query of our four sets gets the scores the plan means,
    computed independently with Whoosh's own matchers one alternative at a time: BM25F sums
    for any-of, all-of and phrase (positions checked), the best alternative of a max clause,
    boosts; the matched terms are the query's terms the entry holds.

    (Not Whoosh's DisjunctionMax: its matcher scores the best of both sides even when one
    side sits on another document, so its max clauses may add a stranger's score.)"""
    import yaml
    from whoosh import query as wq

    from llmref import index as index_mod
    from llmref.bulk import compile_plan

    from ..conftest import DATA, ROOT

    queries: list[str] = []
    for path in (
        DATA / "dev-queries.yaml",
        DATA / "dev-nl-queries.yaml",
        ROOT / "benchmarks/extra-queries.yaml",
        ROOT / "benchmarks/nl-queries.yaml",
    ):
        queries += [q["query"] for q in yaml.safe_load(path.read_text())]
    queries += ["KV cache", "rotary position embedding", "flash attention 2", "模型 训练"]
    index = reference.index
    searcher = index._get_searcher()
    reader = searcher.reader()

    def alone(alt) -> dict[int, float]:
        if alt.mode == "phrase":
            q = alt.phrase
        elif len(alt.leaves) == 1:
            q = wq.Term(*alt.leaves[0])
        elif alt.mode == "all":
            q = wq.And([wq.Term(*k) for k in alt.leaves])
        else:
            q = wq.Or([wq.Term(*k) for k in alt.leaves])
        return {h.docnum: h.score for h in searcher.search(q, limit=None)}

    def holds(d: int, key: tuple[str, str]) -> bool:
        try:
            m = reader.postings(*key)
        except Exception:
            return False
        return d in set(m.all_ids())

    monkeypatch.setattr(index_mod, "BULK_MIN_DOCS", 0)
    index._bulk = None
    ids = {index._ids[d].decode() if isinstance(index._ids[d], bytes) else index._ids[d]: d
           for d in range(reader.doc_count_all())}  # fmt: skip
    phrases = 0
    for query in queries:
        clauses = reference._prepare(query, None).clauses
        plan = compile_plan(clauses)
        phrases += any(a.mode == "phrase" for c in plan for a in c.alts)
        expected: dict[int, float] = {}
        for clause in plan:
            best: dict[int, float] = {}
            for alt in clause.alts:
                for d, s in alone(alt).items():
                    v = alt.coef * s
                    best[d] = max(best.get(d, v), v) if clause.is_max else v
            for d, v in best.items():
                expected[d] = expected.get(d, 0.0) + v
        want = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        got = index.search(clauses, limit=20, terms=True)
        assert len(got) == len(want), query
        for hit, (_d, score) in zip(got, want, strict=True):
            assert abs(hit.score - score) <= 1e-9 * max(1.0, score), query
        keys = {k for c in plan for a in c.alts for k in a.leaves}
        for hit in got[:5]:
            d = ids[hit.id]
            assert hit.terms == {k for k in keys if holds(d, k)}, (query, hit.id)
    assert phrases >= 10  # the sets do exercise the phrase check
    assert (
        type(index._bulk.ops).__name__ == {"arrays": "_ArrayOps", "dicts": "_DictOps"}[bulk_engine]
    )


def test_term_at_a_time_search_skips_deleted_documents(notes, tmp_path, monkeypatch, bulk_engine):
    """Edits leave deleted documents in a big index's old segments (it is not merged after
    every edit): the term-at-a-time search never returns them and finds what Whoosh finds."""
    from llmref import build as build_mod
    from llmref import index as index_mod

    monkeypatch.setattr(build_mod, "EXACT_STATS_DOCS", 0)  # never merge: deletions stay
    ref = open_ref(notes, tmp_path / "cache")
    note = notes / "inference.md"
    note.write_text(NOTE.replace("什么是 KV cache？", "KV cache 为什么省时间？"), encoding="utf-8")
    ref.sync()
    (notes / "more.md").write_text("### 什么是 KV cache 量化？\n\n把 KV cache 存成 int8。\n")
    ref.sync()
    searcher = ref.index._get_searcher()
    assert searcher.reader().has_deletions()
    queries = ["KV cache", "RoPE", "什么是 KV cache", "rotary position embedding"]
    plans = {q: ref._prepare(q, None).clauses for q in queries}
    whoosh = {q: {h.id for h in ref.index.search(c, limit=1000)} for q, c in plans.items()}
    monkeypatch.setattr(index_mod, "BULK_MIN_DOCS", 0)
    ref.index._bulk = None
    live = {e.id for e in ref.iter_entries()}
    for query, clauses in plans.items():
        got = {h.id for h in ref.index.search(clauses, limit=1000)}
        assert got == whoosh[query] and got <= live, query
    assert ref.search("KV cache").results[0].entry.question in (
        "KV cache 为什么省时间？",
        "什么是 KV cache 量化？",
    )
    ref.close()


def test_field_lengths_read_at_once_are_whooshs(reference):
    """Field lengths are read a column at a time (index._read_lengths_at_once): the same
    value as Whoosh's own one-byte reads for every document and field."""
    from whoosh.codec import whoosh3

    ours = whoosh3.W3PerDocReader.doc_field_length
    theirs = ours.whoosh
    searcher = reference.index._get_searcher()
    leaves = [searcher] if searcher.is_atomic() else [s for s, _o in searcher.subsearchers]
    checked = 0
    for sub in leaves:
        perdoc = sub.reader()._perdoc
        for name in ("question", "names", "answer", "concepts", "answer_concepts", "nope"):
            for d in range(sub.doc_count_all()):
                assert ours(perdoc, d, name, 7) == theirs(perdoc, d, name, 7), (name, d)
                checked += 1
    assert checked > 500


def test_text_fields_index_what_the_analyzer_pipeline_would():
    """LlmrefText indexes normalize.tokens directly: the same (term, frequency, weight,
    encoded positions or frequency) as Whoosh's own pipeline through the analyzer."""
    from whoosh.fields import TEXT

    from llmref.index import LlmrefText, LlmrefTokenizer

    texts = [
        "什么是 KV cache？为什么 KV cache 能加速推理？",
        "LlamaRMSNorm uses rms_norm; RMSNorm 均方根归一化, 复读机问题 and repetition_penalty=1.2",
        "Ｆｕｌｌ－width ＡＢＣ, e.g. GPT-4o vs. GPT-4, top-p/top-k 采样 2024年",
        "",
        "   \n\t",
        "a " * 50 + "旋转位置编码 " * 7,
    ]
    for phrase in (True, False):
        ours = LlmrefText(analyzer=LlmrefTokenizer(), phrase=phrase)
        theirs = TEXT(analyzer=LlmrefTokenizer(), phrase=phrase)
        for text in texts:
            assert sorted(ours.index(text)) == sorted(theirs.index(text)), (phrase, text)


def test_bulk_postings_read_what_whooshs_matcher_reads(tmp_path):
    """bulk.py reads a posting list's blocks in one go: the same (docnum, weight) pairs as
    Whoosh's matcher, for one-block and many-block lists (128 postings a block), as lists
    and as numpy arrays."""
    from whoosh.filedb.filestore import FileStorage

    from llmref.bulk import _matcher, _posting_arrays, _postings

    np = pytest.importorskip("numpy")
    from llmref.index import make_schema

    ix = FileStorage(str(tmp_path)).create_index(make_schema())
    writer = ix.writer()
    for n in range(700):
        words = " ".join(["attention"] * (1 + n % 5) + (["rare"] if n % 97 == 0 else []))
        writer.add_document(id=f"e{n}", file="f.md", question=f"q {n}", answer=words, names="")
    writer.commit()
    with ix.searcher() as searcher:
        reader = searcher.reader()
        for field, term in (("answer", "attention"), ("answer", "rare"), ("question", "q")):
            m = reader.postings(field, term)
            want_ids, want_weights = [], []
            while m.is_active():
                want_ids.append(m.id())
                want_weights.append(m.weight())
                m.next()
            ids, weights = _postings(reader, field, term)
            assert list(ids) == want_ids and list(weights) == want_weights, (field, term)
            arrays = _posting_arrays(np, _matcher(reader, field, term))
            assert arrays[0].tolist() == want_ids and arrays[1].tolist() == want_weights
        assert len(want_ids) == 700 and _postings(reader, "answer", "absent") == ((), ())


def test_segments_written_our_way_hold_what_whooshs_writer_writes(tmp_path, monkeypatch):
    """index.py replaces Whoosh's per-posting writer steps (the pool's add, the codec's
    add_posting, FieldWriter.add_postings) with leaner ones: a segment written either way
    holds the same terms, postings (ids, weights, positions) and field lengths."""
    from whoosh.codec.whoosh3 import W3FieldWriter, W3PostingsWriter
    from whoosh.filedb.filestore import FileStorage
    from whoosh.writing import PostingPool

    from llmref.index import make_schema

    texts = [
        ("什么是 KV cache？", "KV cache 存下 past_key_values，省去重复计算。" * (1 + n % 3))
        for n in range(40)
    ] + [("LlamaRMSNorm 和 LayerNorm 的区别", "RMSNorm 不减均值 " * 9), ("空", "")]

    def build(folder: Path) -> dict:
        ix = FileStorage(str(folder)).create_index(make_schema())
        writer = ix.writer()
        for n, (question, answer) in enumerate(texts):
            writer.add_document(
                id=f"e{n}", file="f.md", question=question, answer=answer, names=question
            )
        writer.commit()
        out: dict = {}
        with ix.searcher() as searcher:
            reader = searcher.reader()
            for field in ("question", "answer", "names", "id"):
                for term in reader.lexicon(field):
                    m = reader.postings(field, term)
                    got = []
                    while m.is_active():
                        got.append((m.id(), m.weight(), m.value()))
                        m.next()
                    out[(field, term)] = got
                out[("length", field)] = [
                    reader.doc_field_length(d, field) for d in range(len(texts))
                ]
        return out

    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = build(tmp_path / "ours")
    for cls, name in (
        (PostingPool, "add"),
        (W3PostingsWriter, "add_posting"),
        (W3FieldWriter, "add_postings"),
    ):
        monkeypatch.setattr(cls, name, getattr(cls, name).whoosh)
    theirs = build(tmp_path / "theirs")
    assert ours == theirs and len(ours) > 50


def test_segments_read_into_memory_find_what_the_files_do(notes, tmp_path, monkeypatch):
    """An open index reads its segment files into memory (up to IN_MEMORY_BYTES): the same
    results as reading them from disk, and a segment file overwritten while the index is
    open changes nothing it answers (no mmap: nothing can fault under the server)."""
    from llmref import index as index_mod

    queries = ["RoPE", "KV cache", "what is rotary position embedding", "flash attention"]
    monkeypatch.setattr(index_mod, "IN_MEMORY_BYTES", 0)
    on_disk = open_ref(notes, tmp_path / "a")
    assert on_disk.index._ix.storage._in_memory == 0
    want = {q: [(r.entry.id, r.score) for r in on_disk.search(q).results] for q in queries}
    on_disk.close()
    monkeypatch.setattr(index_mod, "IN_MEMORY_BYTES", 16 << 20)
    ref = open_ref(notes, tmp_path / "a")
    assert ref.index._ix.storage._in_memory > 0
    assert any(want.values())
    for q in queries:
        assert [(r.entry.id, r.score) for r in ref.search(q).results] == want[q], q
    for seg in (generation(tmp_path / "a") / "whoosh").glob("*.seg"):
        seg.write_bytes(b"\0" * seg.stat().st_size)
    for q in queries:
        assert [(r.entry.id, r.score) for r in ref.search(q).results] == want[q], q
    ref.close()
