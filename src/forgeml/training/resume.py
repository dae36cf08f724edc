"""The loop's position and the capture/restore of everything a checkpoint holds.

``Progress`` is where the loop is: the epoch, the epoch's permutation and how many batches of it
are done, the partial epoch loss and the data generator. ``capture`` turns the live objects into a
checkpoint payload; ``restore`` puts one back, so the next batch is the one that would have come.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import torch

from forgeml.errors import ConfigError
from forgeml.training.callbacks import Callback, EpochResult, TrainState
from forgeml.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointStore,
    Fingerprints,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from forgeml.training.distributed import Ranks

logger = logging.getLogger(__name__)
ResumeMode = Literal["never", "auto", "require"] | Path


@dataclass
class Progress:
    """Where the loop is. ``order`` is the running epoch's global permutation (None between epochs)."""

    generator: torch.Generator
    device: torch.device
    epoch: int = 1
    index: int = 0
    order: torch.Tensor | None = None
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    seconds: float = 0.0  # time already spent on this epoch before a resume
    best_metric: float = math.inf
    kept_loss: float = math.inf  # the validation loss of the epoch kept as best (error ties go to the lower)
    finished: bool = False
    last_checkpoint: str | None = None

    def start_epoch(self, rows: int) -> None:
        if self.order is None:
            self.order = torch.randperm(rows, generator=self.generator).to(self.device)
            self.index, self.seconds = 0, 0.0
            self.loss_sum = torch.zeros((), device=self.device)

    def next_epoch(self, *, finished: bool) -> None:
        self.epoch += 1
        self.order, self.index, self.seconds = None, 0, 0.0
        self.loss_sum = torch.zeros((), device=self.device)
        self.finished = finished


def start_or_resume(
    store: CheckpointStore | None,
    mode: ResumeMode,
    force: bool,
    fingerprints: Fingerprints,
    ranks: Ranks,
) -> dict[str, Any] | None:
    """The checkpoint payload to continue from, or None for a fresh start (old checkpoints cleared)."""
    if isinstance(mode, Path):
        if not mode.is_file():
            raise ConfigError(
                f"--resume {mode}: no such checkpoint file. Check the path; nothing was trained."
            )
        found: tuple[dict[str, Any], Path] | None = (load_checkpoint(mode), mode)
    elif mode == "never" or store is None:
        if store is not None and ranks.is_main:
            store.clear()
        ranks.barrier()  # no rank may look for checkpoints while rank 0 is clearing them
        return None
    else:
        if ranks.is_main:
            store.clean_temporary()
        ranks.barrier()
        found = store.load_latest()
    if found is None:
        if mode == "require":
            raise ConfigError(
                f"--resume: no complete checkpoint in {store.directory if store else 'the run folder'}. "
                "Train without --resume to start fresh."
            )
        return None
    payload, path = found
    fingerprints.check(payload, force=force, source=path)
    if payload["world_size"] != ranks.world_size:
        logger.warning(
            "%s was written by %d processes, resuming with %d: the mid-epoch data split changes",
            path,
            payload["world_size"],
            ranks.world_size,
        )
    logger.info("resuming from %s (step %d)", path, payload["global_step"])
    return payload


def capture(
    state: TrainState,
    progress: Progress,
    fingerprints: Fingerprints,
    ranks: Ranks,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    callbacks: list[Callback],
) -> dict[str, Any]:
    """Everything needed to continue exactly from here, as weights-only-loadable values."""
    return {
        "format": FORMAT_VERSION,
        "forgeml_version": version("forgeml"),  # the installed distribution's, as bundles record it
        "torch_version": str(torch.__version__),
        "model": state.model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": progress.epoch,
        "global_step": state.global_step,
        "step_in_epoch": progress.index,
        "order": progress.order.cpu() if progress.order is not None else None,
        "epoch_loss_sum": progress.loss_sum.cpu(),
        "epoch_seconds": progress.seconds,
        "best_metric": progress.best_metric,
        "kept_loss": progress.kept_loss,
        "best_epoch": state.best_epoch,
        "finished": progress.finished,
        "history": [[r.epoch, r.train_loss, r.val_loss, r.seconds] for r in state.history],
        "callbacks": {
            key: c.state_dict() for key, c in zip(_keys(callbacks), callbacks, strict=True) if c.state_dict()
        },
        "rng": rng_state(),
        "data_generator": progress.generator.get_state(),
        "world_size": ranks.world_size,
        "config": fingerprints.config,
        "data_fingerprint": fingerprints.data,
    }


def restore(
    payload: dict[str, Any],
    state: TrainState,
    progress: Progress,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    callbacks: list[Callback],
) -> None:
    """Put a captured payload back into the live objects (the inverse of :func:`capture`)."""
    try:
        state.model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ConfigError(
            f"the checkpoint's weights do not fit the model of this config ({str(exc).splitlines()[-1].strip()}). "
            "Undo the model change or start a fresh run."
        ) from None
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload["scheduler"] is not None:
        scheduler.load_state_dict(payload["scheduler"])
    if scaler is not None and payload["scaler"] is not None:
        scaler.load_state_dict(payload["scaler"])
    for key, callback in zip(_keys(callbacks), callbacks, strict=True):
        saved = payload["callbacks"].get(key)
        if saved is not None:
            callback.load_state_dict(saved)
    state.history[:] = [EpochResult(int(e), float(t), v, float(s)) for e, t, v, s in payload["history"]]
    state.best_epoch = payload["best_epoch"]
    state.global_step = state.resumed_step = int(payload["global_step"])
    state.should_stop = bool(payload["finished"])
    progress.epoch = int(payload["epoch"])
    progress.index = int(payload["step_in_epoch"])
    order = payload["order"]
    progress.order = order.to(progress.device) if order is not None else None
    progress.loss_sum = payload["epoch_loss_sum"].to(progress.device)
    progress.seconds = float(payload["epoch_seconds"])
    progress.best_metric = float(payload["best_metric"])
    progress.kept_loss = float(payload.get("kept_loss", math.inf))  # checkpoints before the tie rule: none
    progress.finished = bool(payload["finished"])
    progress.generator.set_state(payload["data_generator"])
    set_rng_state(payload["rng"])


def _keys(callbacks: list[Callback]) -> list[str]:
    """``EarlyStopping:0``, ...: by type and occurrence, so ranks with fewer callbacks still match."""
    seen: dict[str, int] = {}
    keys = []
    for callback in callbacks:
        name = type(callback).__name__
        keys.append(f"{name}:{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys
