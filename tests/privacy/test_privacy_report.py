"""The private run's metrics.json and card, the membership audit's arithmetic, and every refusal: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import mixed_table_config
from forgeml import api
from forgeml.cli import main
from forgeml.config import config_from_dict, load_config
from forgeml.errors import ConfigError
from forgeml.evaluation import run as evaluation_run
from forgeml.evaluation.membership import attack_success, likelihood_ratio_scores
from forgeml.training.privacy import epsilon_after

# the settings of test_private_training.py (139 training rows): one noise solve serves both
PRIVATE = {"privacy": {"epsilon": 3.0}, "epochs": 3, "batch_size": 16, "early_stopping": None}
QUICK = {"bootstrap": 0, "permutation_repeats": 0}


def test_metrics_and_card_state_the_guarantee_the_cost_and_the_attacks(tmp_path: Path, monkeypatch) -> None:
    # plots and integrated gradients are the card's slowest parts (5 of 8 s) and tested elsewhere
    monkeypatch.setattr(evaluation_run, "make_figures", lambda *args: {})
    monkeypatch.setattr(evaluation_run, "attributions", lambda *args, **kwargs: None)
    config = mixed_table_config(tmp_path, train=PRIVATE, evaluate=QUICK)
    run, evaluation = api.run(config)
    spent = json.loads((run.path / "metrics.json").read_text())["privacy"]
    training = spent["training"]
    for key in (
        "epsilon",
        "delta",
        "accountant",
        "max_grad_norm",
        "noise_multiplier",
        "sample_rate",
        "epochs",
    ):
        assert training[key] is not None, key
    rows = training["rows"]
    assert rows == 139
    assert training["delta"] == pytest.approx(1 / (10 * rows)) and training["steps"] == 3 * -(-rows // 16)
    assert training["epsilon"] == pytest.approx(
        epsilon_after(
            training["noise_multiplier"], training["sample_rate"], training["steps"], training["delta"], "rdp"
        )
    )
    private, plain = spent["models"]
    assert (private["private"], plain["private"]) == (True, False) and plain[
        "name"
    ] == "non-private (same config)"
    assert private["value"] == pytest.approx(evaluation.metrics.values["accuracy"])  # the card's own model
    for model in (private, plain):
        assert model["members"] == rows and model["non_members"] == len(run.splits.test)
        for attack in ("loss_threshold", "likelihood_ratio"):
            assert 0.0 <= model[attack]["auc"] <= 1.0 and 0.0 <= model[attack]["tpr_at_1pct_fpr"] <= 1.0
    assert private["value"] != plain["value"] or private["loss_threshold"] != plain["loss_threshold"]
    card = (run.path / "report.html").read_text()
    assert 'id="privacy"' in card and "noise multiplier" in card and "non-private (same config)" in card


def test_attack_arithmetic_matches_its_definitions() -> None:
    rng = np.random.default_rng(0)
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    score = np.r_[rng.normal(1, 1, 200), rng.normal(0, 1, 200)]
    wins = (score[member][:, None] > score[~member][None, :]).mean()  # Mann-Whitney: AUC by its definition
    attack = attack_success(member, score)
    assert attack.auc == pytest.approx(wins)
    threshold = np.sort(score[~member])[::-1][2]  # above it: 2 of 200 non-members, 1% false positives
    assert attack.tpr_at_1pct_fpr == (score[member] > threshold).mean()
    labels = rng.integers(0, 2, 400)
    shifted = np.where(member, 3.0, 0.0) * labels + rng.normal(0, 1, 400)  # only class 1 leaks
    assert attack_success(member, likelihood_ratio_scores(shifted, labels, member, seed=0)).auc > 0.7
    same = rng.normal(0, 1, 400)
    assert abs(attack_success(member, likelihood_ratio_scores(same, labels, member, seed=0)).auc - 0.5) < 0.1


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"train": {"privacy": {"epsilon": 0}}}, "train.privacy.epsilon"),
        ({"train": {"privacy": {"epsilon": -1}}}, "train.privacy.epsilon"),
        ({"train": {"privacy": {"epsilon": 1, "delta": 1.0}}}, "train.privacy.delta"),
        ({"train": {"privacy": {"epsilon": 1}, "accumulate": 2}}, "train.accumulate"),
        ({"train": {"privacy": {"epsilon": 1}, "grad_clip": 1.0}}, "train.grad_clip"),
        ({"train": {"privacy": {"epsilon": 1}, "class_weights": "auto"}}, "train.class_weights"),
        ({"train": {"privacy": {"epsilon": 1}, "on_nan": "skip"}}, "train.on_nan"),
        ({"train": {"privacy": {"epsilon": 1}, "compile": True}}, "train.compile"),
        ({"train": {"privacy": {"epsilon": 1}}, "model": {"type": "gbm"}}, "train.privacy"),
        ({"train": {"privacy": {"epsilon": 1}}, "model": {"type": "auto"}}, "train.privacy"),
    ],
)
def test_a_setting_that_breaks_the_guarantee_is_refused_naming_its_key(tmp_path: Path, settings, key) -> None:
    config = mixed_table_config(tmp_path, **settings)
    if settings.get("model", {}).get("type") in ("gbm", "auto"):  # keys gbm never reads are refused too
        raw = yaml.safe_load(config.read_text())
        raw["train"] = {"privacy": raw["train"]["privacy"]}
        config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.key == key and "\n" not in str(caught.value), str(caught.value)


def test_causal_lm_privacy_is_refused_saying_lora_is_not_made_private() -> None:
    lm = {"model": {"type": "causal_lm", "name": "m"}, "data": {"source": "qa.jsonl"}}
    with pytest.raises(ConfigError, match="trees and LoRA fine-tuning are not made private") as caught:
        config_from_dict(lm | {"train": {"privacy": {"epsilon": 1}}})
    assert caught.value.key == "train.privacy"


def test_cli_delta_above_one_over_n_exits_2_in_one_line(tmp_path: Path, capsys) -> None:
    config = mixed_table_config(tmp_path, train={"privacy": {"epsilon": 1, "delta": 0.5}})
    code = main(["train", str(config)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in error and len(error.splitlines()) == 1
    assert error.startswith("error:") and "train.privacy.delta = 0.5 is not below 1/n" in error


def test_confident_rows_do_not_tie(monkeypatch) -> None:
    """Logits 40 and 50 are both p = 1.0 in float64; scored from the logits they stay apart (binary and 3 classes)."""
    from types import SimpleNamespace

    import torch

    from forgeml.evaluation import membership

    rows = SimpleNamespace(target=np.array([1, 1, 0]))
    pipeline = SimpleNamespace(
        transform=lambda rows: SimpleNamespace(ordered=lambda names: ()), input_spec=SimpleNamespace(names=())
    )
    monkeypatch.setattr(membership, "class_indices", lambda task, target: target)
    for kind, logits in (
        ("binary", [[40.0], [50.0], [-45.0]]),
        ("multiclass", [[0, 40.0, 0], [0, 50.0, 0], [45.0, 0, 0]]),
    ):
        monkeypatch.setattr(
            membership, "predict_outputs", lambda model, inputs, logits=logits: torch.tensor(logits)
        )
        log_p, phi, _ = membership.true_class_scores(SimpleNamespace(kind=kind), None, pipeline, rows)
        assert log_p[0] < log_p[2] < log_p[1] < 0 and phi[0] < phi[2] < phi[1]
