"""model.type auto: candidates on one split, greedy ensemble selection, one bundle, one model.onnx, a leaderboard.

Small generated tables (binary, multiclass: tests/models/test_gbm.py's) and scikit-learn's diabetes
set (regression); each run trains its four candidates in a few seconds (3 network epochs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import forgeml
from forgeml.bundle.predictive import read_predictor_bundle, write_bundle
from forgeml.config import AUTO_CANDIDATES, DEFAULT_AUTO_CANDIDATES, config_from_dict
from forgeml.errors import BundleError, ConfigError
from forgeml.models import GradientBoostedTrees, predict_outputs
from forgeml.models.ensemble import WeightedEnsemble
from forgeml.training.ensemble_selection import select_ensemble, validation_loss
from forgeml.training.stage import tensor_data

ONNX_TOLERANCE = 1e-5  # largest |ONNX Runtime - PyTorch/LightGBM| accepted on probabilities
TASKS = {"binary": 2, "multiclass": 3, "regression": 0}


def make_table(rows: int = 400, classes: int = 2, seed: int = 0) -> pd.DataFrame:
    """Numbers (one with 20% missing), a 6-value category that matters, and a label of ``classes`` values."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    x2[rng.random(rows) < 0.2] = np.nan
    city = rng.choice(["lyon", "oslo", "rome", "kyiv", "lima", "pune"], size=rows)
    score = (
        x1 + np.isin(city, ["oslo", "lima"]) * 1.5 + np.nan_to_num(x2, nan=-1.0) + rng.normal(size=rows) * 0.3
    )
    cuts = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    names = ["low", "mid", "high"][:classes] if classes > 2 else ["no", "yes"]
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "city": city, "label": np.array(names)[np.digitize(score, cuts)]}
    )


def auto_config(folder: Path, task: str, **sections: dict) -> dict:
    """An auto config (3 network epochs) over a generated table, or the diabetes set for regression."""
    if task == "regression":
        data = {"source": "sklearn:diabetes"}
    else:
        make_table(rows=400, classes=TASKS[task]).to_parquet(folder / "table.parquet")
        data = {"source": str(folder / "table.parquet"), "target": "label"}
    return {
        "data": data,
        # the binary run bags its boosters 2 ways (the bundle, ONNX, verify and leaderboard tests
        # then cover bags); the others grow one booster per candidate
        "model": {
            "type": "auto",
            "bag_folds": 2 if task == "binary" else 0,
            "bag_repeats": 1,
            # the multiclass run refits its boosters on the validation rows too (the bundle, ONNX and
            # verify tests then cover refit boosters); the regression run keeps them as early stopping
            # left them, so its ensemble's validation loss can be recomputed from the bundle
            "refit": task != "regression",
            **sections.pop("model", {}),
        },
        # one thread: LightGBM's OpenMP threads spin on a busy 2-core machine (a 400-row booster then
        # takes a minute and the budget skips candidates)
        "train": {"epochs": 3, "time_budget": 120, "threads": 1, **sections.pop("train", {})},
        "output_dir": str(folder),
        "check": {"enabled": False},
        "evaluate": {"bootstrap": 0, "permutation_repeats": 1},
        **sections,
    }


@pytest.fixture(scope="module", params=list(TASKS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, forgeml.Run]:
    folder = tmp_path_factory.mktemp(request.param)
    run = forgeml.train(config_from_dict(auto_config(folder, request.param)))
    return request.param, run


def _member_averages(ensemble: WeightedEnsemble, run: forgeml.Run, rows: str = "validation") -> np.ndarray:
    """The weighted average of the members' probabilities (or standardized values), computed here."""
    data = tensor_data(run.pipeline, getattr(run.splits, rows))
    total = 0.0
    for member, weight in zip(ensemble.members, ensemble.weights.tolist(), strict=True):
        outputs = predict_outputs(member, data.inputs).numpy()
        decoded = run.pipeline.target_.decode(outputs)
        total = total + weight * (outputs[:, 0] if decoded.probabilities is None else decoded.probabilities)
    return np.asarray(total)


def test_selection_never_worse_than_the_best_candidate_and_weights_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=200)
    candidates = [rng.dirichlet(np.ones(3), size=200) for _ in range(4)]
    candidates.append(0.6 * np.eye(3)[truth] + 0.4 * rng.dirichlet(np.ones(3), size=200))
    selection = select_ensemble(candidates, truth, regression=False, rounds=25)
    assert sum(selection.weights) == pytest.approx(1.0)
    assert all(count >= 0 for count in selection.counts)
    best = min(validation_loss(candidate, truth, regression=False) for candidate in candidates)
    assert selection.loss <= best + 1e-12


