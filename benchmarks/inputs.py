"""Hostile and huge inputs: duplicate grouping, term tagging, big glossaries.

    python benchmarks/inputs.py [--quick] [--json] [--only CASE ...] [--notes PATH]

Every case runs in its own child process (so its peak RSS is its own) on generated input
(seeded, nothing downloaded) and reports seconds and peak RSS; where the implementation before
this work (kept in tests/unit/reference_impl.py) can finish, it runs on the same input as the
baseline, and the ratio is printed. Speed is reported, not asserted: the exit status is 0.

Cases:

* ``group-headings``: 10k and 100k entries whose questions are ``Heading N`` (all similar:
  every pair of near numbers is "the same question" by the Dice rule);
* ``group-similar``: 20k and 100k questions in families of near-duplicates (a shared stem
  and a varying tail), from a Chinese/English vocabulary;
* ``tag-entries``: concepts of every entry of a notes folder (``--notes``, default the bundled
  corpus): per-entry milliseconds, new vs old;
* ``tag-text``: concepts in one text of 1 / 10 / 50 MB (and 100 / 300 KB against the old
  matcher, whose ``find`` is quadratic: 1 MB took it 440 s) mixing Chinese, identifiers,
  separators, plurals;
* ``glossary-parse`` / ``-first`` / ``-cached``: a valid 100k-concept glossary (names,
  aliases, Chinese names, code identifiers, definitions, related): loaded without a cache; the
  first load with a cache dir (parses, writes the cache); a load from the cache, with the
  completion table (TermFinder).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

# --- generated input ----------------------------------------------------------------------

EN = """sparse dense rotary linear causal masked grouped multi query key value cache flash paged
attention head layer norm residual gated expert router mixture adapter prefix prompt token
vocab embedding position relative absolute kernel fused quantized low rank decomposition
adaptive scaled product softmax temperature sampling beam search greedy nucleus reward policy
critic actor preference direct optimization proximal gradient clipping warmup schedule cosine
decay weight shared tied frozen partial sliding window chunked streaming speculative decoding
draft verifier tree lookahead retrieval augmented vector index hybrid rerank cross encoder
student teacher distillation pruning structured magnitude lottery diffusion noise latent
contrastive alignment instruction tuning supervised feedback synthetic curriculum replay buffer
memory efficient offload pipeline tensor data parallel sharded stage checkpoint activation
recompute mixed precision loss scaling bucket ring collective overlap bandwidth latency batch
continuous dynamic static graph compile trace export""".split()
ZH = """稀疏 稠密 旋转 线性 因果 掩码 分组 多头 查询 缓存 注意力 归一化 残差 门控 专家 路由 混合
适配器 前缀 提示 词元 词表 嵌入 位置 相对 绝对 融合 量化 低秩 分解 自适应 缩放 点积 温度 采样
束搜索 贪心 奖励 策略 价值 偏好 直接 优化 近端 梯度 裁剪 预热 调度 余弦 衰减 权重 共享 冻结 滑动
窗口 分块 流式 投机 解码 草稿 验证 检索 增强 向量 索引 重排 交叉 编码器 学生 教师 蒸馏 剪枝 结构化
扩散 噪声 潜在 对比 对齐 指令 微调 监督 反馈 合成 课程 回放 内存 高效 卸载 流水线 张量 数据 并行
分片 检查点 激活 重计算 精度 损失 通信 带宽 延迟 吞吐 批次 连续 动态 静态 编译 导出""".split()
FILLER_ZH = """的 是 在 了 和 与 我们 可以 通过 进行 一个 这个 模型 训练 使用 方法 问题 时候 因为
所以 如果 但是 其中 主要 需要 能够 对于 以及 计算 参数 效果 结果 过程 表示 相比 提高 减少""".split()
FILLER_EN = """the a of to in and is for with on that by this we model training use method value
result output input hidden states layer config self forward weight bias dropout return""".split()
SEPARATORS = [" ", "_", "-", "/", ".", "", "，", "。", "（", "）", "\n", ": ", ", "]


def glossary_yaml(n: int, seed: int = 7) -> str:
    """A valid glossary of n concepts: 2-4 word names, a Chinese name, an acronym alias, one
    or two code identifiers, a definition, 0-2 related names (~4.5 forms a concept)."""
    rnd = random.Random(seed)
    names: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    while len(names) < n:
        words = [rnd.choice(EN) for _ in range(rnd.choice((2, 3, 3, 4)))]
        name = " ".join(w.capitalize() if rnd.random() < 0.4 else w for w in words)
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append((name, words))
    out = ["# generated glossary (benchmarks/inputs.py)\n"]
    zh_seen: set[str] = set()
    for i, (name, words) in enumerate(names):
        zh = "".join(rnd.choice(ZH) for _ in range(rnd.choice((2, 2, 3))))
        zh_list = "" if zh in zh_seen else zh
        zh_seen.add(zh)
        code = ["_".join(words)]
        if rnd.random() < 0.5:
            code.append(
                "".join(w.capitalize() for w in words) + rnd.choice(("Config", "Layer", ""))
            )
        related = [names[rnd.randrange(n)][0] for _ in range(rnd.choice((0, 1, 2)))]
        aliases = ["".join(w[0] for w in words).upper() + str(i % 97)]
        if rnd.random() < 0.3:
            aliases.append("-".join(words))
        out.append(
            f"- name: {name}\n"
            f"  zh: [{zh_list}]\n"
            f"  aliases: [{', '.join(aliases)}]\n"
            f"  code: [{', '.join(code)}]\n"
            f"  definition: Generated concept {i}, about {' and '.join(words)}.\n"
            f"  related: [{', '.join(related)}]\n"
        )
    return "".join(out)


def mixed_text(size: int, terms: list[str], seed: int = 11) -> str:
    """About ``size`` characters of notes: Chinese filler, English filler, glossary terms
    written in every way (as is, snake_case, CamelCase, plurals, abbreviations), separators.
    Built from a 64 KB block of random pieces, repeated with a random start each time (little
    memory beyond the text itself)."""
    rnd = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < min(size, 1 << 16):
        r = rnd.random()
        if r < 0.35:
            piece = "".join(rnd.choice(FILLER_ZH) for _ in range(rnd.randint(2, 12)))
        elif r < 0.55:
            piece = " ".join(rnd.choice(FILLER_EN) for _ in range(rnd.randint(1, 6)))
        elif r < 0.9 and terms:
            term = rnd.choice(terms)
            style = rnd.random()
            if style < 0.2:
                term = term.replace(" ", "_").lower()
            elif style < 0.35:
                term = "".join(w.capitalize() for w in term.split())
            elif style < 0.45 and term.isascii():
                term += "s"
            piece = term
        else:
            piece = rnd.choice(["rotary_emb", "flash_attn_func", "kv_cache", "num_key_value_heads"])
        parts.append(piece)
        parts.append(rnd.choice(SEPARATORS))
        total += len(piece) + 1
    block = "".join(parts)
    if size <= len(block):
        return block[:size]
    blocks = []
    while sum(map(len, blocks)) < size:
        cut = rnd.randrange(len(block))
        blocks.append(block[cut:] + "。\n" + block[:cut])
    return "".join(blocks)[:size]


def heading_questions(n: int) -> list[str]:
    return [f"Heading {i}" for i in range(n)]


def similar_questions(n: int, seed: int = 5) -> list[str]:
    """Families of near-duplicate questions: a stem (a few words) and a varying tail."""
    rnd = random.Random(seed)
    stems = []
    for _ in range(max(1, n // 20)):
        words = [rnd.choice(ZH + EN) for _ in range(rnd.randint(3, 6))]
        stems.append("".join(words) + rnd.choice(["的原理是什么", "有什么优点", "如何实现", ""]))
    out = []
    for _ in range(n):
        q = rnd.choice(stems)
        if rnd.random() < 0.7:
            q += rnd.choice(FILLER_ZH) + str(rnd.randrange(100))
        out.append(q)
    return out


# --- the cases (each in a child process) ---------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def case_group(kind: str, n: int, old: bool) -> dict:
    from llmref.corpus import group
    from llmref.corpus.entry import Entry

    questions = heading_questions(n) if kind == "headings" else similar_questions(n)
    entries = [Entry(f"d:{i}", q, "", "d.md", "/d.md", i, i) for i, q in enumerate(questions)]
    if old:
        from tests.unit import reference_impl

        seconds, _ = _timed(reference_impl.group_duplicates, entries, None)
    else:
        seconds, _ = _timed(group.group_duplicates, entries, None)
    groups = {e.group for e in entries if e.group}
    return {
        "seconds": seconds,
        "groups": len(groups),
        "grouped": sum(bool(e.group) for e in entries),
    }


def _bundled_glossary():
    from llmref.config import bundled_corpus_dir
    from llmref.glossary import Glossary

    return Glossary.load([bundled_corpus_dir() / "glossary.yaml"])


def case_tag_text(size: int, old: bool) -> dict:
    glossary = _bundled_glossary()
    terms = sorted({t for c in glossary.concepts.values() for t, _k in c.forms()})
    text = mixed_text(size, terms)
    if old:
        from tests.unit import reference_impl

        matcher = reference_impl.TermMatcher(glossary.concepts.values())
        seconds, found = _timed(matcher.find, text)
        concepts = len({m.concept for m in found})
    else:
        seconds, found = _timed(glossary.concepts_in, text)
        concepts = len(found)
    return {"seconds": seconds, "chars": len(text), "concepts": concepts}


def case_tag_entries(notes: str, old: bool) -> dict:
    from llmref.corpus.loader import discover, load_notes

    glossary = _bundled_glossary()
    found, _g, _p = discover([(Path(notes), "notes")])
    entries, _f, _p = load_notes(found)
    texts = [t for e in entries for t in (e.question, f"{e.detail}\n{e.answer}")]
    if old:
        from tests.unit import reference_impl

        matcher = reference_impl.TermMatcher(glossary.concepts.values())
        concepts_in = lambda text: {m.concept for m in matcher.find(text)}  # noqa: E731
    else:
        concepts_in = glossary.concepts_in
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for text in texts:
            concepts_in(text)
        best = min(best, time.process_time() - started)
    return {
        "seconds": best,
        "entries": len(entries),
        "ms_per_entry": 1000 * best / max(1, len(entries)),
    }


def case_glossary(n: int, stage: str, work: str) -> dict:
    """One stage per process (its own peak RSS): parse (no cache), first load with a cache
    dir (parses and writes it), then from the cache, with the completion table."""
    from llmref.glossary import Glossary
    from llmref.terms import TermFinder

    path, cache = Path(work) / "glossary.yaml", Path(work) / "cache"
    if not path.exists():
        path.write_text(glossary_yaml(n), encoding="utf-8")
    out: dict = {"mb": path.stat().st_size / 2**20}
    if stage == "parse":
        out["seconds"], g = _timed(Glossary.load, [path])
    else:
        out["seconds"], g = _timed(lambda: Glossary.load([path], cache_dir=cache))
        if stage == "cached":
            out["finder"], _ = _timed(TermFinder, g)
    out["concepts"] = len(g)
    return out


def run_child(args: argparse.Namespace) -> None:
    name, size = args.child, args.size
    if name in ("group-headings", "group-similar"):
        result = case_group(name.split("-")[1], size, args.old)
    elif name == "tag-text":
        result = case_tag_text(size, args.old)
    elif name == "tag-entries":
        result = case_tag_entries(args.notes, args.old)
    elif name.startswith("glossary-"):
        result = case_glossary(size, name.split("-", 1)[1], args.work)
    else:
        raise SystemExit(f"unknown case {name}")
    result["peak_rss_mb"] = _rss_mb()
    print(json.dumps(result))


# (case, size, also run the old implementation on it)
FULL = [
    ("group-headings", 10_000, False),
    ("group-headings", 100_000, False),
    ("group-headings", 4_000, True),
    ("group-similar", 4_000, True),
    ("group-similar", 20_000, False),
    ("group-similar", 100_000, False),
    ("tag-entries", 0, True),
    ("tag-text", 100_000, True),
    ("tag-text", 300_000, True),
    ("tag-text", 1_000_000, False),
    ("tag-text", 10_000_000, False),
    ("tag-text", 50_000_000, False),
    ("glossary-parse", 100_000, False),
    ("glossary-first", 100_000, False),
    ("glossary-cached", 100_000, False),
]
QUICK = [
    ("group-headings", 2_000, True),
    ("group-similar", 2_000, True),
    ("tag-entries", 0, True),
    ("tag-text", 100_000, True),
    ("tag-text", 1_000_000, False),
    ("glossary-parse", 10_000, False),
    ("glossary-first", 10_000, False),
    ("glossary-cached", 10_000, False),
]


def _child(case: str, size: int, old: bool, notes: str, timeout: float, work: str) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--size", str(size), "--notes", notes]
    cmd += ["--work", work]
    if old:
        cmd.append("--old")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", nargs="*", help="cases to run (group-headings, tag-text, …)")
    parser.add_argument("--notes", default=str(ROOT / "corpus"), help="folder for tag-entries")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--old", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmref-inputs-") as work:
        for case, size, with_old in QUICK if args.quick else FULL:
            if args.only and not any(case.startswith(o) for o in args.only):
                continue
            new = _child(case, size, False, args.notes, args.timeout, work)
            old = _child(case, size, True, args.notes, args.timeout, work) if with_old else None
            rows.append({"case": case, "size": size, "new": new, "old": old})
            if not args.json:
                print(_line(case, size, new, old), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


def _line(case: str, size: int, new: dict, old: dict | None) -> str:
    def fmt(r: dict) -> str:
        if "error" in r:
            return r["error"]
        extra = ""
        if "ms_per_entry" in r:
            extra = f" ({r['ms_per_entry']:.3f} ms/entry, {r['entries']} entries)"
        if "mb" in r:
            extra = f" ({r['concepts']:,} concepts, {r['mb']:.1f} MB of YAML)"
            if "finder" in r:
                extra += f", completion table {r['finder']:.2f} s"
        if "groups" in r:
            extra = f" ({r['grouped']} grouped in {r['groups']} groups)"
        return f"{r['seconds']:.3f} s, peak RSS {r['peak_rss_mb']:.0f} MB{extra}"

    label = f"{case} {size:,}" if size else case
    text = f"{label:24} new: {fmt(new)}"
    if old is not None:
        text += f"\n{'':24} old: {fmt(old)}"
        if "seconds" in old and "seconds" in new and new["seconds"] > 0:
            text += f"\n{'':24} ratio old/new: {old['seconds'] / new['seconds']:.1f}x"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
