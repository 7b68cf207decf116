"""The term under the cursor (code vs prose) and completion prefixes, on the core alone."""

from __future__ import annotations

import pytest

from llmref.glossary import Glossary
from llmref.terms import TermFinder

from ..conftest import CORPUS


@pytest.fixture(scope="module")
def finder() -> TermFinder:
    return TermFinder(Glossary.load([CORPUS / "glossary.yaml"]))


def name_at(finder, line: str, word: str, prose: bool = False, offset: int = 1):
    hit = finder.at(line, line.index(word) + offset, prose=prose)
    return (finder.glossary.get(hit.concept).name, line[hit.start : hit.end]) if hit else None


@pytest.mark.parametrize(
    ("line", "word", "name"),
    [
        ("class LlamaRMSNorm(nn.Module):", "LlamaRMSNorm", "RMSNorm"),
        ("class LlamaRMSNorm(nn.Module):", "RMSNorm", "RMSNorm"),  # anywhere in the identifier
        ("x = kv_cache[0]", "kv_cache", "KV cache"),
        ("self.rotary_emb = None", "rotary_emb", "RoPE"),
        ("k = repeat_kv(k, 2)", "repeat_kv", "Grouped-query attention"),
        ("n = config.num_key_value_heads", "num_key_value_heads", "Grouped-query attention"),
        ("out = flash_attn_func(q, k, v)", "flash_attn_func", "FlashAttention"),
    ],
)
def test_concept_identifiers(finder, line, word, name):
    got = name_at(finder, line, word)
    assert got is not None and got[0] == name


@pytest.mark.parametrize(
    "word", ["self", "forward", "hidden_states", "value", "weight", "dropout", "config", "bias"]
)
def test_ordinary_identifiers_are_quiet(finder, word):
    line = f"    {word} = self.{word}(hidden_states, value, weight, dropout, config, bias)"
    assert name_at(finder, line, word) is None


def test_longest_term_wins_in_prose(finder):
    line = "今天复习了旋转位置编码和KV cache"
    assert name_at(finder, line, "位置", prose=True) == ("RoPE", "旋转位置编码")
    assert name_at(finder, line, "cache", prose=True) == ("KV cache", "KV cache")
    assert name_at(finder, line, "KV", prose=True) == ("KV cache", "KV cache")
    assert name_at(finder, "the kv-cache grows", "kv-cache", prose=True)[0] == "KV cache"


def test_nothing_under_the_cursor(finder):
    assert finder.at("just some words here", 3, prose=True) is None
    assert finder.at("", 0, prose=True) is None
    assert finder.at("x", 5, prose=False) is None


def labels(finder, typed: str, prose: bool = True) -> list[str]:
    rows, _ = finder.complete(typed, prose=prose)
    return [r.label for r in rows]


def test_completion_prefixes(finder):
    assert labels(finder, "RMSN")[0] == "RMSNorm"
    assert labels(finder, "rms_n", prose=False)[0] == "RMSNorm"
    assert "旋转位置编码" in labels(finder, "旋转")
    assert finder.prefix_before("今天复习了旋转", 7) == (5, "旋转")
    assert finder.prefix_before("复习 KV ca", 8) == (3, "KV ca")


def test_one_completion_row_per_concept(finder):
    for typed in ["RMSN", "rms", "KV ca", "旋转", "lora", "fla", "ro"]:
        for prose in (True, False):
            rows, _ = finder.complete(typed, prose=prose)
            concepts = [r.concept for r in rows]
            assert len(concepts) == len(set(concepts)), (typed, prose, labels(finder, typed))
    rows, _ = finder.complete("RMSN")
    assert [r.label for r in rows] == ["RMSNorm"]  # not also "RMS Norm"
    assert {"RMSNorm", "RMS Norm"} <= set(rows[0].forms)  # the aliases: what clients filter on


def test_the_canonical_chinese_name_comes_first(finder):
    # 旋转位置编码 (RoPE's first Chinese name), not 旋转位置嵌入 or 旋转式位置编码, and before
    # the longer 旋转位置编码扩展 (RoPE scaling)
    assert labels(finder, "旋转")[:2] == ["旋转位置编码", "旋转位置编码扩展"]


def test_labels_fit_where_they_are_typed(finder):
    assert labels(finder, "KV ca")[0] == "KV cache"  # notes: the name
    assert labels(finder, "kv_ca", prose=False)[0] == "kv_cache"  # code: the identifier
    assert labels(finder, "rotary")[0] == "Rotary Position Embedding"
    assert labels(finder, "rotary", prose=False)[0] == "rotary_emb"
    # in code, everyday words complete only to their identifiers
    code_labels = labels(finder, "atten", prose=False)
    assert "Attention mechanism" not in code_labels


def test_comments_in_code_read_like_notes(finder):
    line = "    x = cache  # the KV cache grows with every token"
    assert name_at(finder, line, "KV cache", offset=3) == ("KV cache", "KV cache")
    assert name_at(finder, line, "cache", offset=1) is None  # the code part stays strict
    assert name_at(finder, 's = "# not a comment KV cache"', "KV", offset=1) is None
