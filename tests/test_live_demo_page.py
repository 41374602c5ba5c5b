"""AppTest of every live-demo tab with the tiny random model injected through ELLM_DEMO_MODEL=tiny."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from live_demo import views

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "live_demo_page.py"


@pytest.fixture()
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("ELLM_DEMO_MODEL", "tiny")
    monkeypatch.setenv("ELLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ELLM_HISTORY_DB", str(tmp_path / "history.sqlite"))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def _table(at, column: str):
    """The first rendered dataframe that has `column` (AppTest does not expose dataframe keys)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with column {column!r}")


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_header_shows_device_dtype_params_memory(app):
    m = _metrics(app)
    assert app.title[0].value == "Live demo"
    assert m["Model"] == "tiny" and m["Device"].startswith("cpu") and "float32" in m["Device"]
    assert m["Parameters"].endswith("M") and m["Memory in use"].endswith("GiB")
    assert [t.label for t in app.tabs] == ["Quantization", "Prompt compression", "Speculative decoding", "History"]


def test_quantization_tab_runs_and_records(app):
    app.multiselect(key="live_quant_methods").set_value(["int8-weight-only", "int4-g32"]).run()
    app.slider(key="live_quant_new_tokens").set_value(8).run()
    app.button(key="live_quant_run").click().run()
    _ok(app)
    table = _table(app, "weights MB")
    assert list(table["method"]) == ["fp32 (baseline)", "int8-weight-only", "int4-g32"]
    res = app.session_state["live_quant_result"]
    sizes = [res.baseline["weight_bytes"]] + [res.methods[m]["weight_bytes"] for m in res.methods]
    assert sizes[2] < sizes[1] < sizes[0]
    app.slider(key="live_absmax_bits").set_value(8).run()
    assert _metrics(app)["Levels used"].endswith("of 256")
    assert any(c.value.startswith("3 runs stored") for c in app.caption)  # baseline + 2 methods in the history
    assert len(_table(app, "kind")) == 3


def test_quantization_tab_measures_decode_perplexity_when_asked(app):
    app.multiselect(key="live_quant_methods").set_value(["int8-dynamic", "int8-weight-only"]).run()
    app.slider(key="live_quant_new_tokens").set_value(8).run()
    app.checkbox(key="live_quant_decode_ppl").check().run()
    app.button(key="live_quant_run").click().run()
    _ok(app)
    table = _table(app, "weights MB")
    column = list(table["Δ decode perplexity %"])
    # baseline, dynamic (measured), weight-only (not measured: its result does not depend on the batch)
    assert column[0] == 0.0 and column[1] == column[1] and column[2] != column[2]  # x != x only for NaN


def test_compression_tab_greys_tokens_and_reports(app):
    app.selectbox(key="live_comp_method").set_value("lingua").run()
    app.slider(key="live_comp_ratio").set_value(2.0).run()
    app.button(key="live_comp_run").click().run()
    _ok(app)
    m = _metrics(app)
    assert m["Compression ratio"].endswith("×") and "Quality kept (answer probability)" in m
    assert any(":gray[" in md.value and "dropped tokens in grey" in md.value for md in app.markdown)
    app.slider(key="live_comp_eval_items").set_value(2).run()
    app.button(key="live_comp_eval").click().run()
    _ok(app)
    methods = list(_table(app, "quality kept")["method"])
    assert {"ours", "random"} <= set(methods)


def test_compression_empty_context_is_a_clear_error(app):
    first = app.selectbox(key="live_comp_item").value["id"]
    app.text_area(key=f"live_comp_context_{first}").set_value("   ").run()
    app.button(key="live_comp_run").click().run()
    assert not app.exception
    assert any("empty" in e.value for e in app.error)


@pytest.mark.parametrize("drafter", ["prompt-lookup", "int8-self", "early-exit"])
def test_speculative_tab_marks_tokens_and_matches_greedy(app, drafter):
    app.selectbox(key="live_spec_drafter").set_value(drafter).run()
    app.slider(key="live_spec_new").set_value(16).run()
    app.button(key="live_spec_run").click().run()
    assert not app.exception, [e.value for e in app.exception]
    m = _metrics(app)
    assert m["Identical to greedy"] == "yes"
    assert "Acceptance rate" in m and "Target passes / token" in m
    assert any("accepted from draft" in md.value for md in app.markdown)
    assert any("2-core CPU" in i.value for i in app.info)


