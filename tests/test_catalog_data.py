"""Integrity of the catalog's data files (the schema checks of the catalog issue)."""

from __future__ import annotations

from collections import Counter

import pytest

from catalog import load_catalog
from catalog.core import CatalogError, load_catalog_from
from catalog.originality import copied_runs, shingles
from catalog.schema import validate_technique


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_is_about_the_size_of_the_survey(catalog):
    assert 230 <= len(catalog.techniques) <= 330


def test_ids_are_unique(catalog):
    duplicates = [i for i, n in Counter(catalog.technique_ids()).items() if n > 1]
    assert duplicates == []


def test_every_path_exists_in_the_taxonomy(catalog):
    nodes = set(catalog.categories())
    missing = [(t.id, t.path) for t in catalog.techniques if t.path not in nodes]
    assert missing == []
    # and every node's parent is itself a node, so the tree is connected
    orphans = [n for n in nodes if len(n) > 1 and n[:-1] not in nodes]
    assert orphans == []


def test_every_root_has_techniques(catalog):
    assert {t.area for t in catalog.techniques} == {"Model-Centric", "Data-Centric", "LLM Frameworks"}


def test_every_citation_resolves_to_a_reference(catalog):
    # load_catalog resolves every citation; a wrong one raises. Check the match is the right paper too.
    for technique in catalog.techniques:
        surname = technique.citation.split()[0].rstrip(",")
        assert any(surname.lower() in a.lower() for a in technique.reference.authors[:2]), technique.id
        if technique.reference.year:
            assert technique.year == technique.reference.year, technique.id


def test_every_relation_points_to_an_existing_id(catalog):
    ids = set(catalog.technique_ids())
    dangling = [(t.id, kind, target) for t in catalog.techniques for kind, targets in t.relations.items()
                for target in targets if target not in ids]
    assert dangling == []


def test_no_summary_is_empty_and_each_has_two_to_four_sentences(catalog):
    for technique in catalog.techniques:
        assert technique.summary.strip(), technique.id


def test_summaries_do_not_copy_ten_word_runs_from_the_survey(catalog, survey_text):
    source = shingles(survey_text)
    copied = {t.id: copied_runs(t.summary, source) for t in catalog.techniques}
    copied.update({" > ".join(n.path): copied_runs(n.description, source) for n in catalog.taxonomy})
    assert {k: v for k, v in copied.items() if v} == {}


def test_name_collisions_are_kept_apart(catalog):
    lions = [t for t in catalog.techniques if t.name.lower().startswith("lion")]
    assert len({t.id for t in lions}) == len(lions) >= 2
    zero_like = {t.id for t in catalog.techniques if t.name.lower() in {"zero", "zero-init", "zer0"}}
    assert "zero" in catalog.technique_ids() and len(zero_like) >= 1


def test_survey_tables_are_complete(catalog):
    assert len(catalog.pretraining_costs) == 19
    assert len(catalog.frameworks) == 14
    by_model = {row["model"]: row for row in catalog.pretraining_costs}
    assert float(by_model["BLOOM"]["accelerator_days"]) == 384 * 105
    assert by_model["GPT-3"]["accelerator_days"] == ""


def test_framework_entries_match_table2(catalog):
    vllm = next(f for f in catalog.frameworks if f["id"] == "vllm")
    assert (vllm["training"], vllm["fine_tuning"], vllm["inference"]) == (False, False, True)
    ids = set(catalog.technique_ids())
    assert {f["id"] for f in catalog.frameworks} <= ids


def test_validator_rejects_bad_entries():
    entry = {"id": "Bad Id", "name": "x", "aliases": [], "path": ["Nowhere"], "summary": "One sentence.",
             "year": 2023, "citation": "X et al., 2023", "stages": ["cooking"], "acts_on": ["weights"],
             "adoption_cost": "free"}
    problems = " ".join(validate_technique(entry))
    for expected in ("kebab-case", "path", "sentences", "stages", "adoption_cost"):
        assert expected in problems


def test_loader_reports_an_unresolvable_citation(tmp_path, catalog):
    import json

    (tmp_path / "techniques").mkdir()
    refs = [r.to_dict() for r in catalog.references]
    (tmp_path / "references.json").write_text(json.dumps(refs))
    (tmp_path / "techniques" / "x.yaml").write_text(
        "techniques:\n- {id: x, name: X, aliases: [], path: [Model-Centric, A], year: 2023,\n"
        "   summary: 'First sentence. Second sentence.', citation: 'Nobody et al., 2023',\n"
        "   stages: [inference], acts_on: [weights], adoption_cost: training-free}\n")
    with pytest.raises(ValueError, match="Nobody"):
        load_catalog_from(tmp_path)
    (tmp_path / "techniques" / "x.yaml").write_text("techniques: [unclosed")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog_from(tmp_path)