def test_auto_trains_every_candidate_and_weighs_them(trained: tuple[str, forgeml.Run]) -> None:
    task, run = trained
    ensemble = run.model
    assert isinstance(ensemble, WeightedEnsemble)
    assert float(ensemble.weights.sum()) == pytest.approx(1.0)
    board = {row["model"]: row for row in ensemble.leaderboard}
    assert set(board) == {"ensemble", *AUTO_CANDIDATES}
    singles = [row["validation_loss"] for name, row in board.items() if name != "ensemble"]
    assert board["ensemble"]["validation_loss"] <= min(singles) + 1e-9
    assert all(row["fit_seconds"] > 0 and row["predict_seconds"] >= 0 for row in board.values())
    if task == "binary":  # a small table bags every candidate: 2 members each, grown on different rows
        for name in AUTO_CANDIDATES:
            folds = {
                member: module for member, module, _ in ensemble.candidates() if member.startswith(name + "-")
            }
            assert sorted(folds) == [f"{name}-fold1", f"{name}-fold2"]
            first, second = folds.values()
            if isinstance(first, GradientBoostedTrees):
                assert first.to_text() != second.to_text()
            else:
                assert not torch.equal(next(first.parameters()), next(second.parameters()))
            # selection weighed every training and validation row's out-of-fold prediction
            rows = len(run.splits.train) + len(run.splits.validation)
            assert board[name]["note"] == f"2-fold bag, out-of-fold loss of all {rows} rows"
        return  # the bag's validation loss is out of fold: the trained ensemble has seen those rows
    if task == "multiclass":  # unbagged: each booster kept by the ensemble was refit on every row
        rows = len(run.splits.train) + len(run.splits.validation)
        for name in ("gbm", "gbm_large"):
            refit = f"refit on all {rows} rows for " if board[name]["weight"] > 0 else ""
            assert board[name]["note"].startswith(refit) and (refit or not board[name]["note"])
        return  # the refit boosters have seen the validation rows
    # the ensemble's own validation loss, recomputed from its outputs, is the leaderboard's
    data = tensor_data(run.pipeline, run.splits.validation)
    outputs = predict_outputs(ensemble, data.inputs).numpy()
    decoded = run.pipeline.target_.decode(outputs)
    averaged = outputs[:, 0] if task == "regression" else decoded.probabilities
    loss = validation_loss(averaged, data.target.numpy(), regression=task == "regression")
    scale = run.pipeline.target_.std_**2 if task == "regression" else 1.0
    assert loss * scale == pytest.approx(board["ensemble"]["validation_loss"], rel=1e-4, abs=1e-5)


def test_decoding_the_ensemble_gives_the_weighted_average_of_member_probabilities(
    trained: tuple[str, forgeml.Run],
) -> None:
    task, run = trained
    every = _equal_weights(run.model)  # every candidate in, networks and boosters alike
    data = tensor_data(run.pipeline, run.splits.validation)
    decoded = run.pipeline.target_.decode(predict_outputs(every, data.inputs).numpy())
    got = decoded.values if task == "regression" else decoded.probabilities
    expected = _member_averages(every, run)
    if task == "regression":
        expected = expected * run.pipeline.target_.std_ + run.pipeline.target_.mean_
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _equal_weights(ensemble: WeightedEnsemble) -> WeightedEnsemble:
    candidates = ensemble.candidates()
    return WeightedEnsemble(
        [module for _, module, _ in candidates],
        [1.0 / len(candidates)] * len(candidates),
        names=[name for name, _, _ in candidates],
        task=ensemble.task,
        leaderboard=ensemble.leaderboard,
    ).eval()


