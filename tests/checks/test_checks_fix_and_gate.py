"""--fix cleans the mixed dirty table into one that passes and trains; the gate refuses dirty data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from checks_fixtures import TARGET, clean_frame, mixed_dirty_text, read_back, to_csv

from forgeml.checks import check, fix_table, gate
from forgeml.config import THRESHOLD_CHECKS, CheckConfig, DataConfig
from forgeml.errors import DataError, DataQualityError


@pytest.fixture
def dirty(tmp_path: Path) -> Path:
    path = tmp_path / "dirty.csv"
    path.write_text(mixed_dirty_text())
    return path


def test_fix_yields_a_table_that_passes_and_the_log_accounts_for_every_dropped_row(
    dirty: Path, tmp_path: Path
) -> None:
    before = dirty.read_bytes()
    result = fix_table(dirty, tmp_path / "clean.csv", target=TARGET)
    assert dirty.read_bytes() == before  # the input is never modified
    report = check(result.output, target=TARGET)
    assert report.errors == (), [f.describe() for f in report.errors]
    log = json.loads(result.log_path.read_text())
    assert result.log_path.name == "clean.csv.fixlog.json"
    dropped = [row for fix in log["fixes"] for row in fix["dropped_rows"]]
    assert (
        len(dropped)
        == len(set(dropped))
        == log["rows_in"] - log["rows_out"]
        == sum(f["rows_dropped"] for f in log["fixes"])
    )
    assert log["rows_in"] == 201 and log["rows_out"] == len(read_back(result.output))
    fixes = {(f["fix"], f["column"]) for f in log["fixes"]}
    assert {
        ("drop_unparseable_rows", None),
        ("drop_missing_target", TARGET),
        ("drop_identifier_column", "customer"),
    } <= fixes
    assert {
        ("drop_constant_column", "country"),
        ("merge_category_variants", "city"),
        ("coerce_numeric", "age"),
    } <= fixes
    assert {
        ("infinite_to_missing", "age"),
        ("normalise_missing", "income"),
        ("drop_duplicate_rows", None),
    } <= fixes
    assert ("resolve_conflicting_labels", TARGET) in fixes and ("drop_rare_class_rows", TARGET) in fixes
    assert {101, 4, 9, 30} <= set(dropped)  # the ragged line's row, missing targets, the lone class
    assert set(read_back(result.output)["city"]) == {"paris", "lyon", "nice"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_fix_is_idempotent(dirty: Path, tmp_path: Path, suffix: str) -> None:
    once = fix_table(dirty, tmp_path / f"once{suffix}", target=TARGET)
    twice = fix_table(once.output, tmp_path / f"twice{suffix}", target=TARGET)
    assert twice.log["fixes"] == [] and twice.rows_in == twice.rows_out == once.rows_out
    if suffix == ".csv":
        assert once.output.read_text() == twice.output.read_text()


def test_fix_refuses_to_overwrite_its_input(dirty: Path) -> None:
    with pytest.raises(DataError, match="refusing to overwrite"):
        fix_table(dirty, dirty, target=TARGET)


def test_training_succeeds_on_the_fixed_table(dirty: Path, tmp_path: Path) -> None:
    from forgeml import api
    from forgeml.config import load_config

    result = fix_table(dirty, tmp_path / "clean.csv", target=TARGET)
    config = {
        "name": "fixed",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": str(result.output), "target": TARGET},
        "model": {"type": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 32},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = load_config(path)
    gate(cfg.data, cfg.check, run_dir=tmp_path / "runs" / "fixed")
    run = api.train(cfg)
    assert run.bundle_path.is_dir()


@pytest.mark.parametrize(
    ("edit", "check_id"),
    [({3: {TARGET: ""}}, "missing_target"), ({5: "copy-of-2-flipped"}, "conflicting_labels")],
)
def test_gate_refuses_blocking_errors_unless_allowed(tmp_path: Path, edit: dict, check_id: str) -> None:
    frame = clean_frame()
    if check_id == "missing_target":
        frame.loc[2, TARGET] = ""
    else:
        frame.loc[4] = {**frame.iloc[1].to_dict(), TARGET: "no" if frame.iloc[1][TARGET] == "yes" else "yes"}
    path = tmp_path / "data.csv"
    path.write_text(to_csv(frame))
    data = DataConfig(source=str(path), target=TARGET)
    run_dir = tmp_path / "run"
    strict = dict.fromkeys(THRESHOLD_CHECKS, 0)  # 2 conflicting rows of 200 are 1%: a warning by default
    with pytest.raises(DataQualityError) as caught:
        gate(data, CheckConfig(thresholds=strict), run_dir=run_dir)
    message = str(caught.value)
    assert check_id in message and "--fix" in message and "check.allow" in message
    assert caught.value.exit_code == 1 and caught.value.report.blocking
    saved = json.loads((run_dir / "data_report.json").read_text())
    assert saved["schema_version"] == 1 and saved["passed"] is False
    html = (run_dir / "data_report.html").read_text()
    assert check_id in html and "<script" not in html and "http" not in html
    report = gate(data, CheckConfig(allow=[check_id], thresholds=strict), run_dir=None)
    assert report.passed and any(f.allowed for f in report.findings)


def test_gate_logs_warnings_and_checks_sklearn_sources(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = gate(DataConfig(source="sklearn:iris"), CheckConfig(), run_dir=tmp_path)
    assert report.passed and report.rows == 150
    assert "duplicate_rows" in caplog.text
    assert pd.read_json(tmp_path / "data_report.json", typ="series")["source"] == "sklearn:iris"
