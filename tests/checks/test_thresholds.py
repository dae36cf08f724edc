"""Thresholds per check: block above, warn at or under, and say so everywhere (issue #17, item 2).

Before, two conflicting rows among thousands, or a handful of honest repeats between a census
training and test file, stopped training. Now an error check blocks only above its threshold
(``forgeml.checks.catalogue.THRESHOLDS``, changed with ``check.thresholds``); under it the finding is
a warning recorded in ``data_report.json`` and the model card.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from checks_fixtures import TARGET, clean_frame

from forgeml import api
from forgeml.checks import check, gate
from forgeml.checks.catalogue import CHECKS, THRESHOLDS
from forgeml.config import THRESHOLD_CHECKS, CheckConfig, DataConfig, load_config
from forgeml.errors import ConfigError, DataQualityError


def _with_conflicts(rows: int, conflicts: int) -> pd.DataFrame:
    frame = clean_frame(rows, seed=1)
    flipped = frame.iloc[:conflicts].copy()
    flipped[TARGET] = np.where(flipped[TARGET] == "yes", "no", "yes")
    return pd.concat([frame, flipped], ignore_index=True)


def test_the_config_and_the_catalogue_name_the_same_checks() -> None:
    assert set(THRESHOLD_CHECKS) == set(THRESHOLDS)
    assert all(CHECKS[check_id].severity == "error" for check_id in THRESHOLDS)
    documented = (Path(__file__).parents[2] / "docs" / "data-checks.md").read_text(encoding="utf-8")
    for check_id, spec in THRESHOLDS.items():
        row = next(line for line in documented.splitlines() if line.startswith(f"| `{check_id}` | error"))
        assert (f"{spec.limit:.0%}" if spec.per else f"{spec.limit:g}") in row, row


def test_a_few_conflicting_rows_warn_and_the_run_records_them(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _with_conflicts(600, 1).to_csv(path, index=False)  # 2 of 601 rows: 0.33%
    config = {
        "name": "warned",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": str(path), "target": TARGET},
        # one small network: without model:, auto trains its candidates for up to train.time_budget
        # (80 s of the suite on 2 cores); the warning is the data gate's, the same for any model
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    api.run(load_config(tmp_path / "config.yaml"))
    run_dir = tmp_path / "runs" / "warned"
    saved = json.loads((run_dir / "data_report.json").read_text())
    found = [f for f in saved["findings"] if f["id"] == "conflicting_labels"]
    assert found and found[0]["severity"] == "warning" and "threshold" in found[0]["message"]
    assert saved["passed"] is True and saved["thresholds"]["conflicting_labels"] == 0.01
    card = (run_dir / "report.html").read_text()
    assert "conflicting_labels" in card and "threshold" in card


def test_above_the_threshold_it_blocks(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _with_conflicts(200, 10).to_csv(path, index=False)  # 20 of 210 rows: 9.5%
    with pytest.raises(DataQualityError, match="conflicting_labels"):
        gate(DataConfig(source=str(path), target=TARGET), CheckConfig())
    relaxed = gate(
        DataConfig(source=str(path), target=TARGET), CheckConfig(thresholds={"conflicting_labels": 0.1})
    )
    assert relaxed.passed and relaxed.findings[0].severity == "warning"


def test_overlap_is_measured_against_the_test_file(tmp_path: Path) -> None:
    train = clean_frame(400, seed=2)
    test = pd.concat([clean_frame(500, seed=5), train.iloc[:3]], ignore_index=True)  # 3 of 503
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    report = check(tmp_path / "train.csv", target=TARGET, test_source=tmp_path / "test.csv")
    overlap = next(f for f in report.findings if f.id == "train_test_overlap")
    assert overlap.count == 3 and overlap.severity == "warning" and report.passed
    strict = check(
        tmp_path / "train.csv",
        target=TARGET,
        test_source=tmp_path / "test.csv",
        thresholds={"train_test_overlap": 0},
    )
    assert not strict.passed


def test_count_thresholds_block_on_one_row(tmp_path: Path) -> None:
    frame = clean_frame(300, seed=1)
    frame.loc[4, TARGET] = ""
    frame.to_csv(tmp_path / "data.csv", index=False)
    report = check(tmp_path / "data.csv", target=TARGET)
    assert [f.id for f in report.blocking] == ["missing_target"]  # training refuses unlabeled rows


def test_unknown_threshold_ids_are_config_errors_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data": {"source": "x.csv", "target": "y"}}))
    with pytest.raises(ConfigError, match="Did you mean 'conflicting_labels'") as caught:
        load_config(path, ["check.thresholds.conflicting_label=0.05"])
    assert caught.value.key == "check.thresholds.conflicting_label"
    with pytest.raises(ConfigError, match="check.thresholds"):
        load_config(path, ["check.thresholds.train_test_overlap=-1"])
    assert load_config(path, ["check.thresholds.train_test_overlap=0.05"]).check.thresholds == {
        "train_test_overlap": 0.05
    }