def test_bundle_round_trip_onnx_and_verify(trained: tuple[str, forgeml.Run], tmp_path: Path) -> None:
    task, run = trained
    every = _equal_weights(run.model)
    assert any(isinstance(member, GradientBoostedTrees) for member in every.members)
    bundle = write_bundle(
        tmp_path / "bundle", every, run.pipeline, run.config.model, target=run.config.data.target
    )
    loaded = read_predictor_bundle(bundle).model
    assert isinstance(loaded, WeightedEnsemble) and loaded.names == every.names
    data = tensor_data(run.pipeline, run.splits.test)
    np.testing.assert_allclose(
        predict_outputs(loaded, data.inputs).numpy(), predict_outputs(every, data.inputs).numpy(), atol=1e-6
    )
    forgeml.export(bundle)
    rows = run.splits.test.table.assign(**({} if task == "regression" else {}))
    onnx_out = forgeml.load(bundle, engine="onnx").predict(rows)
    torch_out = forgeml.load(bundle, engine="torch").predict(rows)
    columns = [column for column in onnx_out.columns if column.startswith("probability_")] or ["prediction"]
    difference = np.abs(onnx_out[columns].to_numpy(float) - torch_out[columns].to_numpy(float)).max()
    scale = run.pipeline.target_.std_ if task == "regression" else 1.0
    assert difference <= ONNX_TOLERANCE * scale


def test_verify_agrees_on_the_trained_bundle(trained: tuple[str, forgeml.Run], tmp_path: Path) -> None:
    task, run = trained
    if task != "binary":
        pytest.skip("one verify (it starts a server) is enough")
    forgeml.export(run)
    source = tmp_path / "rows.csv"
    run.splits.test.table.assign(label=run.splits.test.target).to_csv(source, index=False)
    report = forgeml.verify(run.bundle_path, data=source)
    assert report.max_difference <= ONNX_TOLERANCE


def test_leaderboard_in_metrics_csv_and_card(trained: tuple[str, forgeml.Run]) -> None:
    _, run = trained
    evaluation = forgeml.evaluate(run)
    metrics = json.loads(evaluation.metrics_path.read_text())
    names = [row["model"] for row in metrics["leaderboard"]]
    assert names[0] == "ensemble" and set(names[1:]) == set(AUTO_CANDIDATES)
    assert all(row["test_metric"] is not None for row in metrics["leaderboard"])  # weight-0 ones kept too
    table = pd.read_csv(run.path / "leaderboard.csv")
    assert list(table["model"]) == names
    assert "Leaderboard (model.type auto)" in evaluation.report_path.read_text()


def test_a_changed_member_file_is_refused(trained: tuple[str, forgeml.Run], tmp_path: Path) -> None:
    task, run = trained
    if task != "multiclass":
        pytest.skip("once")
    bundle = write_bundle(
        tmp_path / "b", _equal_weights(run.model), run.pipeline, run.config.model, target="label"
    )
    (bundle / "gbm.txt").write_text((bundle / "gbm.txt").read_text() + "\n")
    with pytest.raises(BundleError, match="gbm.txt: checksum mismatch"):
        read_predictor_bundle(bundle)


def test_a_table_without_model_gets_auto_images_and_text_keep_theirs(tmp_path: Path) -> None:
    assert config_from_dict({"data": {"source": "table.csv", "target": "y"}}).model.type == "auto"
    assert config_from_dict({"data": {"source": "sklearn:digits"}}).model.type == "mlp"
    text = {"data": {"source": "t.csv", "target": "y"}, "features": {"text_columns": ["review"]}}
    assert config_from_dict(text).model.type == "mlp"
    assert config_from_dict({"data": {"source": "a.npz"}}).model.type == "mlp"


@pytest.mark.parametrize(
    ("sections", "key", "words"),
    [
        (
            {"model": {"type": "auto", "candidates": ["gbm", "xgboost"]}},
            "model.candidates",
            "gbm, gbm_large, mlp, linear",
        ),
        ({"model": {"type": "auto", "hidden": [32]}}, "model.hidden", "setting of model.type mlp"),
        ({"model": {"type": "auto"}, "train": {"resume": "auto"}}, "train.resume", "no checkpoints"),
        ({"model": {"type": "mlp"}, "train": {"time_budget": 30}}, "train.time_budget", "model.type auto"),
        (
            {"model": {"type": "auto"}, "features": {"numeric": {"scale": "standard"}}},
            "features.numeric.scale",
            "auto",
        ),
    ],
)
def test_config_errors_name_the_key(sections: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        config_from_dict({"data": {"source": "table.csv", "target": "y"}, **sections})
    assert caught.value.key == key


def test_a_budget_too_small_for_any_candidate_is_refused_before_training(tmp_path: Path) -> None:
    config = config_from_dict(auto_config(tmp_path, "binary", train={"time_budget": 0.01}))
    with pytest.raises(
        ConfigError, match=r"train.time_budget=0.01s is too small .* rows x 3 columns"
    ) as caught:
        forgeml.train(config)
    assert caught.value.key == "train.time_budget"
    assert not (config.run_dir() / "bundle").exists()


def test_ensemble_combine_matches_by_hand() -> None:
    logits = [torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.0], [3.0]])]
    ensemble = WeightedEnsemble(
        [torch.nn.Identity(), torch.nn.Identity()], [0.25, 0.75], names=["a", "b"], task="binary"
    )
    probability = torch.sigmoid(ensemble.combine(logits).double())
    expected = 0.25 * torch.sigmoid(logits[0].double()) + 0.75 * torch.sigmoid(logits[1].double())
    torch.testing.assert_close(probability, expected, atol=1e-6, rtol=1e-6)


