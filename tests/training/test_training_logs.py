"""TensorBoard and CSV logs, NaN policy, schedules and options of the loop (in-process, fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import write_config
from forgeml import api
from forgeml.errors import ConfigError
from forgeml.training import NonFiniteLoss

TRAIN = {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "threads": 1, "early_stopping": None}


def _config(tmp_path: Path, name: str, **train: object) -> Path:
    return write_config(
        tmp_path / f"{name}.yaml",
        "sklearn:iris",
        name=name,
        train={**TRAIN, **train},
        check={"enabled": False},
    )


def test_tensorboard_events_read_back_with_the_expected_tags(tmp_path: Path) -> None:
    run = api.train(_config(tmp_path, "tb", tensorboard=True, schedule={"type": "cosine", "warmup_steps": 3}))
    accumulator = EventAccumulator(str(run.path / "tensorboard")).Reload()
    scalars = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "epoch/train_loss", "epoch/val_loss"} <= scalars
    assert len(accumulator.Scalars("train/loss")) == 2 * 7
    rates = [event.value for event in accumulator.Scalars("train/learning_rate")]
    assert rates[0] < rates[2] and rates[-1] < max(rates)  # warm-up, then cosine decay
    assert accumulator.Graph() is not None


def test_nan_loss_stops_without_touching_the_last_checkpoint(tmp_path: Path, monkeypatch) -> None:
    config = _config(tmp_path, "nan", checkpoint_every=3)
    from forgeml.training import stage

    real = stage.make_loss

    def poisoned(*args, **kwargs):
        loss, calls = real(*args, **kwargs), [0]

        def wrapper(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            value = loss(outputs, target)
            return value * float("inf") if calls[0] == 5 else value

        return wrapper

    monkeypatch.setattr(stage, "make_loss", poisoned)
    with pytest.raises(NonFiniteLoss, match="on_nan"):
        api.train(config)
    checkpoints = sorted((tmp_path / "runs" / "nan" / "checkpoints").glob("step-*.pt"))
    assert [path.name for path in checkpoints] == ["step-00000003.pt"]
    run = api.train(_config(tmp_path, "skip", on_nan="skip"))  # skipping goes on to the end
    assert len(run.result.history) == 2


def test_fp16_on_cpu_is_a_config_error() -> None:
    from forgeml.training.runtime import check_precision

    with pytest.raises(ConfigError, match="train.precision"):
        check_precision("fp16", torch.device("cpu"))


def test_options_train(tmp_path: Path) -> None:
    run = api.train(
        _config(
            tmp_path, "options", precision="bf16", grad_clip=1.0, accumulate=2, label_smoothing=0.1,
            class_weights="auto", schedule={"type": "one_cycle"}, deterministic=True, csv_log=True,
        )
    )  # fmt: skip
    assert run.result.history[-1].train_loss < run.result.history[0].train_loss
    assert len((run.path / "train_log.csv").read_text().splitlines()) == 1 + 2 * 7
