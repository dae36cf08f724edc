"""The MLP for tables: widths sized to the data, periodic numeric embeddings, exported ONNX == eager."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import forgeml
from forgeml.config import MLPConfig, config_from_dict
from forgeml.data import RawData
from forgeml.deploy import Predictor, read_bundle
from forgeml.features import InputSpec
from forgeml.models import build_model, predict_outputs
from forgeml.models.mlp import AUTO_WIDTH


def test_auto_width_is_two_layers_of_256_for_any_input() -> None:
    for spec in (InputSpec(numeric_dim=5, train_rows=500), InputSpec(numeric_dim=300, train_rows=50_000)):
        model = build_model(MLPConfig(submodels=1), spec, 2)
        linear = [layer.out_features for layer in model.layers if isinstance(layer, torch.nn.Linear)]
        assert linear == [AUTO_WIDTH, AUTO_WIDTH, 2] == [256, 256, 2]


def test_auto_submodels_are_for_small_tables_only() -> None:
    from forgeml.models.mlp import SMALL_TABLE_ROWS, SMALL_TABLE_SUBMODELS, resolved_submodels

    def spec(rows: int, **kind: object) -> InputSpec:
        return InputSpec(numeric_dim=4, continuous_dim=4, train_rows=rows, **kind)

    assert SMALL_TABLE_SUBMODELS == 4
    assert resolved_submodels(MLPConfig(), spec(SMALL_TABLE_ROWS - 1)) == 4
    assert resolved_submodels(MLPConfig(), spec(SMALL_TABLE_ROWS)) == 1  # several times the seconds
    assert resolved_submodels(MLPConfig(), spec(0)) == 1  # a bundle from before train_rows was recorded
    assert resolved_submodels(MLPConfig(), spec(500, image_shape=(1, 8, 8))) == 1  # measured on tables
    assert resolved_submodels(MLPConfig(submodels=2), spec(10**6)) == 2
    small = build_model(MLPConfig(hidden=[8]), spec(500), 3)
    assert small.heads.weight.shape == (4, 8, 3) and small.eval()(torch.randn(5, 4)).shape == (5, 3)


def test_a_bundle_written_before_submodels_rebuilds_one_network() -> None:
    from forgeml.bundle.predictive import stored_model_config

    # its stored config has no submodels key; auto would now make a small table's MLP four
    assert stored_model_config({"type": "mlp", "hidden": [8]}).submodels == 1
    assert stored_model_config({"type": "mlp", "hidden": [8], "submodels": "auto"}).submodels == "auto"
    assert stored_model_config({"type": "cnn"}).type == "cnn"


def test_periodic_embedding_expands_only_the_real_numbers() -> None:
    spec = InputSpec(numeric_dim=7, continuous_dim=4, train_rows=2000)  # 4 numbers + 3 one-hot indicators
    model = build_model(MLPConfig(numeric_embedding="periodic", hidden=[8], submodels=1), spec, 1)
    assert model.layers[0].in_features == 4 * 16 + 3
    assert model(torch.randn(5, 7)).shape == (5, 1)
    assert MLPConfig().numeric_embedding == "auto"  # on from PERIODIC_MIN_ROWS training rows (config.py)
    with pytest.raises(Exception, match="numeric_embedding"):
        config_from_dict(
            {
                "data": {"source": "t.csv", "target": "y"},
                "model": {"type": "mlp", "numeric_embedding": "fourier"},
            }
        )


def test_auto_embedding_turns_on_from_the_measured_row_count() -> None:
    from forgeml.models.mlp import PERIODIC_MIN_ROWS, resolved_embedding

    def spec(rows: int, continuous: int = 4) -> InputSpec:
        return InputSpec(numeric_dim=4, continuous_dim=continuous, train_rows=rows)

    assert resolved_embedding(MLPConfig(), spec(PERIODIC_MIN_ROWS)) == "periodic"
    assert resolved_embedding(MLPConfig(), spec(PERIODIC_MIN_ROWS - 1)) == "none"
    assert resolved_embedding(MLPConfig(), spec(PERIODIC_MIN_ROWS, continuous=0)) == "none"  # one-hot only
    assert resolved_embedding(MLPConfig(numeric_embedding="none"), spec(10**6)) == "none"
    wide = build_model(MLPConfig(hidden=[8]), spec(PERIODIC_MIN_ROWS), 1)
    assert wide.numeric_embedding is not None and wide.layers[0].in_features == 4 * 16


def test_submodels_each_learn_on_their_own_and_predict_their_mean() -> None:
    from forgeml.data import TaskInfo
    from forgeml.training.losses import make_loss

    torch.manual_seed(0)
    model = build_model(MLPConfig(hidden=[8], submodels=3), InputSpec(numeric_dim=4, train_rows=100), 1)
    rows, target = torch.randn(20, 4), (torch.rand(20) > 0.5).float()
    each = model.train()(rows)  # (N, K, 1): one output per submodel
    assert each.shape == (20, 3, 1)
    assert (each[:, 0] - each[:, 1]).abs().max() > 1e-3  # their own input scales and heads differ
    torch.testing.assert_close(model.eval()(rows), each.mean(dim=1))
    loss = make_loss("auto", TaskInfo("binary", ["no", "yes"]))
    alone = [torch.nn.functional.binary_cross_entropy_with_logits(each[:, k, 0], target) for k in range(3)]
    torch.testing.assert_close(loss(each, target), torch.stack(alone).mean())
    loss(each, target).backward()  # every submodel's head gets its own gradient
    assert all(model.heads.weight.grad[k].abs().sum() > 0 for k in range(3))
    with pytest.raises(Exception, match="model.submodels") as refused:
        config_from_dict(
            {
                "data": {"source": "t.csv", "target": "y"},
                "model": {"type": "mlp", "submodels": 4},
                "train": {"privacy": {"epsilon": 3}},
            }
        )
    assert "Opacus" in str(refused.value)
    private = {"data": {"source": "t.csv", "target": "y"}, "train": {"privacy": {"epsilon": 3}}}
    for model in ({"type": "mlp"}, {"type": "mlp", "submodels": "auto"}):  # left out or auto: one network
        assert config_from_dict({**private, "model": model}).model.submodels == 1


def test_submodels_export_one_onnx_equal_to_eager_and_distil(tmp_path: Path) -> None:
    from conftest import make_mixed_table, write_config

    make_mixed_table(rows=300).to_csv(tmp_path / "data.csv", index=False)
    config = write_config(
        tmp_path / "c.yaml",
        str(tmp_path / "data.csv"),
        data={"target": "churned"},
        model={"type": "mlp", "numeric_embedding": "periodic", "submodels": 4},
        train={"epochs": 3},
        check={"enabled": False},
    )
    run = forgeml.train(config)
    assert run.model.heads.weight.shape[0] == 4
    forgeml.api.export(run.path)
    test = run.splits.test
    onnx_out = Predictor(read_bundle(run.bundle_path)).raw_outputs(test)
    direct = predict_outputs(run.model, run.pipeline.transform(test).ordered(run.pipeline.input_spec.names))
    assert onnx_out.shape == (len(test), 1) and np.abs(onnx_out - direct.numpy()).max() <= 1e-5
    distilled = forgeml.api.compress(run.path, distill=0.5).variant("distill")  # a student of half the width
    student = read_bundle(distilled.path)
    assert student.model.heads.weight.shape[:2] == (4, AUTO_WIDTH // 2)  # its submodels learnt too
    assert np.isfinite(distilled.metric) and distilled.metric > 0.5


def test_a_table_mlps_training_recipe_follows_its_rows_images_keep_the_engines() -> None:
    from forgeml.config import TABLE_MLP_DEFAULTS, TrainConfig
    from forgeml.models.mlp import SMALL_TABLE_ROWS
    from forgeml.training.auto import CANDIDATES
    from forgeml.training.recipe import network_training

    mlp = MLPConfig()
    parsed = config_from_dict({"data": {"source": "t.csv", "target": "y"}, "model": {"type": "mlp"}}).train
    large = network_training(mlp, parsed, InputSpec(numeric_dim=3, train_rows=SMALL_TABLE_ROWS))
    wanted = TABLE_MLP_DEFAULTS["train"]
    assert (large.epochs, large.batch_size, large.learning_rate) == (200, 128, 2e-3) == (
        wanted["epochs"], wanted["batch_size"], wanted["learning_rate"],
    )  # fmt: skip
    assert large.schedule is not None and large.schedule.type == "cosine"
    assert large.early_stopping is not None and large.early_stopping.patience == 200
    assert large.early_stopping.monitor == "auto"  # error for a classifier (resolve_monitor)
    # a small table: the engine's short training, keeping the epoch of least validation loss
    small = network_training(mlp, parsed, InputSpec(numeric_dim=3, train_rows=SMALL_TABLE_ROWS - 1))
    assert (small.epochs, small.batch_size, small.learning_rate, small.schedule) == (20, 32, 1e-3, None)
    assert small.early_stopping is not None and (small.early_stopping.patience, small.early_stopping.monitor) == (5, "loss")
    # a bundle written before its rows were recorded (0) trained as a large table did
    assert network_training(mlp, parsed, InputSpec(numeric_dim=3)).epochs == 200
    images = config_from_dict({"data": {"source": "sklearn:digits"}, "model": {"type": "mlp"}}).train
    image_spec = InputSpec(image_shape=(1, 8, 8), train_rows=1000)
    assert network_training(mlp, images, image_spec) == images and (images.epochs, images.schedule) == (20, None)
    mine = config_from_dict(
        {
            "data": {"source": "t.csv", "target": "y"},
            "model": {"type": "mlp"},
            "train": {"epochs": 5, "schedule": None, "early_stopping": {"monitor": "error"}},
        }
    ).train
    mine_large = network_training(mlp, mine, InputSpec(numeric_dim=3, train_rows=50_000))
    assert mine_large.epochs == 5 and mine_large.schedule is None and mine_large.batch_size == 128  # what is set wins
    mine_small = network_training(mlp, mine, InputSpec(numeric_dim=3, train_rows=100))
    assert mine_small.early_stopping is not None and mine_small.early_stopping.monitor == "error"
    unstopped = TrainConfig(early_stopping=None)
    assert network_training(mlp, unstopped, InputSpec(numeric_dim=3, train_rows=100)).early_stopping is None
    # auto's networks: the large table's defaults whatever the rows, where the run's train section sets nothing
    auto = config_from_dict({"data": {"source": "t.csv", "target": "y"}, "train": {"epochs": 3}}).train
    network = CANDIDATES["mlp"].train(auto)
    assert (network.epochs, network.batch_size, network.early_stopping.patience) == (3, 128, 30)
    assert network.early_stopping.monitor == "loss"  # ensemble selection weighs log loss (AUTO_NETWORK_STOPPING)
    mine = CANDIDATES["mlp"].train(TrainConfig(early_stopping={"patience": 7, "monitor": "error"})).early_stopping
    assert (mine.patience, mine.monitor) == (7, "error")
    assert CANDIDATES["mlp"].train(TrainConfig(batch_size=16)).batch_size == 16


def test_a_small_tables_mlp_trains_the_short_way_and_plan_counts_its_batches(tmp_path: Path) -> None:
    """Through forgeml.train and plan, with no train section: 300 rows train at most 20 epochs of batch 32
    and keep the epoch of least validation loss."""
    from conftest import make_mixed_table

    make_mixed_table(rows=300).to_csv(tmp_path / "data.csv", index=False)
    config = config_from_dict(
        {
            "name": "short",
            "output_dir": str(tmp_path / "runs"),
            "data": {"source": str(tmp_path / "data.csv"), "target": "churned"},
            "model": {"type": "mlp"},
            "check": {"enabled": False},
        }
    )
    run = forgeml.train(config)
    history = run.result.history
    assert 1 <= len(history) <= 20  # the large tables' recipe runs all 200 epochs
    least_loss = min(history, key=lambda epoch: epoch.val_loss)
    assert run.result.best_epoch == least_loss.epoch
    plan = forgeml.api.plan(config, batches=1)
    assert plan.rows == len(run.splits.train) and plan.steps_per_epoch == -(-plan.rows // 32)


@pytest.mark.slow
def test_embedded_quantile_scaled_mlp_exports_onnx_equal_to_eager(tmp_path: Path) -> None:
    from conftest import make_mixed_table, write_config

    table = make_mixed_table(rows=300)
    rng = np.random.default_rng(0)
    table["balance"] = rng.lognormal(8, 1.5, len(table))  # log1p
    # far outliers (a 999999 placeholder in 3% of rows) squash the rest under standard scaling: quantile
    table["swing"] = np.where(rng.random(len(table)) < 0.03, 999999.0, rng.normal(50, 10, len(table)))
    table.loc[::6, "swing"] = np.nan
    table.to_csv(tmp_path / "data.csv", index=False)
    config = write_config(
        tmp_path / "c.yaml",
        str(tmp_path / "data.csv"),
        data={"target": "churned"},
        model={"type": "mlp", "numeric_embedding": "periodic"},
        train={"epochs": 3},
        check={"enabled": False},
    )
    run = forgeml.train(config)
    numeric = run.pipeline.numeric_
    assert "quantile" in numeric.scalings_ and numeric.log_.any()
    forgeml.api.export(run.path)
    bundle = read_bundle(run.bundle_path)
    test = run.splits.test
    onnx_out = Predictor(bundle).raw_outputs(test)
    direct = predict_outputs(run.model, run.pipeline.transform(test).ordered(run.pipeline.input_spec.names))
    assert Predictor(bundle).engine.name == "onnxruntime"
    assert np.abs(onnx_out - direct.numpy()).max() <= 1e-5
    far = test.table.copy()
    far["swing"], far["balance"] = 1e9, -5.0  # beyond the knots, below the log's 0
    outside = rows_of(far)
    assert (
        np.abs(
            Predictor(bundle).raw_outputs(outside) - Predictor(bundle, engine="torch").raw_outputs(outside)
        ).max()
        <= 1e-5
    )


def rows_of(table: pd.DataFrame) -> RawData:
    return RawData(table, None, None, "rows")