def test_the_cli_prints_the_leaderboard(
    trained: tuple[str, forgeml.Run], capsys: pytest.CaptureFixture[str]
) -> None:
    from forgeml.cli.train import print_leaderboard

    _, run = trained
    print_leaderboard(run.model.leaderboard)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:3] == ["candidate", "weight", "valid"]
    assert [line.split()[0] for line in printed[1:]] == ["ensemble", *DEFAULT_AUTO_CANDIDATES]
    print_leaderboard(())  # a single model prints nothing
    assert capsys.readouterr().out == ""


def test_compress_and_plan_say_what_applies_to_an_ensemble(trained: tuple[str, forgeml.Run]) -> None:
    task, run = trained
    if task != "binary":
        pytest.skip("once")
    with pytest.raises(ConfigError, match=r"--quantize does not apply to boosted trees \(model.type auto\)"):
        forgeml.compress(run, quantize="int8")
    assert not (run.path / "compressed").exists()
    with pytest.raises(
        ConfigError, match=r"forgeml plan measures one model.*gbm ~\d+s.*--set model.type=gbm"
    ):
        forgeml.api.plan(run.config)


def test_an_ensemble_of_networks_only_exports_and_agrees(tmp_path: Path) -> None:
    config = config_from_dict(auto_config(tmp_path, "multiclass", model={"candidates": ["linear", "mlp"]}))
    run = forgeml.train(config)
    every = _equal_weights(run.model)
    bundle = write_bundle(tmp_path / "nets", every, run.pipeline, run.config.model, target="label")
    forgeml.export(bundle)
    rows = run.splits.test.table
    onnx_out = forgeml.load(bundle, engine="onnx").predict(rows)
    torch_out = forgeml.load(bundle, engine="torch").predict(rows)
    columns = [column for column in onnx_out.columns if column.startswith("probability_")]
    assert (
        np.abs(onnx_out[columns].to_numpy(float) - torch_out[columns].to_numpy(float)).max() <= ONNX_TOLERANCE
    )


def test_the_network_candidates_are_the_measured_mlp_and_a_linear_model() -> None:
    """mlp embeds numbers periodically (off for a plain mlp); linear has no hidden layer and no embedding."""
    from forgeml.training.auto import CANDIDATES

    assert CANDIDATES["mlp"].model.numeric_embedding == "periodic"
    assert (CANDIDATES["linear"].model.hidden, CANDIDATES["linear"].model.numeric_embedding) == ([], "none")


def test_bagging_is_on_by_default_and_off_for_a_large_table() -> None:
    from forgeml.data import RawData
    from forgeml.training.auto import BAG_MAX_ROWS, NETWORK_BAG_MAX_ROWS, bag_folds, bags_everything

    model = config_from_dict({"data": {"source": "t.csv", "target": "y"}}).model
    assert model.type == "auto" and model.bag_folds == 5 and model.bag_repeats == 2

    def rows(count: int) -> RawData:
        return RawData(pd.DataFrame({"x": np.zeros(count)}), None, pd.Series(np.zeros(count)), "t.csv")

    assert bag_folds(model, rows(BAG_MAX_ROWS - 100), rows(100)) == 5
    assert bag_folds(model, rows(BAG_MAX_ROWS), rows(1)) == 0
    # the networks are bagged too (and selection reads every row) only on the smallest tables
    assert bags_everything(5, rows(NETWORK_BAG_MAX_ROWS - 100), rows(100))
    assert not bags_everything(5, rows(NETWORK_BAG_MAX_ROWS), rows(1))
    assert not bags_everything(0, rows(100), rows(100))


