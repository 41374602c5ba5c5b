"""The catalog command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "catalog", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_search_json_ranks_exact_name_first():
    result = run("search", "gptq", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["id"] == "gptq"


def test_search_stage_filter():
    result = run("search", "quantization", "--stage", "fine-tuning", "--json")
    assert result.returncode == 0
    assert all("fine-tuning" in t["stages"] for t in json.loads(result.stdout))


def test_show_prints_citation():
    result = run("show", "gptq")
    assert result.returncode == 0
    assert "GPTQ" in result.stdout and "@" in result.stdout


def test_unknown_id_suggests_closest_and_fails():
    result = run("show", "gptqq")
    assert result.returncode != 0
    assert "gptq" in result.stderr and "Traceback" not in result.stderr


def test_export_json_has_the_three_keys():
    result = run("export", "--format", "json")
    data = json.loads(result.stdout)
    assert set(data) == {"techniques", "frameworks", "pretraining_costs"}
    required = {"id", "name", "aliases", "path", "summary", "year", "stages", "acts_on", "adoption_cost", "reference"}
    assert all(required <= set(t) for t in data["techniques"])


def test_export_csv_and_bibtex():
    csv_out = run("export", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("id,name")
    bib = run("export", "--format", "bibtex").stdout
    assert bib.count("@") >= 150 and "title = {" in bib


def test_coverage_reports_the_fraction_and_the_unmatched_papers():
    result = run("coverage", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total"] >= 350 and 0 < data["fraction"] <= 1
    assert len(data["unmatched"]) == data["total"] - data["matched"]
    assert all({"title", "section", "url"} <= set(p) for p in data["unmatched"])
    text = run("coverage").stdout
    assert "papers matched by an entry" in text and ("unmatched:" in text) == bool(data["unmatched"])


def test_since_survey_filters_search_and_export():
    found = json.loads(run("search", "quantization", "--since-survey", "--json").stdout)
    assert all(t["since_survey"] for t in found)
    exported = json.loads(run("export", "--since-survey").stdout)["techniques"]
    assert all(t["since_survey"] for t in exported)


def test_unknown_name_says_no_close_match():
    result = run("search", "Zorbulator")
    assert result.returncode == 0 and result.stdout == "" and "No close match" in result.stderr
