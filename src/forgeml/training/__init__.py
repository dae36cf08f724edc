"""The train stage: build the model for the fitted features and run the loop until done.

``train_model(features, train, validation, model_cfg, train_cfg, seed=...)`` is the stage's public
function; it returns a :class:`TrainResult`.
"""

from __future__ import annotations

from rich.console import Console

from forgeml.config import ModelConfig, TrainConfig
from forgeml.data import RawData
from forgeml.features import FeaturePipeline
from forgeml.models import build_model
from forgeml.training.callbacks import Callback, EarlyStopping, EpochResult, ProgressReporter, TrainState
from forgeml.training.loop import TensorData, TrainResult, fit, seed_everything, set_threads
from forgeml.training.losses import make_loss

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochResult",
    "ProgressReporter",
    "TensorData",
    "TrainResult",
    "TrainState",
    "tensor_data",
    "train_model",
]


def tensor_data(pipeline: FeaturePipeline, raw: RawData) -> TensorData:
    """``raw`` transformed by the fitted pipeline into model-ready tensors with encoded targets."""
    inputs = pipeline.transform(raw)
    return TensorData(inputs.ordered(pipeline.input_spec.names), pipeline.encode_target(raw))


def train_model(
    pipeline: FeaturePipeline,
    train: RawData,
    validation: RawData,
    model_config: ModelConfig,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Build a model for ``pipeline``'s inputs and train it on ``train``, watching ``validation``."""
    set_threads(config.threads)
    loss_function = make_loss(config.loss, pipeline.task)  # fails on a bad pairing before any work
    seed_everything(seed)
    model = build_model(model_config, pipeline.input_spec, pipeline.target_.output_dim)
    train_data = tensor_data(pipeline, train)
    validation_data = tensor_data(pipeline, validation) if len(validation) else None
    shipped: list[Callback] = [ProgressReporter(console)]
    if config.early_stopping is not None and validation_data is not None:
        shipped.append(
            EarlyStopping(patience=config.early_stopping.patience, min_delta=config.early_stopping.min_delta)
        )
    return fit(
        model,
        train_data,
        validation_data,
        loss_function,
        config,
        seed=seed,
        callbacks=[*shipped, *(callbacks or [])],
    )
