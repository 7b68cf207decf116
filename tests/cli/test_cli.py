"""The command line, through a subprocess, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT, env_without_user_state


def run(args, tmp_path: Path, *, cwd: Path | None = None, env_extra=None, check=True):
    env = env_without_user_state(tmp_path)
    env["PYTHONPATH"] = str(ROOT / "server")
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-m", "llmref", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd or tmp_path,
        env=env,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One cache for the module's read-only commands (the index is built once)."""
    return tmp_path_factory.mktemp("cli")


def test_search_prints_the_right_question_with_source_line(shared):
    out = run(["search", "KV cache"], shared).stdout
    first = out.splitlines()[0]
    assert "Kv cache 技术" in first
    assert "llm-interview-104-questions.md:180" in out


def test_search_json_fields(shared):
    data = json.loads(run(["search", "RMSNorm", "--json", "--limit", "3"], shared).stdout)
    assert isinstance(data, list) and 1 <= len(data) <= 3
    for item in data:
        assert {"id", "question", "answer", "source", "line", "score", "concepts"} <= item.keys()
        assert isinstance(item["line"], int) and isinstance(item["score"], float)
    assert "RMS Norm" in data[0]["question"]
    assert "**" not in data[0]["question"]


def test_search_works_from_any_directory(shared, tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    out = run(["search", "旋转位置编码", "-n", "1"], shared, cwd=elsewhere).stdout
    assert "旋转位置编码 RoPE" in out


def test_show_prints_one_entry_in_full(shared):
    hit = json.loads(run(["search", "Deep Norm 代码", "--json", "-n", "1"], shared).stdout)[0]
    out = run(["show", hit["id"]], shared).stdout
    assert out.startswith("# " + hit["question"])
    assert "class DeepNormLayer(nn.Module):" in out
    assert f"{hit['source']}:{hit['line']}" in out


def test_show_unknown_id_is_a_clear_error(shared):
    proc = run(["show", "no-such-entry"], shared, check=False)
    assert proc.returncode == 1
    assert "no entry with id 'no-such-entry'" in proc.stderr


def test_list_json_has_every_entry(shared):
    data = json.loads(run(["list", "--json"], shared).stdout)
    assert len(data) == 170  # 165 questions and 5 sections
    assert len({d["id"] for d in data}) == 170


def test_index_builds_once_then_is_up_to_date(tmp_path):
    first = run(["index"], tmp_path).stdout
    assert first.startswith("Index built: 170 entries from 5 files")
    second = run(["index"], tmp_path).stdout
    assert second.startswith("Index up to date: 170 entries")
    third = run(["index", "--rebuild"], tmp_path).stdout
    assert third.startswith("Index built")


def test_did_you_mean(shared):
    proc = run(["search", "flashatention"], shared)
    first, second = proc.stdout.splitlines()[:2]
    assert first == "No results for 'flashatention'; showing results for 'FlashAttention'."
    assert "FlashAttention 的原理" in second


def test_no_results_exit_code(shared):
    proc = run(["search", "zzqqxxyy"], shared, check=False)
    assert proc.returncode == 1 and "No results" in proc.stdout


def test_empty_query_says_so(shared):
    for query in ([""], ["  ", " "]):
        proc = run(["search", *query], shared, check=False)
        assert proc.returncode == 2
        assert "the query is empty" in proc.stderr
        assert proc.stdout == ""


def test_a_long_query_is_not_echoed_in_full(shared):
    query = "zzqq" + "x" * 5000
    proc = run(["search", query], shared, check=False)
    assert proc.returncode == 1
    assert proc.stdout.startswith("No results for 'zzqqxxx")
    assert "…" in proc.stdout and len(proc.stdout) < 200
    did_you_mean = run(["search", "flashatention " + "attention " * 500], shared).stdout
    assert len(did_you_mean.splitlines()[0]) < 200


def test_show_takes_the_hash_part_of_an_id(shared):
    out = run(["show", "5f1901f5"], shared).stdout
    assert out.startswith("# 什么是 Kv cache 技术")
    assert "[llm-interview-104-questions:5f1901f5]" in out


def test_show_an_ambiguous_id_lists_the_candidates(shared):
    # the same question in two files: the hash part alone names both
    proc = run(["show", "0d0cd488"], shared, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "'0d0cd488' is ambiguous" in proc.stderr
    assert "baimian-llm-qa-dpo-sft:0d0cd488" in proc.stderr
    assert "baimian-llm-swtheking:0d0cd488" in proc.stderr
    many = run(["show", "llm-interview-104-questions:"], shared, check=False)
    assert many.returncode == 2 and "ambiguous" in many.stderr
    assert len(many.stderr.splitlines()) <= 22 and "more" in many.stderr.splitlines()[-1]


def test_show_prints_formulas_readably_and_raw_on_request(shared):
    out = run(["show", "baimian-llm-swtheking:0d0cd488"], shared).stdout
    assert "DPO loss = -logσ(β" in out
    assert "p_θ(y_w|x) = p_ref(y_w|x)" in out
    assert "\\text" not in out and "\\_" not in out
    raw = run(["show", "baimian-llm-swtheking:0d0cd488", "--raw"], shared).stdout
    assert "$\\\\text{DPO loss} = -\\\\log\\\\sigma" in raw


def test_help_describes_every_command_and_option(shared):
    search = run(["search", "--help"], shared).stdout
    assert "Search the corpus" in search
    assert "fewer when fewer questions match" in " ".join(search.split())
    for command in ("show", "list"):
        text = " ".join(run([command, "--help"], shared).stdout.split())
        assert "--json print the" in text
    assert "--raw print the answer's markdown as in the source" in " ".join(
        run(["show", "--help"], shared).stdout.split()
    )


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_fewer_results_than_asked_are_explained_on_a_terminal(shared):
    import os
    import pty

    env = env_without_user_state(shared)
    env["PYTHONPATH"] = str(ROOT / "server")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmref", "search", "ALiBi", "-n", "50"],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=shared,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    out = b"".join(chunks).decode("utf-8")
    shown = sum(1 for line in out.splitlines() if re.match(r"\s*\d+\. ", line))
    assert 0 < shown < 50
    assert f"{shown} results of the 50 asked for: no other question matches the query." in out
    # not on a pipe: the output stays the results alone
    piped = run(["search", "ALiBi", "-n", "50"], shared).stdout
    assert "asked for" not in piped


@pytest.fixture
def messy_notes(tmp_path: Path) -> Path:
    folder = tmp_path / "my notes"
    folder.mkdir()
    (folder / "good.md").write_text(
        "## 推理\n\n1、什么是投机解码 speculative decoding？\n用小模型起草，大模型验证。\n",
        encoding="utf-8",
    )
    (folder / "gbk.md").write_bytes(
        "### 1. 什么是梯度检查点？\n\n用计算换显存。\n".encode("gb18030")
    )
    (folder / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "broken.md").write_bytes("### 1. 好的开头\n\n".encode() + b"\x80\x80 bad bytes\n")
    (folder / "image.png").write_bytes(b"\x89PNG\x00")  # not a note: ignored silently
    return folder


def test_user_corpus_with_bad_files_warns_and_indexes_the_rest(tmp_path, messy_notes):
    missing = tmp_path / "does-not-exist"
    proc = run(
        ["search", "梯度检查点", "--corpus", str(messy_notes), "--corpus", str(missing)], tmp_path
    )
    assert "什么是梯度检查点？" in proc.stdout.splitlines()[0]
    assert "my notes/gbk.md" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("llmref: warning:")]
    assert any("binary.md: binary file, skipped" in w for w in warnings)
    assert any("broken.md:3: not UTF-8 or GB18030 text" in w for w in warnings)
    assert any("does-not-exist: corpus path does not exist" in w for w in warnings)
    assert not any("image.png" in w for w in warnings)
    # the good notes and the bundled corpus are both there
    both = run(["search", "speculative decoding", "--corpus", str(messy_notes)], tmp_path).stdout
    assert "投机解码" in both.splitlines()[0]
    bundled = run(["search", "KV cache", "-n", "1", "--corpus", str(messy_notes)], tmp_path).stdout
    assert "Kv cache 技术" in bundled


def test_corpus_from_environment_and_config_file(tmp_path, messy_notes):
    import os

    env = {"LLMREF_CORPUS": str(messy_notes)}
    out = run(["search", "梯度检查点", "-n", "1"], tmp_path, env_extra=env).stdout
    assert "梯度检查点" in out
    config = tmp_path / "config.yaml"
    config.write_text(f"corpus:\n  - {json.dumps(str(messy_notes))}\n", encoding="utf-8")
    out = run(
        ["search", "投机解码", "-n", "1"], tmp_path, env_extra={"LLMREF_CONFIG": str(config)}
    ).stdout
    assert "投机解码" in out
    assert os.pathsep  # (paths in LLMREF_CORPUS are separated by os.pathsep)