def test_network_candidates_print_one_line_each_not_every_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from forgeml.cli import main

    config = tmp_path / "auto.yaml"
    config.write_text(yaml.safe_dump(auto_config(tmp_path, "multiclass")))  # not bagged: one network each
    assert main(["train", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "Epoch " not in printed  # a table MLP's 200 epochs are in history.csv, not the terminal
    assert re.search(
        r"^mlp: \d+ epochs, best validation loss \d+\.\d{4} at epoch \d+$", printed, re.MULTILINE
    )


def test_repeated_bagging_refits_each_bag_on_a_fresh_split_and_costs_its_share(tmp_path: Path) -> None:
    from forgeml.training.auto import estimate_seconds

    model = {"candidates": ["gbm", "linear"], "bag_folds": 2, "bag_repeats": 2}
    run = forgeml.train(config_from_dict(auto_config(tmp_path, "binary", model=model)))
    ensemble = run.model
    assert isinstance(ensemble, WeightedEnsemble)
    rows = len(run.splits.train) + len(run.splits.validation)
    board = {row["model"]: row for row in ensemble.leaderboard}
    for name in ("gbm", "linear"):
        members = {member: m for member, m, _ in ensemble.candidates() if member.startswith(name + "-")}
        assert sorted(members) == [f"{name}-fold{index}" for index in range(1, 5)]
        assert board[name]["note"] == f"2-fold bag x2, out-of-fold loss of all {rows} rows"
    # the second pass split the rows afresh: none of its boosters is one of the first pass's
    trees = [m.to_text() for member, m, _ in ensemble.candidates() if member.startswith("gbm-")]
    assert len(set(trees)) == 4
    # the budget check and the per-candidate estimate count every fit
    assert estimate_seconds("gbm", 1000, 10, bag=5, repeats=2) == pytest.approx(
        2 * estimate_seconds("gbm", 1000, 10, bag=5)
    )


def test_a_lone_booster_is_refit_on_the_training_and_validation_rows(tmp_path: Path) -> None:
    """Unbagged, the booster the ensemble keeps is grown again on every training and validation row for
    the rounds early stopping chose, scaled by the rows gained: the trees LightGBM grows by hand."""
    import lightgbm

    from forgeml.data import RawData
    from forgeml.models.gbm import tree_matrix
    from forgeml.training.auto import CANDIDATES
    from forgeml.training.gbm import lightgbm_params

    runs = {}
    for refit in (False, True):
        (tmp_path / str(refit)).mkdir()
        config = auto_config(
            tmp_path / str(refit), "multiclass", model={"candidates": ["gbm"], "refit": refit}
        )
        runs[refit] = forgeml.train(config_from_dict(config))
    stopped, refit = (dict(zip(r.model.names, r.model.members, strict=True))["gbm"] for r in runs.values())
    kept = stopped.booster.current_iteration()
    assert 1 < kept < CANDIDATES["gbm"].model.max_rounds  # early stopping chose the rounds
    run = runs[True]
    rows = pd.concat([run.splits.train.table, run.splits.validation.table], ignore_index=True)
    rounds = round(kept * len(rows) / len(run.splits.train))  # scaled by the rows gained
    assert rounds > kept
    target = pd.concat([run.splits.train.target, run.splits.validation.target], ignore_index=True)
    data = tensor_data(run.pipeline, RawData(rows, None, target, run.splits.train.source))
    matrix = tree_matrix(*(tensor.numpy() for tensor in data.inputs))
    settings = CANDIDATES["gbm"].train(run.config.train)
    params = lightgbm_params(
        CANDIDATES["gbm"].model, settings, "classification", classes=3, seed=run.config.seed
    )
    by_hand = lightgbm.train(
        params,
        lightgbm.Dataset(matrix, data.target.numpy(), categorical_feature=stopped.categorical_indices),
        rounds,
    )
    assert refit.booster.current_iteration() == rounds
    np.testing.assert_allclose(refit.booster.predict(matrix), by_hand.predict(matrix), rtol=1e-9, atol=1e-12)
    assert not np.allclose(stopped.booster.predict(matrix), by_hand.predict(matrix))
    board = {row["model"]: row for row in run.model.leaderboard}
    assert board["gbm"]["note"].startswith(f"refit on all {len(rows)} rows for {rounds} rounds in ")
    assert {row["model"]: row for row in runs[False].model.leaderboard}["gbm"]["note"] == ""