_NEW_STYLE = """\
taxonomy:
  - path: [Model-Centric]
    description: "Root."
  - path: [Model-Centric, Efficient Inference]
    description: "Inference."
techniques:
  - id: eagle
    name: EAGLE
    aliases: []
    path: [Model-Centric, Efficient Inference]
    summary: "A drafting head predicts features. It needs no separate draft model."
    year: 2024
    citation: "Li et al., 2024"
    stages: [inference]
    acts_on: [architecture]
    adoption_cost: needs-fine-tuning
    since_survey: true
    title: "EAGLE: Speculative Sampling Requires Rethinking Feature Uncertainty"
    authors: ["Yuhui Li", "Fangyun Wei", "Chao Zhang", "Hongyang Zhang"]
    venue: "ICML 2024"
    arxiv: "2401.15077"
    paper_url: "https://arxiv.org/abs/2401.15077"
    code_url: "https://github.com/SafeAILab/EAGLE"
  - id: gptq
    name: GPTQ
    aliases: [OPTQ]
    path: [Model-Centric, Efficient Inference]
    summary: "Quantizes weights to 4 bits. It uses second-order information."
    year: 2023
    citation: "Frantar et al., 2023"
    stages: [inference]
    acts_on: [weights]
    adoption_cost: needs-calibration
    venue: "ICLR 2023"
"""


def _tmp_data(tmp_path, catalog, techniques: str = _NEW_STYLE, links: str | None = None):
    import json

    (tmp_path / "techniques").mkdir(exist_ok=True)
    (tmp_path / "references.json").write_text(json.dumps([r.to_dict() for r in catalog.references]))
    (tmp_path / "techniques" / "50_new.yaml").write_text(techniques)
    if links is not None:
        (tmp_path / "links").mkdir(exist_ok=True)
        (tmp_path / "links" / "10_links.yaml").write_text(links)
    return tmp_path


def test_new_style_entry_and_links_file_load(tmp_path, catalog):
    links = ("gptq:\n  venue: 'ICLR 2099'\n  arxiv: '2210.17323'\n  paper_url: 'https://arxiv.org/abs/2210.17323'\n"
             "  engines: {vllm: 'https://docs.vllm.ai/en/latest/features/quantization/gptqmodel.html'}\n")
    loaded = load_catalog_from(_tmp_data(tmp_path, catalog, links=links))
    eagle, gptq = loaded.get("eagle"), loaded.get("gptq")
    # the new entry's reference is built from its own fields, not looked up in the survey list
    assert eagle.since_survey and eagle.reference.title.startswith("EAGLE")
    assert (eagle.reference.arxiv_id, eagle.reference.url) == ("2401.15077", "https://arxiv.org/abs/2401.15077")
    assert eagle.reference.authors[0] == "Yuhui Li" and eagle.code_url.endswith("SafeAILab/EAGLE")
    # the links file fills what the entry lacks; the entry's own venue wins
    assert gptq.venue == "ICLR 2023" and gptq.arxiv == "2210.17323"
    assert gptq.paper_link == "https://arxiv.org/abs/2210.17323" and "vllm" in gptq.engines
    assert "GPTQ" in gptq.reference.title or "OPTQ" in gptq.reference.title
    assert gptq.to_dict()["engines"]["vllm"].startswith("https://")


@pytest.mark.parametrize(("links", "message"), [
    ("nosuch:\n  venue: 'ICML 2024'\n", "10_links.yaml.*nosuch"),
    ("gptq:\n  stars: 5\n", "10_links.yaml: gptq: unknown field"),
    ("gptq:\n  arxiv: 'https://arxiv.org/abs/2210.17323'\n", "bare arXiv id"),
    ("gptq:\n  paper_url: 'http://example.org/x'\n", "https://"),
    ("gptq:\n  engines: {ollama: 'https://ollama.com'}\n", "not one of"),
])
def test_bad_links_name_the_file_and_id(tmp_path, catalog, links, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog_from(_tmp_data(tmp_path, catalog, links=links))


@pytest.mark.parametrize(("change", "message"), [
    (("year: 2024", "year: 2023"), "dated after 2023"),
    (('    paper_url: "https://arxiv.org/abs/2401.15077"\n', ""), "also needs paper_url"),
    (("since_survey: true", "since_survey: yes please"), "true or false"),
    (('    title: "EAGLE: Speculative Sampling Requires Rethinking Feature Uncertainty"\n', ""), "need title"),
])
def test_new_fields_are_validated(tmp_path, catalog, change, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog_from(_tmp_data(tmp_path, catalog, techniques=_NEW_STYLE.replace(*change, 1)))
