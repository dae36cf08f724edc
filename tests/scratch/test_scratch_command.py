"""The ``explain`` sub-command through argparse, as forgeml.cli wires it, with stdout captured."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pytest

from forgeml.cli.explain import register_explain
from forgeml.errors import ConfigError


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser(prog="forgeml")
    register_explain(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", *argv])
    assert args.handler(args) == 0
    return capsys.readouterr().out


def test_walkthrough_prints_every_value_with_its_formula(capsys: pytest.CaptureFixture[str]) -> None:
    out = run([], capsys)
    lines = out.splitlines()
    assert "z[1]       = W_in · x + b_in" in out and "= [0.500000, 1.200000]" in out
    for symbol in [
        "z[2]",
        "a[3] = ŷ",
        "L ",
        "dL/dŷ",
        "σ'(z[3])",
        "δ[3]",
        "∇W_out",
        "δ[1]",
        "∇b_in",
        "new W_in",
        "L after",
    ]:
        assert any(line.strip().startswith(symbol) for line in lines), symbol
    assert "δ[2]       = (W_outᵀ · δ[3]) ⊙ σ'(z[2])" in out
    assert "W_out - α ∇W_out" in out and "[[0.106517, 0.107611]]" in out


def test_json_gives_the_same_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    payload = json.loads(run(["--json", "--input", "0,1,1", "--loss", "mse"], capsys))
    values = {step["key"]: step["value"] for step in payload["steps"]}
    assert values["z1"] == pytest.approx([0.6, 1.3])
    assert payload["network"]["loss"] == "mse"


def test_compare_document_names_the_wrong_steps(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["--compare-document"], capsys)
    assert out.count("WRONG ") == 27 and "27 of 33 are wrong" in out
    for phrase in [
        "first-layer arithmetic",
        "must be 1x2",
        "two hidden layers",
        "derivative values",
        "climbs the loss",
    ]:
        assert phrase in out, phrase
    payload = json.loads(run(["--compare-document", "--json"], capsys))
    assert sum(not row["matches"] for row in payload["comparison"]["rows"]) == 27


def test_optimizer_trace_shows_moments_and_bias_corrections(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["--optimizer", "adam", "--steps", "2"], capsys)
    assert "1 - β1^t = 0.100000   1 - β2^t = 0.001000" in out and "1 - β1^t = 0.190000" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("parameter"))
    assert header.split() == ["parameter", "g", "m", "v", "m_hat", "v_hat", "step", "new", "value"]
    payload = json.loads(run(["--optimizer", "momentum", "--steps", "3", "--json"], capsys))
    assert len(payload["steps"]) == 3 and "velocity" in payload["steps"][0]["parameters"][0]["state"]


def test_weights_file_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--weights", "examples/explain_weights.yaml"], capsys) == run([], capsys)


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["--activations", "relu,swish,sigmoid"], "--activations"),
        (["--input", "1,zero,1"], "--input"),
        (["--lr", "abc"], "--lr"),
        (["--optimizer", "adam", "--compare-document"], "--optimizer"),
        (["--compare-document", "--target", "0"], "--compare-document"),
    ],
)
def test_bad_input_raises_config_error(argv: list[str], key: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        run(argv, capsys)
    assert caught.value.key == key and "\n" not in str(caught.value)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.alone  # a whole Python start within 2 s
def test_walkthrough_runs_in_under_two_seconds_without_torch() -> None:
    start = time.perf_counter()
    result = _python(
        "import sys; from forgeml.scratch.__main__ import main; code = main([]); "
        "assert 'torch' not in sys.modules, 'forgeml.scratch imported torch'; sys.exit(code)"
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert "Forward pass" in result.stdout
    assert elapsed < 2.0


def test_module_entry_point_exits_2_with_one_line() -> None:
    result = _python(
        "import sys; from forgeml.scratch.__main__ import main; sys.exit(main(['--input', 'x']))"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --input: 'x' is not a number. Write a number, e.g. --input 1,0,1."
    ]
