"""`forgeml check` and `forgeml serve --set` on a language-model config and bundle, through the real CLI.

`check` must run the LM data gate (not the table checks) with the table check's exit codes, and
`serve --set` must accept the LM server's own settings and name an unknown one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from llm_fixtures import instruction_records, lm_config, make_tiny_lm, write_jsonl

from forgeml.deploy.verify import free_port

DIRTY = [
    {"instruction": "What is the refund window?", "output": "30 days."},
    {"instruction": "Who do I email?", "output": "Write to jane.doe@example.com any time."},
    {"instruction": "Empty?", "output": "   "},
    {"instruction": "What is the refund window?", "output": "30 days."},
    {"instruction": "Tell me everything. " * 6, "output": "No."},
]


def forgeml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forgeml", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("tiny_lm") / "model")


def write_config(tmp_path: Path, model_dir: Path, records: list[dict], **sections: dict) -> Path:
    source = write_jsonl(tmp_path / "qa.jsonl", records)
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(lm_config(tmp_path, model_dir, source, **sections)), encoding="utf-8")
    return path


@pytest.mark.slow
def test_check_runs_the_lm_gate_and_exits_1_on_blocking_findings(model_dir: Path, tmp_path: Path) -> None:
    result = forgeml("check", str(write_config(tmp_path, model_dir, DIRTY)))
    assert result.returncode == 1, result.stderr
    out = " ".join(result.stdout.split())  # rich may wrap long lines
    assert "qa.jsonl: 5 examples" in out
    assert "qa.jsonl:2 output: contains an e-mail address" in out
    assert "qa.jsonl:3 output: the answer is empty" in out
    assert "qa.jsonl:4: the same example as line 1" in out
    assert "qa.jsonl:5: longer than 96 tokens" in out  # the tokenizer is loaded for too_long
    assert "2 blocking: 2 errors, 2 warnings" in out
    assert "check.allow: [empty_answer, personal_data]" in out
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_check_json_exits_0_when_the_config_allows_the_findings(model_dir: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, model_dir, DIRTY, check={"allow": ["empty_answer", "personal_data"]})
    result = forgeml("check", str(path), "--json", "--report-dir", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "language_model" and report["passed"] and report["examples"] == 5
    found = {(f["id"], f["where"].rsplit("/", 1)[-1], f["allowed"]) for f in report["findings"]}
    assert ("personal_data", "qa.jsonl:2", True) in found and (
        "duplicate_examples",
        "qa.jsonl:4",
        False,
    ) in found
    assert json.loads((tmp_path / "report" / "data_report.json").read_text()) == report


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fix", "-o", "clean.jsonl"], "--fix cleans tables only"),
        (["--target", "output"], "--target: not used for a language-model config"),
    ],
)
def test_check_refuses_table_options_on_an_lm_config(
    model_dir: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    result = forgeml("check", str(write_config(tmp_path, model_dir, instruction_records())), *options)
    assert result.returncode == 2 and message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def bundle(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny model written as an LM bundle (serving limits need no training)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forgeml.bundle.causal_lm import write_lm_bundle
    from forgeml.config import config_from_dict

    folder = tmp_path_factory.mktemp("lm_bundle")
    serve = {"max_tokens_limit": 200, "default_max_tokens": 64}
    config = config_from_dict(lm_config(folder, model_dir, folder / "qa.jsonl", serve=serve))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return write_lm_bundle(
        folder / "bundle", model, tokenizer, config, template=tokenizer.chat_template, metrics={}
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # a valid LM key is taken and checked against the bundle's own settings (default_max_tokens 64)
        (["max_tokens_limit=8"], "serve: default_max_tokens (64) must be <= max_tokens_limit (8)"),
        (["serve.max_concurrent=0"], "serve.max_concurrent: Input should be greater than or equal to 1"),
        (
            ["max_concurrent=1", "max_concurent=4"],
            "serve.max_concurent is not a setting of the language-model server. Did you mean 'max_concurrent'?",
        ),
    ],
)
def test_serve_set_takes_lm_settings_and_names_a_bad_one(
    bundle: Path, settings: list[str], message: str
) -> None:
    """Each error comes from the LM server's settings before the port is bound, so no server starts;
    tests/llm/test_llm_server.py checks that the server honours a config it is given."""
    overrides = [part for setting in settings for part in ("--set", setting)]
    result = forgeml("serve", str(bundle), "--port", str(free_port()), *overrides)
    assert result.returncode == 2 and message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
