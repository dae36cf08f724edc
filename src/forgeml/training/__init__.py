"""The train stage: build the model for the fitted features and run the loop until done.

``train_model(features, train, validation, model_cfg, train_cfg, seed=..., session=...)`` is the
stage's public function; it returns a :class:`TrainResult`. Modules: ``loop`` (the epochs),
``steps`` (one step), ``checkpoint`` and ``resume`` (exact resume), ``optim`` (optimizers and
schedules), ``runtime`` (device, precision, determinism, signals), ``distributed`` (torchrun/DDP),
``callbacks`` and ``logs`` (hooks, CSV, TensorBoard), ``plan`` and ``command`` (``forgeml plan``).

Names are imported on first use, so the CLI can register ``forgeml plan`` without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_NAMES = {
    "Callback": "callbacks",
    "EarlyStopping": "callbacks",
    "EpochResult": "callbacks",
    "ProgressReporter": "callbacks",
    "TrainState": "callbacks",
    "CSVLogger": "logs",
    "TensorBoardLogger": "logs",
    "Session": "loop",
    "TensorData": "loop",
    "TrainResult": "loop",
    "NonFiniteLoss": "runtime",
    "TrainingInterrupted": "runtime",
    "tensor_data": "stage",
    "train_model": "stage",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module(f"forgeml.training.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'forgeml.training' has no attribute {name!r}")
