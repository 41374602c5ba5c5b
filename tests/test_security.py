"""Security invariants: no user text rendered as HTML, no eval/exec, never trust_remote_code, capped uploads,
no secrets in the repository and no network use by the catalog and the recommender.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ["catalog", "recommender", "live_demo", "pages", "bench", "scripts"]


def source_lines():
    files = [ROOT / "app.py"] + [p for d in CODE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            yield path.relative_to(ROOT).as_posix(), number, line


FORBIDDEN = {
    "unsafe_allow_html=True": re.compile(r"unsafe_allow_html\s*=\s*True"),
    "eval()": re.compile(r"(?<![\w.])eval\s*\("),            # model.eval() (torch) is a method call, allowed
    "exec()": re.compile(r"(?<![\w.])exec\s*\("),
    "trust_remote_code other than False": re.compile(r"trust_remote_code\s*=\s*(?!False\b)"),
    "yaml.load (use safe_load)": re.compile(r"yaml\.load\s*\("),
    "pickle": re.compile(r"^\s*(import|from)\s+pickle|pickle\.loads?\("),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?!.*weights_only\s*=\s*True)"),
    "shell=True": re.compile(r"shell\s*=\s*True"),
    "raw HTML components": re.compile(r"\bst\.html\(|components\.v1|components\.html\("),
}


@pytest.mark.parametrize("rule", list(FORBIDDEN))
def test_no_dangerous_constructs(rule):
    pattern = FORBIDDEN[rule]
    hits = []
    for path, number, line in source_lines():
        if pattern.search(line.split("#", 1)[0] if rule != "trust_remote_code other than False" else line):
            hits.append(f"{path}:{number}: {line.strip()}")
    assert not hits, f"{rule} found:\n" + "\n".join(hits)


def test_trust_remote_code_is_passed_as_false_where_models_load():
    text = (ROOT / "live_demo" / "models.py").read_text(encoding="utf-8")
    assert text.count("trust_remote_code=False") >= 2 and "trust_remote_code=True" not in text


# ------------------------------------------------------------------ upload size cap
def test_config_upload_over_the_cap_is_refused_on_the_page():
    from recommender.models import MAX_CONFIG_BYTES

    at = AppTest.from_file(str(ROOT / "pages" / "recommender_page.py"), default_timeout=120).run()
    at.radio(key="rec_model_source").set_value("config.json").run()
    at.file_uploader(key="rec_config_file").set_value(("config.json", b"{" + b" " * MAX_CONFIG_BYTES + b"}",
                                                   "application/json")).run()
    assert not at.exception
    assert any("too large" in e.value for e in at.error)
    assert at.text_area(key="rec_config_text").max_chars == MAX_CONFIG_BYTES   # the paste box is capped too


def test_config_parser_caps_size_for_every_input_type():
    from recommender import RecommenderInputError
    from recommender.models import MAX_CONFIG_BYTES, model_from_hf_config

    body = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 100,
            "pad": "x" * MAX_CONFIG_BYTES}
    for raw in (json.dumps(body), json.dumps(body).encode()):
        with pytest.raises(RecommenderInputError, match="too large"):
            model_from_hf_config(raw)


# ------------------------------------------------------------------ secrets and network
SECRET_PATTERNS = [
    re.compile(r"hf_[A-Za-z0-9]{30,}"),                  # Hugging Face token
    re.compile(r"sk-[A-Za-z0-9]{20,}"),                  # OpenAI-style key
    re.compile(r"AKIA[0-9A-Z]{16}"),                     # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # a credential assigned a literal (tokenizer fields such as eos_token="<|endoftext|>" are not credentials)
    re.compile(r"(?i)\b(api[_-]?key|secret[_-]?key|password|access[_-]?token|auth[_-]?token)\s*[:=]\s*['\"][^'\"\s]{12,}"),
]


def test_no_secrets_in_tracked_files():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    hits = []
    for name in listed.stdout.splitlines():
        path = ROOT / name
        if ".streamlit/secrets.toml" in name:
            hits.append(name)
        if not path.is_file() or path.stat().st_size > 2_000_000 or path.suffix in {".png", ".gguf", ".safetensors"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        hits += [f"{name}: {p.pattern}" for p in SECRET_PATTERNS if p.search(text)]
    assert not hits, hits


def test_catalog_and_recommender_never_open_a_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from catalog import load_catalog
    from catalog.search import SearchIndex
    from recommender import GPU, PlanRequest, plan
    from recommender.models import resolve_model

    assert SearchIndex(load_catalog()).search("kv cache quantization")
    result = plan(PlanRequest(model=resolve_model("llama-2-7b"), gpu=GPU.from_name("t4")))
    assert result.plans


def test_packages_import_no_network_client():
    banned = re.compile(r"^\s*(import|from)\s+(requests|httpx|urllib\.request|http\.client|huggingface_hub|aiohttp)")
    hits = [f"{p}:{n}" for p, n, line in source_lines()
            if p.startswith(("catalog/", "recommender/", "pages/catalog", "pages/recommender", "pages/home"))
            and banned.search(line)]
    assert not hits, hits


# ------------------------------------------------------------------ model path allow-list (live demo)
def _allow_list_implemented() -> bool:
    return any("ELLM_ALLOWED_MODEL_DIRS" in p.read_text(encoding="utf-8") for p in (ROOT / "live_demo").glob("*.py"))


def test_allow_list_is_implemented():
    assert _allow_list_implemented()


def test_local_model_path_outside_the_allowed_dirs_is_refused(tmp_path, monkeypatch):
    from live_demo.models import load_model

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    monkeypatch.setenv("ELLM_ALLOWED_MODEL_DIRS", str(allowed))
    monkeypatch.setenv("ELLM_CACHE_DIR", str(tmp_path / "cache"))
    for path in (str(outside), "/etc", str(allowed / ".." / "outside")):
        with pytest.raises(ValueError) as err:
            load_model(path, "cpu")
        assert "ELLM_ALLOWED_MODEL_DIRS" in str(err.value)


def test_model_id_that_is_neither_hub_id_nor_directory_is_refused(monkeypatch, tmp_path):
    from live_demo.errors import ModelLoadError
    from live_demo.models import load_model

    monkeypatch.chdir(tmp_path)
    for bad in ("owner/name/extra", "a b", "https://evil.example/model", "owner/..name/../x"):
        with pytest.raises(ModelLoadError, match="neither a Hugging Face id"):
            load_model(bad, "cpu")


def test_deployment_env_names_are_documented():
    doc = ROOT / "README.md"  # the "Deploying for a team" section
    text = doc.read_text(encoding="utf-8")
    for name in ("ELLM_ALLOWED_MODEL_DIRS", "ELLM_CACHE_DIR", "ELLM_HISTORY_DB", "enableXsrfProtection",
                 "maxUploadSize", "server.address"):
        assert name in text, f"{name} is not documented in the README's deployment section"
