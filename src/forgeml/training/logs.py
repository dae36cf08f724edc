"""Logging callbacks: a per-step CSV log and TensorBoard event files (rank 0 only).

Both keep each step's loss as a device tensor and read the buffer back in one go at epoch ends
and before checkpoints, so logging adds no host sync per step. After a resume, entries past the
checkpoint's step are dropped (CSV rows rewritten, TensorBoard's ``purge_step``), so the log reads
as if the run had never stopped.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import ModuleType

import torch

from forgeml.extras import require
from forgeml.training.callbacks import Callback, EpochResult, TrainState

logger = logging.getLogger(__name__)
CSV_HEADER = "step,epoch,loss,learning_rate\n"


class _StepBuffer(Callback):
    """Collects (step, epoch, loss tensor, lr) per step; ``drain`` reads them back with one sync."""

    def __init__(self) -> None:
        self._steps: list[tuple[int, int, float]] = []
        self._losses: list[torch.Tensor] = []

    def on_step_end(self, state: TrainState) -> None:
        if state.last_loss is not None:
            self._steps.append((state.global_step, state.epoch, state.learning_rate))
            self._losses.append(state.last_loss)

    def drain(self) -> list[tuple[int, int, float, float]]:
        if not self._losses:
            return []
        losses = torch.stack(self._losses).float().cpu().tolist()
        rows = [(step, epoch, loss, lr) for (step, epoch, lr), loss in zip(self._steps, losses, strict=True)]
        self._steps, self._losses = [], []
        return rows


class CSVLogger(_StepBuffer):
    """``train_log.csv``: one row per step with its loss and learning rate (full float precision)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_train_begin(self, state: TrainState) -> None:
        kept = [CSV_HEADER]
        if state.resumed_step is not None and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]
            kept += [line for line in lines if line.strip() and int(line.split(",")[0]) <= state.resumed_step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(kept), encoding="utf-8")

    def _flush(self) -> None:
        rows = self.drain()
        if rows:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(f"{s},{e},{loss!r},{lr!r}\n" for s, e, loss, lr in rows)

    def on_checkpoint(self, state: TrainState) -> None:
        self._flush()

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        self._flush()

    def on_train_end(self, state: TrainState) -> None:
        self._flush()


class TensorBoardLogger(_StepBuffer):
    """Event files in ``log_dir``: ``train/loss`` and ``train/learning_rate`` per step, ``epoch/*``
    per epoch, the model graph, and the hyper-parameters with the final losses."""

    def __init__(self, log_dir: Path, *, hyperparameters: dict[str, str] | None = None) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.hyperparameters = hyperparameters or {}
        _tensorboard()  # checked on construction, before any training, not when the first epoch starts
        self._writer = None

    def on_train_begin(self, state: TrainState) -> None:
        purge = state.resumed_step + 1 if state.resumed_step is not None else None
        self._writer = _tensorboard().SummaryWriter(str(self.log_dir), purge_step=purge)
        if state.resumed_step is None and state.sample_inputs:
            try:
                self._writer.add_graph(state.model, state.sample_inputs)
            except Exception as exc:  # tracing is best-effort; a model it cannot trace still trains
                logger.warning("TensorBoard: could not trace the model graph (%s)", exc)

    def _flush(self) -> None:
        for step, _epoch, loss, lr in self.drain():
            self._writer.add_scalar("train/loss", loss, step)
            self._writer.add_scalar("train/learning_rate", lr, step)

    def on_checkpoint(self, state: TrainState) -> None:
        self._flush()
        self._writer.flush()

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        self._flush()
        self._writer.add_scalar("epoch/train_loss", result.train_loss, result.epoch)
        if result.val_loss is not None:
            self._writer.add_scalar("epoch/val_loss", result.val_loss, result.epoch)
        self._writer.add_scalar("epoch/learning_rate", state.learning_rate, result.epoch)
        self._writer.add_scalar("epoch/seconds", result.seconds, result.epoch)

    def on_train_end(self, state: TrainState) -> None:
        hparams = _tensorboard().summary.hparams
        self._flush()
        last = state.history[-1] if state.history else None
        metrics = {"hparam/train_loss": last.train_loss if last else math.nan}
        if last is not None and last.val_loss is not None:
            metrics["hparam/val_loss"] = last.val_loss
        values = {key: value[:200] for key, value in self.hyperparameters.items()}
        for summary in hparams(values, metrics):
            self._writer.file_writer.add_summary(summary)
        for name, value in metrics.items():
            self._writer.add_scalar(name, value, state.global_step)
        self._writer.close()


def _tensorboard() -> ModuleType:
    """``torch.utils.tensorboard``; the tensorboard package behind it comes with forgeml[track]."""
    return require("torch.utils.tensorboard", "track", "train.tensorboard", key="train.tensorboard")
