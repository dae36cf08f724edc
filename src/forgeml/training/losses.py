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


def make_loss(
    name: str,
    task: TaskInfo,
    *,
    class_weights: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> LossFunction:
    """A callable ``loss(outputs (N, D), target)`` averaging over the batch.

    ``class_weights`` are per class for cross-entropy; for BCE (one logit) the two-entry weights
    ``[w_negative, w_positive]`` become ``pos_weight = w_positive / w_negative``. Label smoothing
    moves targets towards uniform (BCE: towards 0.5).
    """
    return each_submodel(_loss(name, task, class_weights, label_smoothing))


def each_submodel(loss: LossFunction) -> LossFunction:
    """``loss`` that also takes the outputs of a network's submodels, ``(N, K, D)`` (an MLP with
    ``submodels``, in training): the mean of each submodel's loss on every row, so that each learns
    on its own (TabM trains so; a loss on their mean output would let them lean on each other)."""

    def per_submodel(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if outputs.dim() == 3:
            return loss(outputs.flatten(0, 1), target.repeat_interleave(outputs.shape[1], dim=0))
        return loss(outputs, target)

    return per_submodel


def _loss(
    name: str, task: TaskInfo, class_weights: torch.Tensor | None, label_smoothing: float
) -> LossFunction:
    resolved = resolve_loss_name(name, task)
    if resolved == "cross_entropy":
        return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)
    if resolved == "bce":
        pos_weight = None if class_weights is None else class_weights[1:2] / class_weights[0]
        criterion: nn.Module = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    else:
        if label_smoothing or class_weights is not None:
            raise ConfigError(
                "train.label_smoothing and train.class_weights apply to classification only; remove them.",
                key="train.label_smoothing" if label_smoothing else "train.class_weights",
            )
        criterion = nn.MSELoss()

    def single_output(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if label_smoothing:
            target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return criterion(outputs.squeeze(1), target)  # (N, 1) -> (N,)

    return single_output


def class_weights_for(
    setting: str | list[float] | None, target: torch.Tensor, classes: int
) -> torch.Tensor | None:
    """``auto``: inverse class frequency in the training targets, ``n / (classes * count)``; a list as given."""
    if setting is None:
        return None
    if setting == "auto":
        counts = torch.bincount(target.long().flatten(), minlength=classes).clamp(min=1).float()
        return len(target) / (classes * counts)
    if len(setting) != classes:
        raise ConfigError(
            f"train.class_weights has {len(setting)} entries but the task has {classes} classes. "
            "Give one weight per class (in label order) or use auto.",
            key="train.class_weights",
        )
    return torch.tensor(setting, dtype=torch.float32)
