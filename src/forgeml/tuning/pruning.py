"""Pruning: a training callback that reports each epoch's validation loss to the Optuna trial.

When the pruner says the trial trails the others at the same epoch, the callback ends training
after that epoch the way early stopping does (``should_stop`` with a reason). The trial's run
folder is then complete (config, bundle, history), so every verb works on a pruned trial too;
the study records it as pruned and never picks it as best.

The loop's per-epoch validation figure is the loss. Optuna's pruners compare intermediate values
in the study's direction, so when the tuned metric is one to maximise (accuracy, R²) the callback
reports the negated loss: lower loss still ranks better, and the pruner needs no second direction.
"""

from __future__ import annotations

from typing import Any

from forgeml.training.callbacks import Callback, EpochResult, TrainState


class PruningCallback(Callback):
    """Report ``sign * val_loss`` at each epoch; stop training once the trial should be pruned."""

    def __init__(self, trial: Any, *, maximize: bool) -> None:
        self.trial = trial
        self.sign = -1.0 if maximize else 1.0
        self.pruned_at: int | None = None

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        if result.val_loss is None:
            return
        self.trial.report(self.sign * result.val_loss, result.epoch)
        if self.trial.should_prune():
            self.pruned_at = result.epoch
            state.stop_reason = (
                f"pruned at epoch {result.epoch} of {state.epochs}: its validation loss {result.val_loss:.4g} "
                f"trails the other trials at this epoch (tune.pruner)"
            )
            state.should_stop = True
