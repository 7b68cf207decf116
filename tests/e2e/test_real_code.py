"""The real-code test: hover over every identifier of a whole model file.

Two files: ``fixtures/modeling_style.py`` (written for this test in the style of transformers'
modeling_llama.py) and the real ``transformers/models/llama/modeling_llama.py``, taken from the
transformers wheel on PyPI (downloaded once into ``$TMPDIR/llmref-test-wheels``, never
committed; skipped when there is no network unless ``CI`` is set).

Every identifier occurrence (a NAME token of Python's tokenizer that is not a keyword; strings,
docstrings and comments are not identifiers) is looked up with the core TermFinder exactly as the
hover handler does, and through the real server (pytest-lsp). Concept identifiers must get the
card of their concept, ordinary identifiers none, and the share of occurrences with a card must
stay low: in code, silence is a feature.

Where the current behaviour disagrees with what an ML engineer would expect, the case is listed
in DISAGREEMENTS and marked xfail(strict=True), not dropped: fixing it turns the xfail into a
failure that asks for the entry to move into CONCEPT or ORDINARY.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from llmref.glossary import Glossary
from llmref.sense import Context
from llmref.terms import TermFinder

from .conftest import FIXTURES, ROOT, open_doc, wait_loaded

sys.path.insert(0, str(ROOT / "benchmarks"))
import real_code  # noqa: E402
from real_code import Occurrence, identifiers  # noqa: E402

WRITTEN = FIXTURES / "modeling_style.py"

TRANSFORMERS_VERSION = os.environ.get("LLMREF_TEST_TRANSFORMERS", "5.23.0")
WHEEL_CACHE = Path(tempfile.gettempdir()) / "llmref-test-wheels"
LLAMA_MEMBER = "transformers/models/llama/modeling_llama.py"

# The share of identifier occurrences that may get a card. Model files are dense with concepts
# (about a quarter today); a matcher that lights up ordinary code goes far past this.
CARD_RATE_CEILING = 0.30
# The same for distinct identifiers (the server sweep of the real file hovers each name once).
DISTINCT_CARD_RATE_CEILING = 0.40

# identifier -> the concept id(s) whose card it must show, wherever it occurs
CONCEPT: dict[str, str | tuple[str, ...]] = {
    # RMSNorm
    "LlamaRMSNorm": "rmsnorm",
    "KestrelRMSNorm": "rmsnorm",
    "rms_norm_eps": "rmsnorm",
    # rotary position embeddings
    "LlamaRotaryEmbedding": "rope",
    "KestrelRotaryEmbedding": "rope",
    "rotary_emb": "rope",
    "apply_rotary_pos_emb": "rope",
    "rotate_half": "rope",
    "inv_freq": "rope",
    "rope_theta": "rope",
    # KV cache
    "past_key_values": "kv-cache",
    "kv_cache": "kv-cache",
    "use_cache": "kv-cache",
    "DynamicCache": "kv-cache",
    # grouped-query attention
    "repeat_kv": "grouped-query-attention",
    "num_key_value_heads": "grouped-query-attention",
    "num_key_value_groups": "grouped-query-attention",
    # attention
    "num_attention_heads": "multi-head-attention",
    "q_proj": "query-key-value",
    "k_proj": "query-key-value",
    "v_proj": "query-key-value",
    "self_attn": "self-attention",
    "attn_weights": "attention-weights",
    "attention_mask": "attention-mask",
    "causal_mask": "causal-mask",
    "create_causal_mask": "causal-mask",
    "is_causal": "causal-mask",
    "softmax": "softmax",
    # 1/sqrt(head_dim) next to queries and keys: the attention's scaling (a sense from the file)
    "scaling": "scaled-dot-product-attention",
    # MLP
    "gate_proj": "swiglu",
    "act_fn": "activation-function",
    "hidden_act": "activation-function",
    "ACT2FN": "activation-function",
    "intermediate_size": "feed-forward-network",
    # layers
    "LlamaDecoderLayer": "transformer-block",
    "KestrelDecoderLayer": "transformer-block",
    "decoder_layer": "transformer-block",
    "num_hidden_layers": "transformer-block",
    "input_layernorm": "pre-ln",
    "post_attention_layernorm": "pre-ln",
    "residual": "residual-connection",
    # model
    "embed_tokens": "word-embedding",
    "max_position_embeddings": "context-length",
    "logits": "logits",
    "position_embeddings": "positional-encoding",
    "rope_parameters": ("rope", "rope-scaling"),
    "compute_default_rope_parameters": ("rope", "rope-scaling"),
    "cross_entropy": "cross-entropy-loss",
    "gradient_checkpointing": "gradient-checkpointing",
    "GradientCheckpointingLayer": "gradient-checkpointing",
}

# identifiers that must get no card
ORDINARY: set[str] = {
    # Python and PyTorch plumbing
    "self", "super", "__init__", "forward", "torch", "nn", "F", "math", "Module", "Linear",
    "Parameter", "ModuleList", "Tensor", "kwargs", "module", "training", "shape", "dtype",
    "device", "view", "reshape", "transpose", "contiguous", "expand", "unsqueeze", "to",
    "float", "range", "_", "i", "p", "x", "x1", "x2", "dim", "base", "eps",
    # everyday names of model code
    "config", "hidden_states", "hidden_size", "value", "key", "query", "weight", "bias",
    "dropout", "outputs", "loss", "labels", "layers", "layer_idx", "norm", "batch",
    "q", "k", "cos", "sin", "q_embed", "k_embed", "freqs", "n_rep", "slen", "variance",
    "variance_epsilon", "input_dtype", "unsqueeze_dim", "key_states", "value_states",
    "query_states", "input_shape", "hidden_shape", "KestrelModel", "batch_size", "seq_len",
    "get_seq_length", "emb", "base_model_prefix", "BaseModelOutputWithPast",
}  # fmt: skip

# Current behaviour that disagrees with the expectation: identifier -> (expected concept id(s)
# or None for "no card", why). Checked in their own strict-xfail tests, left out of the sweeps'
# CONCEPT/ORDINARY assertions.
DISAGREEMENTS: dict[str, tuple[str | tuple[str, ...] | None, str]] = {}
# (Fixed since the first sweep: batch_size, seq_len, get_seq_length, emb, base_model_prefix,
# BaseModelOutputWithPast now stay quiet; rope_parameters and compute_default_rope_parameters
# get RoPE; position_embeddings gets the general positional-encoding card.)

assert not (set(CONCEPT) & ORDINARY)
assert not (set(DISAGREEMENTS) & (set(CONCEPT) | ORDINARY))

# The written file must hold the identifiers of the design rule (and some of each kind).
WRITTEN_MUST_HAVE = {
    "KestrelRMSNorm", "rotary_emb", "past_key_values", "repeat_kv", "apply_rotary_pos_emb",
    "num_key_value_heads", "kv_cache", "attention_mask", "gate_proj", "self", "forward",
    "hidden_states", "value", "weight", "dropout", "config", "bias", "x", "outputs",
    "batch_size",
}  # fmt: skip
REAL_MUST_HAVE = {
    "LlamaRMSNorm", "rotary_emb", "past_key_values", "repeat_kv", "apply_rotary_pos_emb",
    "num_key_value_heads", "attention_mask", "self", "forward", "hidden_states", "value",
    "weight", "dropout", "config", "bias", "x", "outputs",
}  # fmt: skip


# --- identifiers and lookups ------------------------------------------------------------------


@dataclass
class Source:
    label: str
    path: Path
    text: str
    lines: list[str]
    occurrences: list[Occurrence]

    @property
    def names(self) -> set[str]:
        return {o.name for o in self.occurrences}


def make_source(label: str, path: Path, text: str) -> Source:
    return Source(label, path, text, text.splitlines(), identifiers(text))


def expected_ids(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def check(results: dict[Occurrence, str | None], names: set[str] | None = None) -> list[str]:
    """Failures of CONCEPT/ORDINARY (identifiers in ``names`` only, if given)."""
    problems = []
    for occ, concept in results.items():
        if names is not None and occ.name not in names:
            continue
        where = f"{occ.name} at {occ.line + 1}:{occ.start + 1}"
        if occ.name in CONCEPT and concept not in expected_ids(CONCEPT[occ.name]):
            problems.append(f"{where}: got {concept}, expected {CONCEPT[occ.name]}")
        elif occ.name in ORDINARY and concept is not None:
            problems.append(f"{where}: got {concept}, expected no card")
    return problems


def card_rate(label: str, results: dict[Occurrence, str | None]) -> float:
    carded = sum(c is not None for c in results.values())
    rate = carded / len(results)
    by_concept = Counter(c for c in results.values() if c is not None)
    print(
        f"\n{label}: {carded}/{len(results)} identifier occurrences get a card ({rate:.1%}); "
        f"most frequent: {', '.join(f'{c} x{n}' for c, n in by_concept.most_common(6))}"
    )
    return rate


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return Glossary.load([ROOT / "corpus" / "glossary.yaml"])


@pytest.fixture(scope="module")
def finder(glossary: Glossary) -> TermFinder:
    return TermFinder(glossary)


@pytest.fixture(scope="module")
def written() -> Source:
    return make_source("modeling_style.py (written)", WRITTEN, WRITTEN.read_text("utf-8"))


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the real-file test may not be skipped: {reason}")
    pytest.skip(reason)


def transformers_wheel() -> Path:
    """The transformers wheel, from the cache or downloaded into it (benchmarks/real_code.py)."""
    try:
        return real_code.fetch_wheel(f"transformers=={TRANSFORMERS_VERSION}", WHEEL_CACHE)
    except real_code.Unavailable as exc:
        _unavailable(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Source:
    wheel = transformers_wheel()
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(LLAMA_MEMBER).decode("utf-8")
    path = tmp_path_factory.mktemp("transformers") / "modeling_llama.py"
    path.write_text(text, encoding="utf-8")
    return make_source(f"modeling_llama.py (transformers {TRANSFORMERS_VERSION})", path, text)


def core_sweep(finder: TermFinder, source: Source) -> dict[Occurrence, str | None]:
    """Hover every occurrence (cursor mid-identifier) with the core, as the server does (the
    document is the context that picks senses)."""
    results: dict[Occurrence, str | None] = {}
    for occ in source.occurrences:
        context = Context(source.text, occ.line, source.label)
        hit = finder.at(
            source.lines[occ.line], (occ.start + occ.end) // 2, prose=False, context=context
        )
        if hit is not None:
            assert (hit.start, hit.end) == (occ.start, occ.end), (occ, hit)
        results[occ] = hit.concept if hit else None
    return results


_sweeps: dict[str, dict[Occurrence, str | None]] = {}


def swept(finder: TermFinder, source: Source) -> dict[Occurrence, str | None]:
    if source.label not in _sweeps:
        _sweeps[source.label] = core_sweep(finder, source)
    return _sweeps[source.label]


# --- the core sweep ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["written", "real"])
def test_core_sweep(which: str, request: pytest.FixtureRequest, finder: TermFinder):
    source: Source = request.getfixturevalue(which)
    must_have = WRITTEN_MUST_HAVE if which == "written" else REAL_MUST_HAVE
    assert must_have <= source.names, sorted(must_have - source.names)
    results = swept(finder, source)
    problems = check(results, names=set(CONCEPT) | ORDINARY)
    assert not problems, "\n".join(problems)
    rate = card_rate(source.label, results)
    assert rate < CARD_RATE_CEILING


def _disagreement_params():
    for name, (expected, reason) in DISAGREEMENTS.items():
        want = "no card" if expected is None else f"a card of {expected}"
        yield pytest.param(
            name,
            expected,
            id=name,
            marks=pytest.mark.xfail(strict=True, reason=f"{name}: {reason}; expected {want}"),
        )


def _over_disagreements(test):
    """Parametrize over DISAGREEMENTS (a list: pytest wants a collection); with none listed
    there is no such test, rather than one skipped for an empty parameter set."""
    params = list(_disagreement_params())
    if not params:
        test.__test__ = False  # pytest does not collect it
        return test
    return pytest.mark.parametrize(("name", "expected"), params)(test)


@_over_disagreements
def test_disagreement(name: str, expected, request: pytest.FixtureRequest, finder: TermFinder):
    """Cases where the server disagrees with the expectation (each one xfail, strict)."""
    sources = []
    written_source: Source = request.getfixturevalue("written")
    if name in written_source.names:
        sources.append(written_source)
    try:
        sources.append(request.getfixturevalue("real"))
    except pytest.skip.Exception:
        if not sources:
            raise
    got: Counter[str | None] = Counter()
    for source in sources:
        for occ, concept in swept(finder, source).items():
            if occ.name == name:
                got[concept] += 1
    assert got, f"{name} occurs in neither file"
    wanted = {None} if expected is None else set(expected_ids(expected))
    assert set(got) <= wanted, f"{name}: got {dict(got)}"


# --- the same through the real server ---------------------------------------------------------

_TITLE = re.compile(r"\*\*(.+?)\*\*")


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _utf16(line: str, col: int) -> int:
    return len(line[:col].encode("utf-16-le")) // 2


async def lsp_sweep(
    client: LanguageClient, source: Source, occurrences: list[Occurrence], glossary: Glossary
) -> dict[Occurrence, str | None]:
    by_name = {c.name: cid for cid, c in glossary.concepts.items()}
    uri = open_doc(client, source.path, "python", source.text)
    await wait_loaded(client)

    async def hover(occ: Occurrence) -> str | None:
        line = source.lines[occ.line]
        result = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(occ.line, _utf16(line, (occ.start + occ.end) // 2)),
            )
        )
        if result is None:
            return None
        assert result.range is not None
        assert (result.range.start.line, result.range.end.line) == (occ.line, occ.line)
        assert (result.range.start.character, result.range.end.character) == (
            _utf16(line, occ.start),
            _utf16(line, occ.end),
        ), occ
        assert isinstance(result.contents, types.MarkupContent)
        title = _TITLE.match(result.contents.value)
        assert title is not None, result.contents.value[:200]
        return by_name[_unescape(title.group(1))]

    concepts = await asyncio.gather(*(hover(occ) for occ in occurrences))
    return dict(zip(occurrences, concepts, strict=True))


def _assert_server_agrees(
    lsp: dict[Occurrence, str | None],
    core: dict[Occurrence, str | None],
    label: str,
    ceiling: float,
) -> None:
    differ = [f"{o.name} at {o.line + 1}:{o.start + 1}: server {c}, core {core[o]}"
              for o, c in lsp.items() if c != core[o]]  # fmt: skip
    assert not differ, "\n".join(differ)
    problems = check(lsp, names=set(CONCEPT) | ORDINARY)
    assert not problems, "\n".join(problems)
    rate = card_rate(f"{label} via the server", lsp)
    assert rate < ceiling


async def test_server_sweep_written_file(
    client: LanguageClient, written: Source, finder: TermFinder, glossary: Glossary
):
    """Every identifier occurrence of the written file, hovered through the real server."""
    lsp = await lsp_sweep(client, written, written.occurrences, glossary)
    _assert_server_agrees(lsp, swept(finder, written), written.label, CARD_RATE_CEILING)


async def test_server_sweep_real_file(
    client: LanguageClient, real: Source, finder: TermFinder, glossary: Glossary
):
    """The first occurrence of each distinct identifier of modeling_llama.py, via the server."""
    first: dict[str, Occurrence] = {}
    for occ in real.occurrences:
        first.setdefault(occ.name, occ)
    lsp = await lsp_sweep(client, real, list(first.values()), glossary)
    _assert_server_agrees(
        lsp, swept(finder, real), f"{real.label}, distinct identifiers", DISTINCT_CARD_RATE_CEILING
    )
