"""Retrieval quality on the dev query set, with the thresholds CI enforces."""

from __future__ import annotations

import sys

import pytest
import yaml

from ..conftest import DATA, ROOT, SHARED, shared_copy

sys.path.insert(0, str(ROOT / "benchmarks"))
import retrieval  # noqa: E402

QUERIES = DATA / "dev-queries.yaml"  # a copy of the team's shared/eval/dev-queries.yaml


@pytest.fixture(scope="module")
def queries():
    return yaml.safe_load(QUERIES.read_text(encoding="utf-8"))


def test_dev_queries_hit_at_1_and_3(reference, queries):
    shared = shared_copy(SHARED / "eval" / "dev-queries.yaml")
    if shared is not None:  # the copy is the team's current set
        assert QUERIES.read_bytes() == shared.read_bytes(), (
            f"{shared} changed: copy it to {QUERIES.relative_to(ROOT)}"
        )
    report = retrieval.evaluate(reference, queries)
    detail = "\n".join(report["misses"])
    assert report["hit@1"] >= 0.90, detail
    assert report["hit@3"] >= 0.97, detail


def test_results_are_grouped_not_repeated(reference):
    results = reference.search("DPO loss", limit=5).results
    first = results[0].entry
    assert first.question.startswith("DPO的第0步loss")
    assert first.also_in  # the same question in the other source
    shown = {r.entry.id for r in results}
    assert not shown & set(first.also_in)


def test_extra_regression_queries(reference):
    """Our own broader set (identifiers, abbreviations, Chinese terms, typos): a guard
    against regressions, with a looser bar since some expectations are debatable."""
    extra = yaml.safe_load((ROOT / "benchmarks" / "extra-queries.yaml").read_text(encoding="utf-8"))
    report = retrieval.evaluate(reference, extra)
    detail = "\n".join(report["misses"])
    assert report["hit@1"] >= 0.85, detail
    assert report["hit@3"] >= 0.90, detail
