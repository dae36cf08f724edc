"""Acceptance: a planted bad slice is flagged; a planted noise column gets near-zero importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import api
from forgeml.config import load_config
from forgeml.evaluation import Evaluation, evaluate_run


def planted_table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """The label is ``signal > 0``, except that 40% of labels are flipped where group == 'b'."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    noise = rng.normal(size=rows)
    group = rng.choice(["a", "b"], rows)
    label = signal > 0
    flip = (group == "b") & (rng.random(rows) < 0.4)
    label = np.where(flip, ~label, label)
    return pd.DataFrame(
        {"signal": signal, "noise": noise, "group": group, "label": np.where(label, "yes", "no")}
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    from conftest import write_config

    folder = tmp_path_factory.mktemp("planted")
    planted_table().to_csv(folder / "planted.csv", index=False)
    write_config(
        folder / "config.yaml",
        str(folder / "planted.csv"),
        data={"target": "label", "split": {"validation": 0.15, "test": 0.3}},
        train={"epochs": 15},
        evaluate={
            "slices": ["group", "signal"],
            "slice_gap": 0.1,
            "bootstrap": 100,
            "permutation_repeats": 5,
        },
        card={"intended_use": "<script>alert(1)</script> tests only", "limitations": "planted & synthetic"},
    )
    config = load_config(folder / "config.yaml")
    run = api.train(config)
    return evaluate_run(run.path, run.model, run.pipeline, run.splits.test, run.splits.train.target, config)


@pytest.mark.slow
def test_planted_slice_is_flagged(planted: Evaluation) -> None:
    groups = {item.value: item for item in planted.slices if item.column == "group"}
    assert groups["b"].flagged and not groups["a"].flagged
    assert groups["a"].rows + groups["b"].rows == planted.metrics.rows
    signal_bins = [item for item in planted.slices if item.column == "signal"]
    assert len(signal_bins) == 4  # a numeric column is cut into quantile bins


@pytest.mark.slow
def test_informative_column_ranks_first_and_noise_is_near_zero(planted: Evaluation) -> None:
    importance = {item.column: item.mean for item in planted.importance}
    assert planted.importance[0].column == "signal"
    assert importance["signal"] > 0.2
    assert abs(importance["noise"]) < 0.03


@pytest.mark.slow
def test_card_text_is_escaped_and_slices_are_in_the_report(planted: Evaluation) -> None:
    html = planted.report_path.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; tests only" in html
    assert "planted &amp; synthetic" in html
    assert 'class="flag"' in html
