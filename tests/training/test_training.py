import io

import pytest
import torch
from rich.console import Console

from forgeml.config import DataConfig, FeaturesConfig, MLPConfig, TrainConfig
from forgeml.data import TaskInfo, load_data
from forgeml.errors import ConfigError
from forgeml.features import fit_features
from forgeml.training import Callback, EarlyStopping, EpochResult, TrainState, train_model
from forgeml.training.losses import resolve_loss_name


def _train(config: TrainConfig, seed: int = 0, callbacks: list[Callback] | None = None):
    splits = load_data(DataConfig(source="sklearn:iris"), seed=0)
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


def test_early_stopping_stops_and_restores_the_best_weights() -> None:
    class Snapshot(Callback):
        """Keeps the weights after each epoch so the test can check what was restored."""

        def __init__(self) -> None:
            self.weights: dict[int, dict[str, torch.Tensor]] = {}

        def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
            self.weights[result.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}

    snapshot = Snapshot()
    # A huge learning rate makes validation loss bounce, so patience runs out well before 200 epochs.
    result, _ = _train(TrainConfig(epochs=200, learning_rate=0.5, optimizer="sgd"), callbacks=[snapshot])
    assert len(result.history) < 200
    best = min(result.history, key=lambda r: r.val_loss)
    assert result.best_epoch == best.epoch
    final = result.model.state_dict()
    assert all(torch.equal(final[k], snapshot.weights[best.epoch][k]) for k in final)


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
