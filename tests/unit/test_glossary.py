"""The bundled glossary, loading rules for broken glossaries, and term matching."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llmref.glossary import Glossary, term_key
from llmref.glossary_yaml import simple_items

from ..conftest import CORPUS, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from inputs import glossary_yaml  # noqa: E402


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


# --- the fast reader of plain glossary YAML -----------------------------------------------------


def pyyaml_items(text: str):
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if root is None:
        return []
    constructor = yaml.constructor.SafeConstructor()
    return [(n.start_mark.line + 1, constructor.construct_object(n, deep=True)) for n in root.value]


def test_fast_reader_reads_the_bundled_and_a_generated_glossary_as_pyyaml_does():
    for text in [(CORPUS / "glossary.yaml").read_text(encoding="utf-8"), glossary_yaml(300)]:
        fast = simple_items(text)
        assert fast is not None
        assert fast == pyyaml_items(text)


SCALARS = [
    "KV cache",
    "键值缓存",
    "A(s,a)",
    "Goodhart's law",
    "7B",
    "fp16",
    "yes",
    "No",
    "null",
    "~",
    "1.5",
    "12",
    "0x1F",
    "2020-01-01",
    "-x",
    "- x",
    "a: b",
    "a #b",
    "C#",
    "a,b",
    "[x]",
    "{x}",
    "&a",
    "*a",
    "!tag",
    "|",
    ">",
    "%",
    "@",
    "`",
    "?x",
    "'q'",
    '"q"',
    "'it''s'",
    '"a\\"b"',
    "é",
    "x:",
    "a\tb",
    "  padded  ",
    "<<",
    "=",
    "true",
    "Off",
    ".inf",
    "",
    "a'b",
    'a"b',
    "x # c",
]


BENIGN = ["KV cache", "键值缓存", "A(s,a)", "Goodhart's law", "7B", "fp16", "C#", "a,b", "é"]
VALUES = st.sampled_from(BENIGN * 8 + SCALARS)  # mostly the plain shape, sometimes not


@st.composite
def plain_glossary(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        fields = draw(
            st.lists(
                st.sampled_from(
                    ["name", "zh", "aliases", "definition", "common_word"] * 4 + ["yes", "x y"]
                ),
                min_size=1,
                max_size=4,
            )
        )
        for n, key in enumerate(fields):
            if draw(st.booleans()):
                value = (
                    "["
                    + draw(st.sampled_from([", ", ",", " , "])).join(
                        draw(st.lists(VALUES, max_size=3))
                    )
                    + "]"
                )
            else:
                value = draw(VALUES)
            sep = draw(st.sampled_from([": "] * 6 + [":", ":  "]))
            lines.append(
                ("- " if n == 0 else draw(st.sampled_from(["  "] * 8 + ["   ", " "])))
                + key
                + sep
                + value
            )
        if draw(st.booleans()):
            lines.append(
                draw(st.sampled_from(["# comment", "  # indented", "", "  "] * 3 + ["---", "\t"]))
            )
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@settings(max_examples=1000, deadline=None)
@given(text=plain_glossary())
def test_fast_reader_agrees_with_pyyaml_or_hands_over(text):
    fast = simple_items(text)
    if fast is None:
        return  # PyYAML reads it
    assert fast == pyyaml_items(text)


# --- limits and the compiled form on disk -------------------------------------------------------


def same_glossary(a: Glossary, b: Glossary) -> None:
    assert list(a.concepts) == list(b.concepts)
    for cid, concept in a.concepts.items():
        assert b.concepts[cid] == concept
    assert a.problems == b.problems
    assert a.matcher.keys == b.matcher.keys
    assert a.matcher.acronyms == b.matcher.acronyms
    assert a.matcher.forms == b.matcher.forms


def test_cache_gives_the_same_glossary_and_is_json(tmp_path):
    paths = [CORPUS / "glossary.yaml"]
    plain = Glossary.load(paths)
    first = Glossary.load(paths, cache_dir=tmp_path)
    files = list(tmp_path.glob("glossary-*.json"))
    assert len(files) == 1
    json.loads(files[0].read_text(encoding="utf-8"))  # plain data, nothing to execute
    second = Glossary.load(paths, cache_dir=tmp_path)
    for g in (first, second):
        same_glossary(plain, g)
        assert g.digests == plain.digests and g.paths == plain.paths
    text = "今天复习了旋转位置编码和KV cache, LlamaRMSNorm"
    assert second.find(text) == plain.find(text)


def test_an_edited_glossary_is_never_served_from_a_stale_cache(tmp_path):
    path = write(tmp_path, "- name: KV cache\n  zh: [键值缓存]\n")
    cache = tmp_path / "cache"
    assert Glossary.load([path], cache_dir=cache).lookup("kvc") is None
    path.write_text("- name: KV cache\n  aliases: [kvc]\n", encoding="utf-8")
    assert Glossary.load([path], cache_dir=cache).lookup("kvc").name == "KV cache"


def test_a_damaged_cache_is_ignored(tmp_path):
    path = write(tmp_path, "- name: KV cache\n  zh: [键值缓存]\n")
    cache = tmp_path / "cache"
    Glossary.load([path], cache_dir=cache)
    (file,) = cache.glob("glossary-*.json")
    for damage in ["{not json", '{"format": "llmref-glossary"}', "[]", json.dumps({"x": 1})]:
        file.write_text(damage, encoding="utf-8")
        g = Glossary.load([path], cache_dir=cache)
        assert g.lookup("键值缓存").name == "KV cache"


def test_an_unwritable_cache_dir_costs_nothing_but_the_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    g = Glossary.load([CORPUS / "glossary.yaml"], cache_dir=blocker / "sub")
    assert g.lookup("RoPE") is not None


def test_too_many_concepts_are_refused_with_one_problem_naming_the_file(tmp_path):
    path = write(tmp_path, glossary_yaml(50))
    g = Glossary.load([path], max_concepts=20)
    assert len(g) == 20
    over = [p for p in g.problems if "over the limit" in p.message]
    assert len(over) == 1 and over[0].path == str(path)
    assert "30 after it are ignored" in over[0].message or "29 after it" in over[0].message


def test_a_too_big_glossary_file_is_refused(tmp_path):
    small = write(tmp_path, "- name: KV cache\n  zh: [键值缓存]\n")
    big = tmp_path / "big.yaml"
    big.write_text(glossary_yaml(50), encoding="utf-8")
    g = Glossary.load([small, big], max_file_bytes=4096)
    assert [c.name for c in g.concepts.values()] == ["KV cache"]  # the small one loads
    (problem,) = g.problems
    assert problem.path == str(big)
    assert "over the limit" in problem.message and "skipped" in problem.message


def test_many_definitions_of_one_concept_merge_in_linear_time(tmp_path):
    items = "".join(f"- name: KV cache\n  aliases: [kvc{i}, shared]\n" for i in range(20_000))
    g = Glossary.load([write(tmp_path, items)])
    (concept,) = g.concepts.values()
    assert concept.aliases[:3] == ["kvc0", "shared", "kvc1"] and len(concept.aliases) == 20_001
