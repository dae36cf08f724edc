"""Issue #17's last gaps: a plain ``forgeml check`` prints the fix too, a previous model's score is a
leak that blocks, a random numeric id is an identifier that training leaves out, and the model
card's bar charts draw long column names without matplotlib's "constrained_layout" warning.

The tables are built here with the shapes of bank_churn (shared data): a score column that is a
previous model's probability of the label (> 0.5 exactly for one class, spread over tiny and
near-one values, so decile bins missed it) and CLIENTNUM-like ids (distinct 9-digit numbers in no
order, which the dense-or-increasing rule missed).
"""

from __future__ import annotations

import shlex
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from checks_fixtures import TARGET, clean_frame

from forgeml.checks import check, gate
from forgeml.checks.init import starter_config
from forgeml.checks.schema import profile_column
from forgeml.cli import main
from forgeml.config import FeaturesConfig, load_config
from forgeml.evaluation.plots import bar_chart
from forgeml.features.columns import clean_strings, plan_columns


def _churn(rows: int = 1000, seed: int = 5) -> pd.DataFrame:
    """clean_frame plus a random 9-digit customer number and a previous model's churn probability."""
    rng = np.random.default_rng(seed)
    frame = clean_frame(rows, seed=seed)
    frame.insert(
        0, "client", rng.choice(np.arange(700_000_000, 830_000_000), rows, replace=False).astype(str)
    )
    churned = (frame[TARGET] == "yes").to_numpy()
    # like bank_churn's Naive_Bayes_... columns: ~1e-4 for one class, ~0.9997 for the other, no overlap
    score = np.where(churned, 1 - rng.uniform(1e-5, 5e-3, rows), rng.uniform(1e-5, 5e-3, rows))
    frame["nb_score"] = score.round(6).astype(str)
    return frame


def test_a_previous_models_score_blocks_and_real_features_do_not(tmp_path: Path) -> None:
    path = tmp_path / "churn.csv"
    _churn().to_csv(path, index=False)
    report = check(path, target=TARGET)
    leaks = [f for f in report.findings if f.id == "target_leakage"]
    assert [(f.column, f.severity) for f in leaks] == [("nb_score", "error")], [f.describe() for f in leaks]
    assert not report.passed
    # `forgeml init` leaves the leak out and accepts the finding, so its config passes the gate
    starter = tmp_path / "forgeml.yaml"
    starter.write_text(starter_config(path, target=TARGET))
    config = load_config(starter)
    assert "nb_score" in config.features.exclude and gate(config.data, config.check).passed
    # a strong but honest feature (the label depends on it, with noise) is not a leak
    honest = clean_frame(1000, seed=5)
    honest["income"] = np.where(honest[TARGET] == "yes", 1.0, 0.0) + np.random.default_rng(1).normal(
        0, 0.6, 1000
    )
    honest.to_csv(path, index=False)
    assert "target_leakage" not in check(path, target=TARGET).ids()


def test_plain_check_prints_the_fix_and_pasting_it_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _churn()
    frame.loc[[3, 8], TARGET] = ""  # and two rows without a label
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    assert main(["check", str(path), "--target", TARGET]) == 1
    printed = capsys.readouterr().out
    commands = [line.strip() for line in printed.splitlines() if line.strip().startswith("forgeml check ")]
    assert commands == [
        shlex.join(
            [
                "forgeml",
                "check",
                str(path),
                "--target",
                TARGET,
                "--fix",
                "-o",
                str(tmp_path / "churn.clean.csv"),
            ]
        )
    ], printed
    assert printed.rstrip().endswith(commands[0])
    assert main(shlex.split(commands[0])[1:]) == 0, capsys.readouterr().out
    cleaned = pd.read_csv(tmp_path / "churn.clean.csv")
    assert "nb_score" not in cleaned.columns and len(cleaned) == 998
    assert main(["check", str(tmp_path / "churn.clean.csv"), "--target", TARGET]) == 0
    assert "forgeml check" not in capsys.readouterr().out  # nothing to paste when it passes


def _kind(values: object) -> str:
    return profile_column("x", pa.chunked_array([pa.array(np.asarray(values, dtype=np.float64))])).kind


def test_a_random_numeric_id_is_an_identifier_and_left_out() -> None:
    frame = _churn().drop(columns=["nb_score"])
    numbers = {"client": int, "age": float, "income": float}
    table = clean_strings(frame.drop(columns=[TARGET]).astype(numbers), ["city", "plan"])
    plan = plan_columns(table, FeaturesConfig())
    assert list(plan.left_out) == ["client"] and "client" not in plan.numeric
    assert "income" in plan.numeric
    ids = frame["client"].astype(int).to_numpy()
    assert _kind(ids) == "identifier"
    # measurements are not ids: repeats, mixed widths, or too few rows to tell
    income = np.random.default_rng(2).integers(20_000, 200_000, 1000)  # 5 and 6 digits
    assert [_kind(v) for v in (income, ids[:60], np.append(ids[:999], ids[0]))] == ["numeric"] * 3


def test_long_column_names_draw_without_a_layout_warning() -> None:
    long = "Naive_Bayes_Classifier_Attrition_Flag_Card_Category_Contacts_Count_12_mon_Dependent_count_Education_Level_Months_Inactive_12_mon_"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: UserWarning "constrained_layout not applied ..."
        png = bar_chart([long + "1", long + "2", "age"], [0.1, 0.2, 0.3], None, "importance")
    assert png.startswith(b"\x89PNG")
