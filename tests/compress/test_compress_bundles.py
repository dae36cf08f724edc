"""Every compressed variant is a normal bundle: predict, serve and verify work on it unchanged."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
import safetensors
from rich.console import Console

import forgeml
from conftest import mixed_table_config
from forgeml.bundle.integrity import bundle_digest
from forgeml.cli import main
from forgeml.compression.report import restore_run_report
from forgeml.deploy.verify import QUANTIZED_SUFFIX


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A trained and evaluated run (so it has report.html) on the mixed table, and its CSV."""
    folder = tmp_path_factory.mktemp("compress_bundles")
    config = mixed_table_config(
        folder,
        model={"type": "mlp", "hidden": [32, 16]},
        train={"epochs": 10, "threads": 1},
        evaluate={"bootstrap": 0, "permutation_repeats": 0},
    )
    run, _ = forgeml.run(config, console=Console(file=io.StringIO()))
    return run.path, folder / "customers.csv"


@pytest.mark.slow
def test_the_cli_prints_the_table_and_the_report_gets_a_section_that_evaluate_keeps(
    evaluated_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = evaluated_run
    assert main(["compress", str(run), "--prune", "0.5", "--quantize", "static", "--max-drop", "0.05"]) == 0
    stdout = capsys.readouterr().out
    lines = [line for line in stdout.splitlines() if line.strip()]
    names = [
        line.split()[0]
        for line in lines
        if line.split()[0] in {"baseline", "prune", "static", "prune+static"}
    ]
    assert names == ["baseline", "prune", "static", "prune+static"], stdout  # baseline first
    assert "recommended (drop <= 0.05)" in stdout
    summary = json.loads((run / "compressed" / "summary.json").read_text())
    chosen = next(row for row in summary["variants"] if row["name"] == summary["recommended"])
    assert chosen["metric"]["drop"] <= 0.05
    page = (run / "report.html").read_text()
    assert page.count('id="compression"') == 1 and 'href="compressed/report.html"' in page
    assert (run / "compressed" / "report.html").is_file()
    manifest = json.loads((run / "compressed" / "prune" / "bundle.json").read_text())
    assert manifest["model"]["config"]["hidden"] == [16, 8]  # the shrunk widths rebuild the model
    assert manifest["compression"]["pruning"]["method"] == "structured"
    # each variant is a bundle of its own, with its own digest to pin at deploy time
    digest = bundle_digest(run / "compressed" / "prune")
    assert f"bundle digest (prune): {digest}" in stdout
    _evaluate_keeps_the_section(run)


def _evaluate_keeps_the_section(run: Path) -> None:
    """`forgeml evaluate` rewrites report.html; the table of the variants still on disk stays in it."""
    assert main(["evaluate", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert page.count('id="compression"') == 1 and 'href="compressed/report.html"' in page
    assert "<td>prune+static</td>" in page, page[-3000:]
    # after a retrain the variants describe another model: their table is not put back
    baseline = run / "compressed" / "baseline" / "bundle.json"
    saved = baseline.read_text()
    manifest = json.loads(saved)
    manifest["files"]["weights.safetensors"]["sha256"] = "0" * 64
    baseline.write_text(json.dumps(manifest))
    try:
        assert restore_run_report(run) is None
    finally:
        baseline.write_text(saved)


@pytest.mark.slow
def test_an_int8_bundle_predicts_serves_and_verifies(
    evaluated_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, data = evaluated_run
    result = forgeml.compress(run, quantize="dynamic")
    bundle = result.variant("dynamic").path
    summary = forgeml.predict(bundle, data, tmp_path / "out.csv")
    assert summary.rows == 200 and summary.engine == "onnxruntime"
    assert set(pd.read_csv(tmp_path / "out.csv")["prediction"]) <= {"yes", "no"}
    report = forgeml.verify(bundle, data=data)  # starts `forgeml serve` on the bundle
    assert report.quantized and report.max_difference <= 1e-5, report.differences  # server == Predictor
    assert 0 < report.differences[f"predictor_vs_pytorch{QUANTIZED_SUFFIX}"] < 0.1  # int8 vs fp32
    torch_engine = forgeml.load(bundle, engine="torch")  # the fp32 weights the graph came from
    assert len(torch_engine.predict(pd.read_csv(data).drop(columns="churned").head(3))) == 3


@pytest.mark.slow
def test_an_fp16_bundle_agrees_with_its_pytorch_weights(evaluated_run: tuple[Path, Path]) -> None:
    """Both files hold the same fp16-rounded weights, so ONNX Runtime and PyTorch agree (no skew)."""
    run, data = evaluated_run
    result = forgeml.compress(run, quantize="fp16")
    fp16 = result.variant("fp16")
    assert fp16.model_bytes < 0.8 * result.variant("baseline").model_bytes  # a tiny MLP: fixed costs
    with safetensors.safe_open(fp16.path / "weights.safetensors", "pt") as weights:
        assert {str(weights.get_tensor(name).dtype) for name in weights.keys()} == {"torch.float16"}  # noqa: SIM118
    rows = pd.read_csv(data).drop(columns="churned")
    onnx, torch = forgeml.load(fp16.path), forgeml.load(fp16.path, engine="torch")
    assert onnx.engine.name == "onnxruntime" and torch.engine.name == "torch"
    difference = onnx.predict(rows)["probability_yes"] - torch.predict(rows)["probability_yes"]
    assert difference.abs().max() <= 1e-5
