"""The training loop: forward, loss, backpropagation, optimizer step; stop when done.

Data is held as tensors on the device and sliced per batch (no per-sample Dataset). Decoded image
files stay uint8 and become float per batch (:func:`~forgeml.features.image.scale_pixels`): on a
CPU the split is the memory-mapped cache itself, so a folder larger than RAM trains. The epoch loss
is summed on the device, read back once per epoch: no host sync per step on a GPU. Everything a
resume needs (see :mod:`forgeml.training.checkpoint`) is captured at step boundaries, so a resumed
run takes exactly the batches and random numbers it would have taken.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from forgeml.config import TrainConfig
from forgeml.features.image import batch_rows, scale_pixels
from forgeml.training.callbacks import Callback, EpochResult, TrainState, kept_on_tie
from forgeml.training.checkpoint import CHECKPOINT_DIR, CheckpointStore, Fingerprints, data_fingerprint
from forgeml.training.distributed import Ranks, init_process_group
from forgeml.training.host import tune_allocator, wants_channels_last
from forgeml.training.losses import LossFunction
from forgeml.training.optim import make_optimizer, make_scheduler
from forgeml.training.resume import Progress, ResumeMode, capture, restore, start_or_resume
from forgeml.training.runtime import (
    GracefulStop,
    NonFiniteLoss,
    TrainingInterrupted,
    check_precision,
    enforce_determinism,
    grad_scaler,
    resolve_device,
)
from forgeml.training.steps import Stepper, fault_hooks

if TYPE_CHECKING:
    from forgeml.training.privacy import PrivacyReport, PrivateTraining

__all__ = [
    "NonFiniteLoss",
    "Session",
    "TensorData",
    "TrainResult",
    "TrainingInterrupted",
    "evaluate_loss",
    "fit",
    "make_optimizer",
    "seed_everything",
    "set_threads",
]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorData:
    """Model inputs (in the model's order) and encoded targets, all with the same row count."""

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device: torch.device) -> TensorData:
        return TensorData(tuple(tensor.to(device) for tensor in self.inputs), self.target.to(device))


@dataclass(frozen=True)
class TrainResult:
    """The trained model (best weights restored when early stopping ran) and its per-epoch history.

    ``is_main`` is false on the ranks > 0 of a multi-process job, which write no files.
    """

    model: nn.Module
    history: tuple[EpochResult, ...]
    best_epoch: int | None
    seconds: float
    is_main: bool = True
    resumed_step: int | None = None
    stop_reason: str | None = None  # e.g. early stopping: at which epoch and why
    privacy: PrivacyReport | None = None  # train.privacy: the epsilon spent and how


@dataclass(frozen=True)
class Session:
    """Where a run keeps its files and how it starts (the parts of a run beyond the train section).

    ``run_dir`` None writes nothing (no checkpoints, no logs). ``resume``: ``never`` starts fresh
    (clearing old checkpoints), ``auto`` continues when checkpoints exist, ``require`` fails without
    one, and a path resumes from that file. ``config`` holds the weight-shaping config keys, compared
    on resume.
    """

    run_dir: Path | None = None
    resume: ResumeMode = "never"
    force_resume: bool = False
    config: dict[str, str] = field(default_factory=dict)
    ranks: Ranks = Ranks()


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


