import io

import pytest
import torch
from rich.console import Console

from forgeml.config import DataConfig, EarlyStoppingConfig, FeaturesConfig, MLPConfig, TrainConfig
from forgeml.data import TaskInfo, load_data
from forgeml.errors import ConfigError
from forgeml.features import fit_features
from forgeml.training import Callback, EarlyStopping, EpochResult, TrainState, train_model
from forgeml.training.losses import resolve_loss_name
from forgeml.training.stage import resolve_monitor


def _train(
    config: TrainConfig, seed: int = 0, callbacks: list[Callback] | None = None, source: str = "sklearn:iris"
):
    splits = load_data(DataConfig(source=source), seed=0)
    pipeline = fit_features(splits.train, FeaturesConfig(), splits.task)
    console = Console(file=io.StringIO(), width=200)
    result = train_model(
        pipeline,
        splits.train,
        splits.validation,
        MLPConfig(hidden=[16]),
        config,
        seed=seed,
        callbacks=callbacks,
        console=console,
    )
    return result, console.file.getvalue()


def test_loss_falls_and_each_epoch_prints_the_documents_line() -> None:
    result, output = _train(TrainConfig(epochs=12, learning_rate=0.01, early_stopping=None))
    assert result.history[-1].train_loss < 0.5 * result.history[0].train_loss
    lines = output.strip().splitlines()
    assert len(lines) == 12
    assert lines[0].startswith("Epoch 1/12, Loss: ") and ", Val Loss: " in lines[0]


def test_same_seed_gives_identical_weights_and_another_seed_does_not() -> None:
    config = TrainConfig(epochs=3, learning_rate=0.01)
    first, second, third = (_train(config, seed)[0].model for seed in (5, 5, 6))
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )
    assert not all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), third.state_dict().values(), strict=True)
    )


class _Snapshot(Callback):
    """Keeps the weights after each epoch so a test can check what was restored."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        self.weights[result.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    snapshot = _Snapshot()
    # A huge learning rate makes validation loss bounce, so patience runs out well before 200 epochs.
    stopping = EarlyStoppingConfig(patience=5, monitor="loss")
    config = TrainConfig(epochs=200, learning_rate=0.5, optimizer="sgd", early_stopping=stopping)
    result, _ = _train(config, callbacks=[snapshot])
    assert len(result.history) < 200
    best = min(result.history, key=lambda r: r.val_loss)
    assert result.best_epoch == best.epoch
    final = result.model.state_dict()
    assert all(torch.equal(final[k], snapshot.weights[best.epoch][k]) for k in final)
    assert all(r.val_error is None for r in result.history)  # not computed when not monitored


def test_a_classifier_monitoring_auto_keeps_the_epoch_of_least_validation_error_then_least_loss() -> None:
    snapshot = _Snapshot()
    # breast cancer at a high rate: the validation loss turns up while the error still ties its best.
    # monitor auto is set: a table this small would otherwise keep the least loss (forgeml.training.recipe)
    stopping = EarlyStoppingConfig(patience=40, monitor="auto")
    config = TrainConfig(epochs=40, learning_rate=0.02, early_stopping=stopping)
    result, output = _train(config, callbacks=[snapshot], source="sklearn:breast_cancer")
    errors = [r.val_error for r in result.history]
    assert all(error is not None for error in errors) and ", Val Error: " in output
    least = min(errors)
    tied = [r for r in result.history if r.val_error == least]
    assert len(tied) > 1  # the case the tie rule decides
    kept = min(tied, key=lambda r: (r.val_loss, r.epoch)).epoch  # ties go to the lower validation loss
    assert result.best_epoch == kept
    assert kept != min(result.history, key=lambda r: r.val_loss).epoch  # the loss would have kept another
    final = result.model.state_dict()
    assert all(torch.equal(final[k], snapshot.weights[kept][k]) for k in final)


def test_an_error_tie_with_a_lower_loss_moves_the_kept_epoch_without_resetting_patience() -> None:
    stopper = EarlyStopping(patience=2, monitor="error")
    state = TrainState(model=torch.nn.Linear(1, 1), epochs=10, steps_per_epoch=1)
    # epoch 3 ties epoch 2's error with a lower loss (kept); epoch 4 ties it with a higher one (not kept)
    for epoch, (error, loss) in enumerate([(0.5, 1.0), (0.3, 0.8), (0.3, 0.7), (0.3, 0.75)], start=1):
        stopper.on_epoch_end(state, EpochResult(epoch, 1.0, loss, 0.0, val_error=error))
    assert state.should_stop and state.best_epoch == 3
    assert "validation error has not improved on 0.3" in (state.stop_reason or "")
    resumed = EarlyStopping(patience=2, monitor="error")
    resumed.load_state_dict(stopper.state_dict())  # a checkpoint keeps the kept epoch's loss
    assert resumed.kept_loss == 0.7


def test_monitor_error_on_a_regression_target_is_refused_naming_the_key() -> None:
    stopping = EarlyStoppingConfig(monitor="error")
    with pytest.raises(ConfigError, match="train.early_stopping.monitor") as caught:
        resolve_monitor(TrainConfig(early_stopping=stopping), "regression", table=True)
    assert caught.value.key == "train.early_stopping.monitor"
    assert resolve_monitor(TrainConfig(), "regression", table=True).early_stopping.monitor == "loss"
    assert resolve_monitor(TrainConfig(), "multiclass", table=True).early_stopping.monitor == "error"
    assert (
        resolve_monitor(TrainConfig(), "multiclass", table=False).early_stopping.monitor == "loss"
    )  # images, text


def test_early_stopping_counts_patience() -> None:
    stopper = EarlyStopping(patience=2)
    state = TrainState(model=torch.nn.Linear(1, 1), epochs=10, steps_per_epoch=1)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.96], start=1):
        stopper.on_epoch_end(state, EpochResult(epoch, loss, loss, 0.0))
    assert state.should_stop and state.best_epoch == 2


@pytest.mark.parametrize(
    ("loss", "kind"), [("bce", "classification"), ("cross_entropy", "regression"), ("mse", "binary")]
)
def test_loss_that_does_not_fit_the_task_is_refused(loss: str, kind: str) -> None:
    with pytest.raises(ConfigError, match="train.loss"):
        resolve_loss_name(loss, TaskInfo(kind, ("a", "b", "c")))
