"""One normalization for index, queries and hover: examples and properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmref.normalize import KEEP_WHOLE, compact, fold, split_identifier, token_texts, tokens


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("LlamaRMSNorm", ("llama", "rms", "norm")),
        ("flash_attn_func", ("flash", "attn", "func")),
        ("KVCache", ("kv", "cache")),
        ("FlashAttention2", ("flash", "attention", "2")),
        ("apply_rotary_pos_emb", ("apply", "rotary", "pos", "emb")),
        ("num_key_value_heads", ("num", "key", "value", "heads")),
        ("fp16", ("fp16",)),
        ("bf16", ("bf16",)),
        ("int8", ("int8",)),
        ("torch.bfloat16", ("torch", "bfloat16")),
        ("nf4", ("nf4",)),
        ("T5", ("t5",)),
        ("7B", ("7b",)),
        ("Qwen2RMSNorm", ("qwen", "2", "rms", "norm")),
        ("LoRA", ("lora",)),
        ("QLoRAConfig", ("qlora", "config")),
        ("LLaMA2", ("llama", "2")),
        ("vLLM", ("vllm",)),
        ("top-p", ("top", "p")),
        ("ＲＭＳＮｏｒｍ", ("rms", "norm")),  # full-width
        ("kv-cache", ("kv", "cache")),
    ],
)
def test_split_identifier_examples(word, parts):
    assert split_identifier(word) == parts


def test_fold_is_width_and_case_insensitive():
    assert fold("ＫＶ　Ｃａｃｈｅ（缓存）") == "kv cache(缓存)"
    assert compact("KV-Cache") == compact("kv_cache") == compact("KV cache") == "kvcache"


def test_tokens_segment_chinese_and_keep_identifiers_joinable():
    toks = token_texts("今天复习了旋转位置编码和KV cache")
    assert "旋转位置编码" in toks  # a glossary term is one word of the dictionary
    indexed = token_texts("今天复习了旋转位置编码和KV cache", subwords=True)
    assert {"旋转位置编码", "旋转", "位置", "编码"} <= set(indexed)  # and its parts are indexed
    assert "kv" in toks and "cache" in toks
    assert "了" not in toks  # stop word
    # the camel parts and the catenated identifier share a position
    ts = list(tokens("LayerNorm"))
    assert [(t.text, t.pos) for t in ts] == [("layer", 0), ("norm", 1), ("layernorm", 0)]


def test_tokens_fold_plurals_and_width():
    assert token_texts("KV caches") == token_texts("ｋｖ cache")


identifier_chars = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."),
    min_size=0,
    max_size=40,
)


@given(identifier_chars)
def test_split_keeps_every_alphanumeric_character_in_order(word):
    parts = split_identifier(word)
    assert "".join(parts) == re.sub(r"[^a-z0-9]", "", word.lower())


@given(identifier_chars)
def test_parts_are_nonempty_lowercase_alphanumerics(word):
    for part in split_identifier(word):
        assert part and part == part.lower() and part.isalnum()


@given(identifier_chars)
def test_split_is_idempotent(word):
    parts = split_identifier(word)
    assert split_identifier("_".join(parts)) == parts


@given(st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=5))
def test_separators_are_interchangeable(words):
    snake = "_".join(words)
    assert (
        split_identifier(snake)
        == split_identifier("-".join(words))
        == split_identifier(" ".join(words))
    )


@given(st.lists(st.from_regex(r"[a-z]{3,8}", fullmatch=True), min_size=1, max_size=4))
def test_camel_case_splits_like_snake_case(words):
    camel = "".join(w.capitalize() for w in words)
    parts = split_identifier(camel)
    # camel humps split like snake_case, unless humps spell a known name (Lo+Ra -> lora)
    assert parts == tuple(words) or any(p in KEEP_WHOLE for p in parts)


@given(st.text(max_size=60))
def test_tokens_never_fail_and_offsets_are_in_range(text):
    for tok in tokens(text):
        assert tok.text
        assert 0 <= tok.start < tok.end <= len(text)
