"""The bundled glossary, loading rules for broken glossaries, and term matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmref.glossary import Glossary, term_key

from ..conftest import CORPUS


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return Glossary.load([CORPUS / "glossary.yaml"])


def test_bundled_glossary_is_broad_and_clean(glossary):
    assert not glossary.problems, "\n".join(map(str, glossary.problems))
    assert len(glossary) >= 150
    for concept in glossary.concepts.values():
        assert concept.name and concept.definition, concept.id
        assert "\n" not in concept.definition
    with_zh = sum(bool(c.zh) for c in glossary.concepts.values())
    with_code = sum(bool(c.code) for c in glossary.concepts.values())
    assert with_zh / len(glossary) > 0.8
    assert with_code >= 50


def test_no_term_names_two_concepts(glossary):
    owners: dict[str, set[str]] = {}
    for concept in glossary.concepts.values():
        for text, _kind in concept.forms():
            key = term_key(text)
            if key in glossary.matcher.keys:  # "<s>" has no matchable key
                owners.setdefault(key, set()).add(concept.id)
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert not clashes


@pytest.mark.parametrize(
    ("term", "name_fragment"),
    [
        ("LlamaRMSNorm", "RMSNorm"),
        ("kv_cache", "KV cache"),
        ("KVCache", "KV cache"),
        ("past_key_values", "KV cache"),
        ("键值缓存", "KV cache"),
        ("apply_rotary_pos_emb", "RoPE"),
        ("旋转位置编码", "RoPE"),
        ("num_key_value_heads", "Grouped"),
        ("flash_attn_func", "FlashAttention"),
        ("LoraConfig", "LoRA"),
        ("DPOTrainer", "DPO"),
    ],
)
def test_code_identifiers_and_chinese_names_reach_their_concept(glossary, term, name_fragment):
    matches = glossary.find(term)
    assert matches, term
    names = [glossary.get(m.concept).name for m in matches]
    assert any(name_fragment.lower() in n.lower() for n in names), (term, names)


def test_terms_are_found_inside_unsegmented_chinese(glossary):
    text = "今天复习了旋转位置编码和KV cache"
    found = {glossary.get(m.concept).name for m in glossary.find(text)}
    assert any("RoPE" in n or "Rotary" in n for n in found), found
    assert any("KV cache" in n for n in found), found
    spans = [text[m.start : m.end] for m in glossary.find(text)]
    assert "旋转位置编码" in spans and "KV cache" in spans


def test_ordinary_identifiers_are_not_terms(glossary):
    for word in ["self", "forward", "hidden_states", "value", "weight", "dropout", "config"]:
        assert not glossary.matcher.exact(word), word


def test_related_concepts_resolve(glossary):
    rope = glossary.lookup("RoPE")
    assert rope is not None and rope.related
    assert all(glossary.get(r) is not None for r in rope.related)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "glossary.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_item_without_name_is_reported_with_line_and_the_rest_loads(tmp_path):
    path = write(
        tmp_path,
        "- name: KV cache\n  zh: [键值缓存]\n"
        "- zh: [无名]\n  definition: nameless\n"
        "- name: RoPE\n  aliases: rotary embedding\n",
    )
    g = Glossary.load([path])
    assert sorted(c.name for c in g.concepts.values()) == ["KV cache", "RoPE"]
    assert [str(p) for p in g.problems] == [f"{path}:3: item has no name, skipped"]
    assert g.lookup("rotary embedding").name == "RoPE"  # a string where a list is expected


def test_bad_yaml_is_salvaged_item_by_item(tmp_path):
    path = write(
        tmp_path,
        "- name: KV cache\n  zh: [键值缓存]\n"
        "- name: broken\n  aliases: [unclosed\n"
        "- name: RoPE\n  zh: [旋转位置编码]\n",
    )
    g = Glossary.load([path])
    assert {c.name for c in g.concepts.values()} == {"KV cache", "RoPE"}
    messages = [str(p) for p in g.problems]
    assert any(m.startswith(f"{path}:") and "invalid YAML" in m for m in messages)
    assert any(":3:" in m and "item skipped" in m for m in messages)


def test_wrong_types_and_unknown_related_are_reported(tmp_path):
    path = write(
        tmp_path,
        "- name: A\n  aliases: {x: 1}\n  related: [Nope]\n  colour: red\n- name: B\n  related: [A]\n",
    )
    g = Glossary.load([path])
    assert len(g) == 2 and g.get("b").related == ["a"]
    text = "\n".join(map(str, g.problems))
    assert "A: aliases must be a list of text" in text
    assert "unknown related concept 'Nope'" in text
    assert "unknown field(s) colour" in text


def test_not_a_list_and_unreadable(tmp_path):
    g = Glossary.load([write(tmp_path, "name: KV cache\n"), tmp_path / "missing.yaml"])
    assert len(g) == 0
    text = "\n".join(map(str, g.problems))
    assert "a glossary is a YAML list of concepts" in text
    assert "missing.yaml: cannot read" in text


def test_a_user_glossary_extends_a_bundled_concept(tmp_path):
    base = write(tmp_path, "- name: KV cache\n  zh: [键值缓存]\n")
    extra = tmp_path / "mine.yaml"
    extra.write_text("- name: KV cache\n  aliases: [kvc]\n- name: MyTerm\n", encoding="utf-8")
    g = Glossary.load([base, extra])
    assert g.lookup("kvc").name == "KV cache" and g.lookup("键值缓存").name == "KV cache"
    assert g.lookup("MyTerm") is not None
    assert not g.problems
