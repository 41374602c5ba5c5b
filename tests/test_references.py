"""The survey's reference list parses into records and in-text citations resolve."""

from __future__ import annotations

import pytest

from catalog.build import parse_table1
from catalog.references import (
    CitationError,
    ReferenceIndex,
    parse_citation,
    parse_reference,
    parse_reference_list,
)


def test_parse_one_reference_with_arxiv_id():
    ref = parse_reference(
        "Weizhi Fei, Xueyan Niu, and Wei Han. Extending context window of large language models via semantic "
        "compression. *arXiv preprint arXiv:2312.09571*, 2023.")
    assert ref.authors == ["Weizhi Fei", "Xueyan Niu", "Wei Han"]
    assert ref.title.startswith("Extending context window")
    assert ref.venue == "arXiv preprint arXiv:2312.09571"
    assert (ref.year, ref.arxiv_id) == (2023, "2312.09571")
    assert ref.url == "https://arxiv.org/abs/2312.09571"
    assert ref.key == "Fei et al., 2023"


def test_initials_do_not_end_the_author_list():
    ref = parse_reference("Yaniv Leviathan, Matan Kalman, and Y. Matias. Fast inference from transformers via "
                          "speculative decoding. In *International Conference on Machine Learning*, 2022.")
    assert ref.authors[-1] == "Y. Matias"
    assert ref.title == "Fast inference from transformers via speculative decoding"


def test_two_author_key_and_letter_suffix():
    ref = parse_reference("Elias Frantar and Dan Alistarh. Sparsegpt: Massive language models can be accurately "
                          "pruned in one-shot, 2023a.")
    assert ref.key == "Frantar & Alistarh, 2023a"


def test_parse_citation_forms():
    assert parse_citation("Kim et al., 2023d") == ("Kim", None, "2023d")
    assert parse_citation("Frantar & Alistarh, 2022") == ("Frantar", "Alistarh", "2022")
    with pytest.raises(CitationError):
        parse_citation("not a citation")


def test_whole_reference_list(survey_text):
    refs = parse_reference_list(survey_text)
    assert len(refs) == 385
    index = ReferenceIndex(refs)
    assert "GPTQ" in index.resolve("Frantar et al., 2023").title or "OPTQ" in index.resolve("Frantar et al., 2023").title
    assert index.resolve("Dettmers et al., 2022").title.lower().startswith("llm.int8")
    with pytest.raises(CitationError):
        index.resolve("Nobody et al., 2023")


def test_packaged_references_match_the_survey(survey_text):
    from catalog.core import load_references

    assert [r.key for r in load_references()] == [r.key for r in parse_reference_list(survey_text)]


def test_table1_parses_19_rows(survey_text):
    rows = parse_table1(survey_text)
    assert len(rows) == 19
    llama = next(r for r in rows if r["model"] == "LLaMA")
    assert (llama["accelerator_count"], llama["accelerator_days"]) == (2048, 2048 * 21)
