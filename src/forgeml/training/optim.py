"""Optimizers and learning-rate schedules, built from the config with torch.optim's own classes."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import lr_scheduler

from forgeml.config import ScheduleConfig, TrainConfig

Scheduler = lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer; ``fused_optimizer`` uses torch's one-kernel step (CPU and CUDA).

    The fused step reads and writes each parameter, gradient and moment once per step instead of
    once per elementwise op of the foreach path; it needs floating-point parameters on one device.
    """
    parameters = list(model.parameters())
    fused = config.fused_optimizer and _fusable(parameters)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            fused=fused or None,
        )
    optimizer_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return optimizer_class(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused or None
    )


def _fusable(parameters: list[torch.Tensor]) -> bool:
    devices = {parameter.device.type for parameter in parameters}
    return (
        len(devices) == 1
        and devices <= {"cpu", "cuda"}
        and all(parameter.dtype.is_floating_point for parameter in parameters)
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, *, steps_per_epoch: int
) -> Scheduler | None:
    """The configured schedule, or None. All but ``plateau`` are stepped once per optimizer step.

    ``steps_per_epoch`` counts optimizer steps (batches / accumulate, rounded up).
    """
    schedule = config.schedule
    if schedule is None:
        return None
    total = max(1, config.epochs * steps_per_epoch)
    if schedule.type == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, factor=schedule.gamma, patience=schedule.patience)
    if schedule.type == "one_cycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total)
    main = _main_schedule(optimizer, schedule, total - schedule.warmup_steps, steps_per_epoch)
    if not schedule.warmup_steps:
        return main
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=schedule.warmup_steps)
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[schedule.warmup_steps])


def _main_schedule(
    optimizer: torch.optim.Optimizer, schedule: ScheduleConfig, steps: int, steps_per_epoch: int
) -> lr_scheduler.LRScheduler:
    if schedule.type == "step":
        return lr_scheduler.StepLR(
            optimizer, step_size=schedule.step_epochs * steps_per_epoch, gamma=schedule.gamma
        )
    if schedule.type == "cosine":
        return lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, steps), eta_min=schedule.min_learning_rate
        )
    return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
