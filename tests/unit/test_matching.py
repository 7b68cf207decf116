"""The linear term matcher gives exactly what the old one (tests/unit/reference_impl.py) gave:
the same matches, the same non-overlapping choice, the same concept counts."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmref import matching
from llmref.glossary import Concept, Glossary, term_key
from llmref.normalize import _WIDTH, width_fold

from ..conftest import CORPUS
from . import reference_impl as ref

NOTES = Path(os.environ.get("LLMREF_TEST_NOTES", "/work/notes/wdndev+llm_interview_note"))


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return Glossary.load([CORPUS / "glossary.yaml"])


@pytest.fixture(scope="module")
def old(glossary) -> ref.TermMatcher:
    return ref.TermMatcher(glossary.concepts.values())


def by_span(matches):
    return sorted(matches, key=lambda m: (m.start, m.end))  # stable: keeps the order of ties


def old_concepts_in(old: ref.TermMatcher, text: str) -> list[str]:
    counts: dict[str, int] = {}
    for m in old.find(text):
        counts[m.concept] = counts.get(m.concept, 0) + 1
    return sorted(counts, key=lambda c: -counts[c])


def assert_same(new, old, text: str) -> None:
    assert by_span(new.all_matches(text)) == by_span(old.all_matches(text)), text
    assert new.find(text) == old.find(text), text
    assert new.concepts_in(text) == old_concepts_in(old, text), text


# --- random texts over the bundled glossary --------------------------------------------------


def _forms(glossary: Glossary) -> list[str]:
    return sorted({text for c in glossary.concepts.values() for text, _kind in c.forms()})


_BUNDLED = Glossary.load([CORPUS / "glossary.yaml"])
FORMS = _forms(_BUNDLED)
ZH_FORMS = [f for f in FORMS if not f.isascii()]
CHINESE = list("的是在了和与模型训练数据注意力位置编码微调推理量化并行缓存旋转归一化")
WORDS = ["the", "model", "value", "hidden", "states", "embs", "attn", "pos", "emb", "kv", "lr"]
WORDS += ["rotary", "cache", "caches", "heads", "layer", "norms", "flash", "params", "ckpt"]
SEPARATORS = [" ", "", "_", "-", "/", ".", "  ", " - ", "，", "。", "(", ")", "\n", "\t", "、"]
SEPARATORS += ["：", "　", "＿", "__", "-_-", " . ", "－", "／", "．", "，", "＿　"]


def _styled(draw, text: str) -> str:
    style = draw(st.integers(0, 7))
    if style == 1:
        return text.replace(" ", "_").lower()
    if style == 2:
        return "".join(w[:1].upper() + w[1:] for w in text.split())
    if style == 3:
        return text.upper()
    if style == 4 and text.isascii():
        return text + draw(st.sampled_from(["s", "es", "ies"]))
    if style == 5:
        return text.translate({ord(c): c.upper() for c in "aeiou"})  # odd case changes
    if style == 6:  # full width, as some Chinese input methods type it
        return text.translate({cp - 0xFEE0: cp for cp in range(0xFF01, 0xFF5F)})
    return text


@st.composite
def notes_text(draw) -> str:
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(FORMS),
                st.sampled_from(ZH_FORMS),
                st.sampled_from(WORDS),
                st.text(st.sampled_from(CHINESE), min_size=1, max_size=6),
                st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True),
                st.sampled_from(["旋转", "位置", "LoRA微调", "KV", "Cache", "ＫＶ", "７B", "fp16"]),
            ),
            max_size=14,
        )
    )
    out = []
    for piece in pieces:
        out.append(_styled(draw, piece))
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=notes_text())
def test_same_as_the_old_matcher_on_random_notes(glossary, old, text):
    assert_same(glossary.matcher, old, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=notes_text(), chunk=st.sampled_from([1, 2, 5, 17]))
def test_window_boundaries_change_nothing(glossary, old, text, chunk):
    # texts are cut into windows of about _CHUNK characters: tiny ones cut everywhere
    with mock.patch.object(matching, "_CHUNK", chunk):
        assert_same(glossary.matcher, old, text * 3)


def test_same_on_every_entry_of_the_bundled_corpus(glossary, old, reference):
    for entry in reference.all():
        for text in (entry.question, f"{entry.detail}\n{entry.answer}"):
            assert_same(glossary.matcher, old, text)


@pytest.mark.skipif(not NOTES.is_dir(), reason=f"{NOTES} not present")
def test_same_on_real_notes(glossary, old):
    from llmref.corpus.loader import discover, load_notes

    notes, _glossaries, _problems = discover([(NOTES, "notes")])
    entries, _files, _problems = load_notes(notes)
    assert len(entries) > 500
    for entry in entries:
        for text in (entry.question, f"{entry.detail}\n{entry.answer}"):
            assert_same(glossary.matcher, old, text)


# --- other glossaries: keys the bundled one lacks ----------------------------------------------


def _concept(name: str, **forms) -> Concept:
    from llmref.glossary import concept_id

    return Concept(id=concept_id(name), name=name, **forms)


ODD = [
    _concept("字", zh=["词", "注"]),  # one-character Chinese keys
    _concept("LoRA fine-tuning", zh=["LoRA微调"], aliases=["lora ft"]),  # Latin, then Chinese
    _concept("Multi-head attention", zh=["多头attention", "多头注意力"], code=["MultiHeadAttn"]),
    _concept("Position", zh=["位置"], aliases=["pos"], code=["position_ids"]),
    _concept("Positional encoding", zh=["位置编码"], aliases=["position embedding"]),
    _concept("Cache", aliases=["caches", "KVs"], code=["kv_cache", "past_kv"]),
    _concept("Ambiguous A", aliases=["amb"]),
    _concept("Ambiguous B", aliases=["amb", "ambs"]),  # one key, two concepts
    _concept("Long", aliases=["a b c d e f g h i j k", "一二三四五六七八九十十一"]),
    _concept("Digits", aliases=["7B", "fp16", "int8 quant", "3D parallelism"]),
]


@pytest.fixture(scope="module")
def odd() -> tuple[Glossary, ref.TermMatcher]:
    g = Glossary(ODD)
    return g, ref.TermMatcher(g.concepts.values())


ODD_PIECES = [f for c in ODD for f, _k in c.forms()] + list(
    "词注字位置编码多头一二三四五六七八九十"
)
ODD_PIECES += ["attention", "attn", "pos", "emb", "Ids", "LoRA", "微调", "a", "b", "c", "kv"]


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(ODD_PIECES), max_size=16),
    seps=st.lists(st.sampled_from(SEPARATORS), min_size=16, max_size=16),
)
def test_same_with_one_character_keys_mixed_keys_and_ambiguous_keys(odd, pieces, seps):
    g, old = odd
    text = "".join(p + s for p, s in zip(pieces, seps, strict=False))
    assert_same(g.matcher, old, text)


def test_single_character_keys_and_mixed_keys_are_found(odd):
    g, _old = odd
    spans = [
        ("词注" + "LoRA 微调 多头 attention")[m.start : m.end]
        for m in g.find("词注LoRA 微调 多头 attention")
    ]
    assert spans == ["词", "注", "LoRA 微调", "多头 attention"]


def test_ambiguous_key_keeps_both_concepts(odd):
    g, old = odd
    got = [(m.start, m.end, m.concept) for m in g.find("amb")]
    assert (
        got
        == [(0, 3, "ambiguous-a"), (0, 3, "ambiguous-b")]
        == [(m.start, m.end, m.concept) for m in old.find("amb")]
    )


# --- huge and hostile texts: right answers (their speed is benchmarks/inputs.py's) ---------


def test_long_texts_across_windows(glossary, old, monkeypatch):
    monkeypatch.setattr(matching, "_CHUNK", 64)
    text = "今天复习了旋转位置编码和KV cache，LlamaRMSNorm 的 rotary_emb。" * 40
    assert_same(glossary.matcher, old, text)


def test_a_huge_identifier_and_a_huge_run_of_chinese(glossary, old):
    def spans(text: str) -> set[str]:
        return {text[m.start : m.end] for m in glossary.find(text)}

    camel = "Ab" * 50_000 + "KVCache"
    assert spans(camel) == {"KVCache"}
    assert glossary.find("Ab" * 50 + "KVCache") == old.find("Ab" * 50 + "KVCache")
    assert spans("的" * 200_000 + "旋转位置编码") == {"旋转位置编码"}
    assert spans(" ".join(["x"] * 100_000) + " kv cache") == {"kv cache"}


def test_term_key_is_unchanged(glossary):
    for text in FORMS + [
        "ＫＶ　Ｃａｃｈｅ",
        "LLaMA2-7B",
        "QLoRAConfig",
        "旋转 位置",
        "<s>",
        "x" * 300,
    ]:
        assert term_key(text) == ref.term_key(text), text


@given(
    st.text(
        alphabet=st.sampled_from(
            list("aZ09 _-/.，ＫＶ　中文") + [chr(0xFF01 + i) for i in range(0, 94, 7)]
        )
    )
)
def test_width_fold_is_unchanged(text):
    assert width_fold(text) == text.translate(_WIDTH)
