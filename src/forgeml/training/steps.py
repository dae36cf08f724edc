"""One training step: forward under autocast, backward (accumulated), clipped optimizer step, schedule.

Kept apart from the loop's bookkeeping so the arithmetic of a step reads in one place.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import lr_scheduler

from forgeml.config import TrainConfig
from forgeml.features.image import scale_pixels
from forgeml.training.distributed import Ranks, is_restart
from forgeml.training.losses import LossFunction
from forgeml.training.optim import Scheduler
from forgeml.training.runtime import NonFiniteLoss, autocast

logger = logging.getLogger(__name__)
# Fault injection for the crash tests (real signals at an exact step; see tests/training).
KILL_AT_STEP_ENV = "FORGEML_FAULT_KILL_AT_STEP"  # SIGKILL this process after that global step
SIGNAL_AT_STEP_ENV = "FORGEML_FAULT_SIGTERM_AT_STEP"  # SIGTERM this process after that global step
FAULT_RANK_ENV = "FORGEML_FAULT_RANK"  # only this rank, and only before torchrun's first restart


class Stepper:
    """Runs the steps of one model; tracks non-finite losses (``train.on_nan``)."""

    def __init__(
        self,
        model: nn.Module,
        loss_function: LossFunction,
        optimizer: torch.optim.Optimizer,
        scheduler: Scheduler | None,
        scaler: torch.amp.GradScaler | None,
        config: TrainConfig,
        ranks: Ranks,
        device: torch.device,
    ) -> None:
        self.model, self.loss_function, self.optimizer = model, loss_function, optimizer
        self.scheduler, self.scaler, self.config, self.ranks, self.device = (
            scheduler,
            scaler,
            config,
            ranks,
            device,
        )
        forward: nn.Module = model
        if ranks.distributed:
            forward = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        self.forward = torch.compile(forward) if config.compile else forward
        self.last_loss = torch.zeros((), device=device)
        self.skipped = 0
        # On a CPU reading the loss costs nothing; on an accelerator it is a sync, so it is checked
        # every step only when it must be (on_nan: skip), otherwise at checkpoints and epoch ends.
        self._check_each_step = config.on_nan == "skip" or device.type == "cpu"
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        self.optimizer_step_pending = False  # gradients of an unfinished accumulation group exist

    def forward_backward(self, data, rows: torch.Tensor, group: int) -> torch.Tensor:
        """Forward and backward one global batch ``rows`` (this rank's shard); returns loss * rows."""
        if not self.optimizer_step_pending:
            self.optimizer.zero_grad(set_to_none=True)
            self.optimizer_step_pending = True
        local = self.ranks.shard(rows) if self.ranks.distributed else rows
        # uint8 image rows become float here, one batch at a time (the split itself stays uint8)
        inputs = tuple(scale_pixels(tensor.index_select(0, local)) for tensor in data.inputs)
        target = data.target.index_select(0, local)
        with autocast(self.config.precision, self.device):
            loss = self.loss_function(self.forward(*inputs).float(), target)
        self.last_loss = loss.detach()
        if not self._finite(loss):
            return torch.zeros((), device=self.device)
        scaled = loss
        if self.ranks.distributed:  # DDP averages over ranks; weight each by its share of the batch
            scaled = scaled * (len(local) * self.ranks.world_size / len(rows))
        if group > 1:
            scaled = scaled / group
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        return loss.detach() * len(local)

    def _finite(self, loss: torch.Tensor) -> bool:
        if not self._check_each_step:
            self._nonfinite |= ~torch.isfinite(loss.detach())
            return True
        finite = not self.ranks.any(not bool(torch.isfinite(loss)))
        if finite:
            return True
        if self.config.on_nan == "stop":
            raise NonFiniteLoss(
                f"the training loss became {float(loss.detach())} at this step; stopped (train.on_nan=stop) before "
                "the weights changed, and the last checkpoint is intact. Lower train.learning_rate, set "
                "train.grad_clip, or set train.on_nan=skip to skip such steps."
            )
        self.skipped += 1
        logger.warning("non-finite loss %s: step skipped (%d so far)", float(loss.detach()), self.skipped)
        return False

    def assert_finite(self) -> None:
        """Raise NonFiniteLoss when an unchecked step had a non-finite loss (accelerators, on_nan: stop)."""
        if self.ranks.any(bool(self._nonfinite)):
            raise NonFiniteLoss(
                "the training loss became NaN or infinite; stopped (train.on_nan=stop) without writing "
                "the broken weights, so the last checkpoint is intact. Lower train.learning_rate or set "
                "train.grad_clip."
            )

    def optimizer_step(self) -> None:
        """Clip, step (through the grad scaler under fp16), and advance a per-step schedule."""
        self.optimizer_step_pending = False
        if self.scaler is not None:
            if self.config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
        if self.scheduler is not None and not isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step()

    def end_of_epoch(self, metric: float) -> None:
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(metric)


def fault_hooks(ranks: Ranks) -> Callable[[int], None]:
    """Test hooks from the environment: deliver a real SIGKILL/SIGTERM to this process at a step."""
    kill_at = os.environ.get(KILL_AT_STEP_ENV)
    signal_at = os.environ.get(SIGNAL_AT_STEP_ENV)
    rank = os.environ.get(FAULT_RANK_ENV)
    active = (kill_at or signal_at) and (rank is None or (int(rank) == ranks.rank and not is_restart()))
    if not active:
        return lambda step: None

    def hook(step: int) -> None:
        if kill_at is not None and step == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        if signal_at is not None and step == int(signal_at):
            os.kill(os.getpid(), signal.SIGTERM)

    return hook
