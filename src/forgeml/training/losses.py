"""Loss functions by name, checked against the task so a wrong pairing fails before training."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from forgeml.data import TaskInfo
from forgeml.errors import ConfigError

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DEFAULT_LOSS = {"classification": "cross_entropy", "binary": "bce", "regression": "mse"}
ALLOWED_LOSSES = {
    "classification": {"cross_entropy"},
    "binary": {"bce", "cross_entropy"},
    "regression": {"mse"},
}


def resolve_loss_name(name: str, task: TaskInfo) -> str:
    """``auto`` becomes the task's natural loss; an impossible pairing is a ConfigError."""
    resolved = DEFAULT_LOSS[task.kind] if name == "auto" else name
    if resolved == "cross_entropy" and task.kind == "binary":
        resolved = "bce"  # the binary head has one logit; BCE-with-logits is its cross-entropy
    if resolved not in ALLOWED_LOSSES[task.kind]:
        raise ConfigError(
            f"train.loss={name} does not fit a {task.kind} task. Use {DEFAULT_LOSS[task.kind]} (or auto).",
            key="train.loss",
        )
    return resolved


def make_loss(name: str, task: TaskInfo, *, class_weights: torch.Tensor | None = None) -> LossFunction:
    """A callable ``loss(outputs (N, D), target)`` averaging over the batch."""
    resolved = resolve_loss_name(name, task)
    if resolved == "cross_entropy":
        return nn.CrossEntropyLoss(weight=class_weights)
    criterion: nn.Module = nn.BCEWithLogitsLoss() if resolved == "bce" else nn.MSELoss()

    def single_output(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return criterion(outputs.squeeze(1), target)  # (N, 1) -> (N,)

    return single_output