def fit(
    model: nn.Module,
    train: TensorData,
    validation: TensorData | None,
    loss_function: LossFunction,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: list[Callback],
    session: Session | None = None,
) -> TrainResult:
    """Train ``model`` in place for up to ``config.epochs`` epochs; callbacks may stop it early.

    Raises TrainingInterrupted after SIGTERM/SIGINT (a checkpoint is written first) and
    NonFiniteLoss when the loss stops being finite under ``on_nan: stop``.
    """
    started = time.perf_counter()
    session = session or Session()
    ranks = session.ranks
    device = resolve_device(config.device, local_rank=ranks.local_rank)
    check_precision(config.precision, device)
    if config.deterministic:
        enforce_determinism()
    init_process_group(ranks, device)
    if config.allocator == "tuned":
        tune_allocator()
    model.to(device)
    # Weights in NHWC make every convolution's activations NHWC too (PyTorch follows the weight).
    channels_last = wants_channels_last(config.channels_last, model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    train = train.to(device)
    validation = validation.to(device) if validation is not None and len(validation) else None
    batches = max(1, -(-len(train) // config.batch_size))
    optimizer = make_optimizer(model, config)
    private: PrivateTraining | None = None
    if config.privacy is not None:  # DP-SGD: Opacus' optimizer, Poisson batches, accountant in checkpoints
        from forgeml.training.privacy import PrivateTraining, refuse_processes

        refuse_processes(ranks.world_size)
        private = PrivateTraining(model, optimizer, len(train), config, seed=seed)
        optimizer, loss_function = private.optimizer, private.loss(loss_function)
        callbacks = [*callbacks, private.callback]
    scheduler = make_scheduler(optimizer, config, steps_per_epoch=-(-batches // config.accumulate))
    scaler = grad_scaler(config, device)
    store = (
        CheckpointStore(session.run_dir / CHECKPOINT_DIR, keep=config.keep_checkpoints)
        if session.run_dir is not None
        else None
    )
    fingerprints = Fingerprints(session.config, data_fingerprint([*train.inputs, train.target]))
    state = TrainState(
        model=model,
        epochs=config.epochs,
        steps_per_epoch=batches,
        optimizer=optimizer,
        run_dir=session.run_dir,
        is_main=ranks.is_main,
        sample_inputs=tuple(scale_pixels(tensor[:2]) for tensor in train.inputs),
    )
    progress = Progress(generator=torch.Generator().manual_seed(seed), device=device)
    parts = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "callbacks": callbacks}
    payload = start_or_resume(store, session.resume, session.force_resume, fingerprints, ranks)
    if payload is not None:
        restore(payload, state, progress, **parts)
    stepper = Stepper(model, loss_function, optimizer, scheduler, scaler, config, ranks, device)

    def save(*, best: bool = False) -> str | None:
        if store is None:
            return None
        stepper.assert_finite()  # never overwrite a good checkpoint with broken weights
        for callback in callbacks:
            callback.on_checkpoint(state)
        if not ranks.is_main:
            return None
        return str(store.save(capture(state, progress, fingerprints, ranks, **parts), best=best))

    for callback in callbacks:
        callback.on_train_begin(state)
    with GracefulStop().installed() as stop:
        while progress.epoch <= config.epochs and not progress.finished:
            _run_epoch(
                train,
                validation,
                loss_function,
                config,
                state,
                progress,
                stepper,
                callbacks,
                stop,
                save,
                private,
            )
    for callback in callbacks:
        callback.on_train_end(state)
    privacy = private.close() if private is not None else None
    model.eval()
    model.to("cpu")
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return TrainResult(
        model,
        tuple(state.history),
        state.best_epoch,
        time.perf_counter() - started,
        ranks.is_main,
        state.resumed_step,
        state.stop_reason,
        privacy,
    )


def _run_epoch(
    train: TensorData,
    validation: TensorData | None,
    loss_function: LossFunction,
    config: TrainConfig,
    state: TrainState,
    progress: Progress,
    stepper: Stepper,
    callbacks: list[Callback],
    stop: GracefulStop,
    save,
    private: PrivateTraining | None = None,
) -> None:
    """One epoch from ``progress.index`` on; checkpoints on schedule and when a signal arrived."""
    epoch_started = time.perf_counter()
    progress.start_epoch(len(train))
    state.epoch = progress.epoch
    state.model.train()
    faults = fault_hooks(stepper.ranks)
    every = config.checkpoint_every
    while progress.index < state.steps_per_epoch:
        first = progress.index
        last = min(first + config.accumulate, state.steps_per_epoch)
        for batch in range(first, last):
            rows = (
                progress.order[batch * config.batch_size : (batch + 1) * config.batch_size]
                if private is None
                else private.batch(state.global_step, progress.device)  # Poisson: each row in with rate q
            )
            progress.loss_sum += stepper.forward_backward(train, rows, last - first)
            state.global_step += 1
            state.last_loss = stepper.last_loss
            for callback in callbacks:
                callback.on_step_end(state)
            faults(state.global_step)
        stepper.optimizer_step()
        progress.index = last
        interrupted = stepper.ranks.any(stop.signum is not None)
        # due when this group crossed a multiple of checkpoint_every (global steps: same spots after resume)
        due = every and state.global_step // every > (state.global_step - (last - first)) // every
        if (interrupted or due) and progress.index < state.steps_per_epoch:
            written = save()
            if interrupted:
                raise TrainingInterrupted(stop.signum or 15, written)
    monitor = config.early_stopping.monitor if config.early_stopping is not None else "loss"
    _end_epoch(
        train, validation, loss_function, state, progress, stepper, callbacks, epoch_started, save,
        monitor="error" if monitor == "error" else "loss",  # auto not resolved (stage.resolve_monitor): loss
    )  # fmt: skip
    if stepper.ranks.any(stop.signum is not None):
        raise TrainingInterrupted(stop.signum or 15, progress.last_checkpoint)


def _end_epoch(
    train: TensorData,
    validation: TensorData | None,
    loss_function: LossFunction,
    state: TrainState,
    progress: Progress,
    stepper: Stepper,
    callbacks: list[Callback],
    epoch_started: float,
    save,
    *,
    monitor: str,
) -> None:
    stepper.assert_finite()
    train_loss = stepper.ranks.sum(progress.loss_sum) / len(train)
    val_loss, val_error = None, None
    if validation is not None:
        val_loss, val_error = evaluate(state.model, validation, loss_function, error=monitor == "error")
    result = EpochResult(
        progress.epoch, train_loss, val_loss, progress.seconds + time.perf_counter() - epoch_started, val_error
    )
    state.history.append(result)
    for callback in callbacks:
        callback.on_epoch_end(state, result)
    stepper.end_of_epoch(val_loss if val_loss is not None else train_loss)
    metric = result.monitored(monitor) if validation is not None else train_loss
    assert metric is not None
    best = metric < progress.best_metric or kept_on_tie(
        monitor, metric, progress.best_metric, result.val_loss, progress.kept_loss
    )
    if best:
        progress.kept_loss = math.inf if result.val_loss is None else result.val_loss
    progress.best_metric = min(progress.best_metric, metric)
    progress.next_epoch(finished=state.should_stop)
    progress.last_checkpoint = save(best=best)


@torch.inference_mode()
def evaluate_loss(
    model: nn.Module, data: TensorData, loss_function: LossFunction, *, batch_size: int = 1024
) -> float:
    """Mean loss over ``data`` in eval mode (dropout off), in large batches."""
    return evaluate(model, data, loss_function, batch_size=batch_size)[0]


@torch.inference_mode()
def evaluate(
    model: nn.Module, data: TensorData, loss_function: LossFunction, *, error: bool = False, batch_size: int = 1024
) -> tuple[float, float | None]:
    """Mean loss over ``data`` in eval mode (dropout off), in large batches, and with ``error`` the share
    of rows misclassified (one output: logit above 0 is the positive class; several: the largest)."""
    model.eval()
    total = torch.zeros((), device=data.target.device)
    wrong = torch.zeros((), device=data.target.device)
    step = batch_rows(data.inputs, batch_size)  # fewer rows when rows are large (images)
    for start in range(0, len(data), step):
        inputs = tuple(scale_pixels(tensor[start : start + step]) for tensor in data.inputs)
        target = data.target[start : start + step]
        outputs = model(*inputs).float()
        total += loss_function(outputs, target) * len(target)
        if error:
            predicted = outputs.argmax(1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0).to(target.dtype)
            wrong += (predicted != target.reshape(-1)).sum()
    return float(total) / len(data), (float(wrong) / len(data) if error else None)
