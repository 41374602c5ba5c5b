"""Search ranking: exact names first, tolerant of typos and case; filters."""

from __future__ import annotations

import pytest

from catalog import load_catalog
from catalog.search import SearchIndex, filter_techniques


@pytest.fixture(scope="module")
def index():
    return SearchIndex(load_catalog())


def top_ids(index, query, n=3):
    return [h.technique.id for h in index.search(query)[:n]]


@pytest.mark.parametrize("query", ["GPTQ", "gptq", "  Gptq "])
def test_exact_name_comes_first_in_any_case(index, query):
    assert top_ids(index, query, 1) == ["gptq"]


def test_typo_still_finds_the_technique(index):
    assert "gptq" in top_ids(index, "gtpq", 3)
    assert "sparsegpt" in top_ids(index, "sparsgpt", 3)


def test_flash_attn_finds_flashattention(index):
    assert top_ids(index, "flash attn", 1)[0].startswith("flashattention")


def test_kv_cache_finds_kv_cache_techniques(index):
    hits = index.search("kv cache")[:10]
    assert hits and all("kv-cache" in h.technique.acts_on or "kv" in h.technique.summary.lower() for h in hits[:5])


def test_alias_match(index):
    gptq = load_catalog().get("gptq")
    if gptq.aliases:
        assert top_ids(index, gptq.aliases[0], 1) == ["gptq"]


def test_nonsense_finds_nothing(index):
    assert index.search("zzqxw vvbnm") == []


def test_too_long_query_is_refused(index):
    with pytest.raises(ValueError, match="too long"):
        index.search("x" * 501)


def test_filters_combine():
    techniques = list(load_catalog().techniques)
    inference_weights = filter_techniques(techniques, stages=["inference"], acts_on=["weights"])
    assert inference_weights and all("inference" in t.stages and "weights" in t.acts_on for t in inference_weights)
    recent = filter_techniques(techniques, year_range=(2023, 2023), open_source_only=True)
    assert all(t.year == 2023 and t.libraries for t in recent)
    with pytest.raises(ValueError, match="reversed"):
        filter_techniques(techniques, year_range=(2024, 2020))