def test_default_speculative_run_shows_lookup_working_and_no_fake_draft_size(app):
    assert app.selectbox(key="live_spec_preset").value == "code-copy"
    assert any("suits prompt-lookup" in c.value for c in app.caption)
    app.slider(key="live_spec_new").set_value(16).run()
    app.button(key="live_spec_run").click().run()
    _ok(app)
    assert not any("0.001" in w.value for w in app.warning)  # no 0.001 B draft below the cost model's minimum
    assert any(c.value.startswith("Decode path: eager") for c in app.caption)


def test_batch_sweep_runs_and_records(app):
    app.multiselect(key="live_sweep_methods").set_value(["baseline", "int8-weight-only"]).run()
    app.select_slider(key="live_sweep_max").set_value(2).run()
    app.button(key="live_sweep_run").click().run()
    _ok(app)
    table = _table(app, "weights GB/s")
    assert list(table["batch"]) == [1, 2, 1, 2] and (table["% of peak"] > 0).all()
    assert any(c.value.startswith("2 runs stored") or "runs stored" in c.value for c in app.caption)


def test_speculative_draft_model_needs_an_id(app):
    app.selectbox(key="live_spec_drafter").set_value("draft-model").run()
    app.text_input(key="live_spec_draft_id").set_value("tiny").run()
    app.button(key="live_spec_run").click().run()
    assert not app.exception
    assert _metrics(app)["Identical to greedy"] == "yes"
    app.text_input(key="live_spec_draft_id").set_value("/no/such/draft").run()
    app.button(key="live_spec_run").click().run()
    assert not app.exception and any("does not exist" in e.value for e in app.error)


def test_empty_speculative_prompt_is_a_clear_error(app):
    preset = app.selectbox(key="live_spec_preset").value
    app.text_area(key=f"live_spec_prompt_{preset}").set_value("").run()
    app.button(key="live_spec_run").click().run()
    assert not app.exception and any("empty" in e.value for e in app.error)


def test_corrupt_history_shows_error_and_page_keeps_working(monkeypatch, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 200)
    monkeypatch.setenv("ELLM_DEMO_MODEL", "tiny")
    monkeypatch.setenv("ELLM_HISTORY_DB", str(bad))
    at = AppTest.from_file(str(PAGE), default_timeout=120).run()
    assert not at.exception
    assert any("not a valid SQLite database" in e.value for e in at.error)
    at.slider(key="live_spec_new").set_value(8).run()
    at.button(key="live_spec_run").click().run()
    assert not at.exception
    assert any("not saved" in w.value for w in at.warning)
    assert bad.read_bytes().startswith(b"garbage")


def test_unknown_model_id_is_a_clear_error(app):
    app.text_input(key="live_model_id").set_value("/no/such/model").run()
    assert not app.exception
    assert any("does not exist" in e.value for e in app.error)


# ------------------------------------------------------------------ token views: pure, inert markdown
HOSTILE = ["<script>alert(1)</script>", "]", ":red[x]", "**bold**", "`code`", "$x^2$", "\n", "\n\n", "  # h",
           "[link](javascript:alert(1))", ":smile:", "\\", "&lt;b&gt;", "~~gone~~", "| a | b |", "\t- item",
           "1. one", "---", "<img src=x onerror=alert(1)>", ":material/home:", "]]]:gray[", "\r\n"]
DIRECTIVES = {views.DROPPED, views.FROM_DRAFT, views.FROM_TARGET}


def _normalised(token: str) -> str:
    """What the view promises to show: line breaks kept, tabs as four spaces, other whitespace as a space."""
    text = token.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(c if c == "\n" or not (c.isspace() or ord(c) < 32) else " " for c in text)


def _decode(markdown: str) -> list[tuple[str | None, str]]:
    """Read token markdown back as (directive, character) pairs, failing on any markup the view does not emit.

    The only live syntax allowed: `\\` before ASCII punctuation, `\\` + newline right after the newline mark,
    `:name[` for the view's own directives and the `]` that closes one. Anything else active fails the test.
    """
    out: list[tuple[str | None, str]] = []
    directive, i = None, 0
    while i < len(markdown):
        char = markdown[i]
        if char == "\\" and markdown[i + 1:i + 2] == "\n":
            assert out and out[-1][1] == views.NEWLINE_MARK, "hard break without the newline mark"
            assert directive is None, "line break inside a directive label"
            out[-1] = (out[-1][0], "\n")
            following = markdown[i + 2:i + 3]
            assert following and following not in " \t\n", "blank or indented line"
            i += 2
        elif char == "\\":
            assert markdown[i + 1] in string.punctuation, markdown[i:i + 2]
            out.append((directive, markdown[i + 1]))
            i += 2
        elif char == ":" and directive is None:
            name = re.match(r":([a-z-]+)\[", markdown[i:])
            assert name and name.group(1) in DIRECTIVES, markdown[i:i + 30]
            directive, i = name.group(1), i + len(name.group(0))
        elif char == "]" and directive is not None:
            directive, i = None, i + 1
        else:
            assert char not in string.punctuation and char not in "\n\r\t", f"active {char!r} at {i}"
            if i == 0 or markdown[i - 1] == "\n":
                assert char != " ", "a line may not start with a space"
            out.append((directive, " " if char == "\u00a0" else char))
            i += 1
    assert directive is None, "unclosed directive"
    return out


