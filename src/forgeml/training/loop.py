"""The training loop: forward, loss, backpropagation, optimizer step; stop when done.

Data that fits in memory is held as tensors and sliced per batch (no per-sample Dataset), and the
epoch loss is summed on the device, read back once per epoch: no host sync per step.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from forgeml.config import TrainConfig
from forgeml.training.callbacks import Callback, EpochResult, TrainState
from forgeml.training.losses import LossFunction


@dataclass(frozen=True)
class TensorData:
    """Model inputs (in the model's order) and encoded targets, all with the same row count."""

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class TrainResult:
    """The trained model (best weights restored when early stopping ran) and its per-epoch history."""

    model: nn.Module
    history: tuple[EpochResult, ...]
    best_epoch: int | None
    seconds: float


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run with the same seed repeats exactly on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads; 0 means one per available core."""
    torch.set_num_threads(
        threads
        or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    )


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    parameters = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    optimizer_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return optimizer_class(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)


def fit(
    model: nn.Module,
    train: TensorData,
    validation: TensorData | None,
    loss_function: LossFunction,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: list[Callback],
) -> TrainResult:
    """Train ``model`` in place for up to ``config.epochs`` epochs; callbacks may stop it early."""
    started = time.perf_counter()
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(seed)
    steps = max(1, -(-len(train) // config.batch_size))
    state = TrainState(model=model, epochs=config.epochs, steps_per_epoch=steps)
    for callback in callbacks:
        callback.on_train_begin(state)
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        train_loss = _train_one_epoch(
            model, train, loss_function, optimizer, config.batch_size, generator, state, callbacks
        )
        val_loss = (
            evaluate_loss(model, validation, loss_function)
            if validation is not None and len(validation)
            else None
        )
        result = EpochResult(epoch, train_loss, val_loss, time.perf_counter() - epoch_started)
        state.history.append(result)
        for callback in callbacks:
            callback.on_epoch_end(state, result)
        if state.should_stop:
            break
    for callback in callbacks:
        callback.on_train_end(state)
    model.eval()
    return TrainResult(model, tuple(state.history), state.best_epoch, time.perf_counter() - started)


def _train_one_epoch(
    model: nn.Module,
    data: TensorData,
    loss_function: LossFunction,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    state: TrainState,
    callbacks: list[Callback],
) -> float:
    model.train()
    order = torch.randperm(len(data), generator=generator)
    total = torch.zeros(())
    for start in range(0, len(data), batch_size):
        rows = order[start : start + batch_size]
        inputs = tuple(tensor.index_select(0, rows) for tensor in data.inputs)
        target = data.target.index_select(0, rows)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(*inputs), target)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(rows)
        for callback in callbacks:
            callback.on_step_end(state)
    return float(total) / len(data)


@torch.inference_mode()
def evaluate_loss(
    model: nn.Module, data: TensorData, loss_function: LossFunction, *, batch_size: int = 1024
) -> float:
    """Mean loss over ``data`` in eval mode (dropout off), in large batches."""
    model.eval()
    total = torch.zeros(())
    for start in range(0, len(data), batch_size):
        inputs = tuple(tensor[start : start + batch_size] for tensor in data.inputs)
        target = data.target[start : start + batch_size]
        total += loss_function(model(*inputs), target) * len(target)
    return float(total) / len(data)