def _expected(tokens: list[str], directives: list[str | None]) -> list[tuple[str | None, str]]:
    pairs = [(d, c) for t, d in zip(tokens, directives, strict=True) for c in _normalised(t)]
    if pairs and pairs[-1][1] == "\n":  # a final line break shows as the mark alone
        pairs[-1] = (pairs[-1][0], views.NEWLINE_MARK)
    return pairs


def test_hostile_tokens_come_out_inert_and_unchanged():
    for directive in (None, views.DROPPED, views.FROM_DRAFT):
        markdown = views.tokens_markdown(HOSTILE, [directive] * len(HOSTILE))
        assert _decode(markdown) == _expected(HOSTILE, [directive] * len(HOSTILE))
        assert "\\<script\\>" in markdown and not re.search(r"(?<!\\)<", markdown) and "\n\n" not in markdown


def test_compression_and_speculative_views_have_inert_bodies_and_a_legend():
    keep = [i % 2 == 0 for i in range(len(HOSTILE))]
    body, legend = views.compression_markdown(HOSTILE, keep).split("\n\n")
    assert _decode(body) == _expected(HOSTILE, [None if k else views.DROPPED for k in keep])
    assert legend.startswith("Legend:") and f":{views.DROPPED}[dropped tokens in grey]" in legend
    body, legend = views.speculative_markdown(HOSTILE, keep).split("\n\n")
    assert _decode(body) == _expected(HOSTILE, [views.FROM_DRAFT if k else views.FROM_TARGET for k in keep])
    assert "accepted from draft" in legend and "produced by the target" in legend


def test_whitespace_stays_visible():
    markdown = views.tokens_markdown(["Hello", "  world", "\n", "    indented"], [None, views.DROPPED, None, None])
    assert markdown == "Hello:gray[ \u00a0world]↵\\\n\u00a0\u00a0\u00a0\u00a0indented"


def test_a_long_run_of_brackets_is_split_below_streamlits_label_limit():
    markdown = views.tokens_markdown(["]" * 2500], [views.DROPPED])
    labels = re.findall(r":gray\[((?:\\.|[^\]])*)\]", markdown)
    assert len(labels) >= 5 and all(label.count("\\") <= 999 for label in labels)
    assert _decode(markdown) == [(views.DROPPED, "]")] * 2500


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.sampled_from([None, *sorted(DIRECTIVES)])), max_size=12))
def test_any_tokens_render_inert_and_read_back_exactly(pairs):
    tokens, directives = [t for t, _ in pairs], [d for _, d in pairs]
    assert _decode(views.tokens_markdown(tokens, directives)) == _expected(tokens, directives)


def test_no_unsafe_html_left_in_the_app():
    """User text is never rendered as HTML: no unsafe_allow_html=True, st.html or components in app code."""
    files = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py")), *sorted((ROOT / "live_demo").rglob("*.py"))]
    pattern = re.compile(r"unsafe_allow_html\s*=\s*True|\bst\.html\(|components\.v1|components\.html\(")
    hits = [f"{path.relative_to(ROOT)}:{number}" for path in files
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if pattern.search(line)]
    assert not hits, hits


def test_live_demo_pages_use_only_public_faces_and_stay_short():
    """Pages import live_demo only through live_demo / live_demo.api, the recommender only through its api, and
    live_demo imports neither the recommender nor streamlit (issue 11)."""
    import ast

    allowed = {"streamlit", "live_demo", "live_demo.api", "recommender", "recommender.api", "common.history",
               "common.text", "pages.live_demo_page_tabs", "__future__", "gc"}
    for page in ("live_demo_page.py", "live_demo_page_tabs.py"):
        source = (ROOT / "pages" / page).read_text(encoding="utf-8")
        tree = ast.parse(source)
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert modules <= allowed, (page, modules - allowed)
        assert len(source.splitlines()) <= 150, page
        keys = re.findall(r"key=f?\"([^\"]+)\"", source)
        assert keys and all(k.startswith("live_") for k in keys), page
    for path in (ROOT / "live_demo").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in names if m.split(".")[0] in ("recommender", "streamlit", "catalog")}, path.name
