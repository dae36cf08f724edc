"""``forgeml plan``: what a config will cost before it trains, measured on this machine.

Parameters and memory come from the built model; FLOPs per sample from
``torch.utils.flop_counter.FlopCounterMode`` on one forward (training costs about 3x: forward,
backward for activations, backward for weights); the epoch time from a few real training steps.

Boosted trees (``model.type: gbm``) have no parameters or FLOPs to count: their plan trains the
model once on the real training split (seconds for tables of this size) and reports the trees, the
leaves, the best round and the measured fit time.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from forgeml.config import AUTO, GBM, Config
from forgeml.data import load_data
from forgeml.errors import ConfigError
from forgeml.features import fit_features
from forgeml.features.image import scale_pixels
from forgeml.models import build_model
from forgeml.training.loop import seed_everything, set_threads
from forgeml.training.losses import make_loss
from forgeml.training.optim import make_optimizer
from forgeml.training.recipe import network_training
from forgeml.training.stage import tensor_data

OPTIMIZER_STATES = {
    "sgd": 1,
    "adam": 2,
    "adamw": 2,
}  # tensors kept per parameter (momentum; exp_avg, exp_avg_sq)


@dataclass(frozen=True)
class ResourcePlan:
    parameters: int
    flops_per_sample: int  # forward only
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    rows: int
    steps_per_epoch: int
    seconds_per_step: float
    privacy: tuple[tuple[str, str], ...] = ()  # train.privacy: the noise and the epsilon it buys

    @property
    def epoch_seconds(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch


@dataclass(frozen=True)
class TreePlan:
    """A gbm config measured by training it once: the trees it grows and how long that took."""

    rows: int
    columns: int
    categorical_columns: int
    trees: int
    leaves: int
    best_round: int | None
    max_rounds: int
    fit_seconds: float
    model_bytes: int


def plan_config(config: Config, *, timed_batches: int = 5) -> ResourcePlan | TreePlan:
    """Build the config's model on its real data and measure it (a few steps on a copy; nothing is saved)."""
    if config.model.type == GBM:
        return _plan_trees(config)
    if config.model.type == AUTO:
        _refuse_auto(config)
    set_threads(config.train.threads)
    splits = load_data(config.data, seed=config.seed)
    pipeline = fit_features(splits.train, config.features, splits.task, backbone=config.image_backbone)
    config = config.model_copy(
        update={"train": network_training(config.model, config.train, pipeline.input_spec)}
    )  # the batch a table mlp trains with depends on its rows
    data = tensor_data(pipeline, splits.train)
    seed_everything(config.seed)
    model = build_model(config.model, pipeline.input_spec, pipeline.target_.output_dim)
    parameters = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()
        model(*(scale_pixels(tensor[:1]) for tensor in data.inputs))
    batch = config.train.batch_size
    return ResourcePlan(
        parameters=parameters,
        flops_per_sample=int(counter.get_total_flops()),
        weight_bytes=weight_bytes,
        gradient_bytes=weight_bytes,
        optimizer_bytes=weight_bytes * OPTIMIZER_STATES[config.train.optimizer],
        rows=len(data),
        steps_per_epoch=max(1, -(-len(data) // batch)),
        seconds_per_step=_time_steps(copy.deepcopy(model), data, config, pipeline.task, timed_batches),
        privacy=_privacy_rows(config, model, len(data)),
    )


def _privacy_rows(config: Config, model: torch.nn.Module, rows: int) -> tuple[tuple[str, str], ...]:
    """The epsilon estimate of a private config (its layers checked first); nothing without train.privacy."""
    if config.train.privacy is None:
        return ()
    from forgeml.training.privacy import check_layers, plan_rows

    check_layers(model)
    return tuple(plan_rows(config.train, rows))


def _refuse_auto(config: Config) -> None:
    """auto is several models: say what each candidate is estimated to take, and how to plan one."""
    from forgeml.training.auto import estimate_seconds

    splits = load_data(config.data, seed=config.seed)
    pipeline = fit_features(splits.train, config.features, splits.task)
    columns = len(pipeline.numeric_.columns) + len(pipeline.categorical_.columns)
    guesses = ", ".join(
        f"{name} ~{estimate_seconds(name, len(splits.train), columns):.0f}s"
        for name in config.model.candidates  # type: ignore[union-attr]
    )
    raise ConfigError(
        f"forgeml plan measures one model; model.type auto trains several within train.time_budget="
        f"{config.train.time_budget:g}s (at least: {guesses}, on {len(splits.train)} rows x {columns} columns). "
        "Plan a candidate on its own with --set model.type=gbm or --set model.type=mlp.",
        key="model.type",
    )


def _plan_trees(config: Config) -> TreePlan:
    import io

    from rich.console import Console

    from forgeml.training.stage import train_model

    splits = load_data(config.data, seed=config.seed)
    pipeline = fit_features(splits.train, config.features, splits.task)
    result = train_model(
        pipeline, splits.train, splits.validation, config.model, config.train,
        seed=config.seed, console=Console(file=io.StringIO()),
    )  # fmt: skip
    model = result.model
    return TreePlan(
        rows=len(splits.train),
        columns=len(pipeline.input_columns),
        categorical_columns=len(pipeline.categorical_.columns),
        trees=model.trees,
        leaves=model.leaves,
        best_round=result.best_epoch,
        max_rounds=config.model.max_rounds,
        fit_seconds=result.seconds,
        model_bytes=len(model.to_text().encode()),
    )


def _time_steps(model, data, config: Config, task, batches: int) -> float:
    """Median seconds of one training step over ``batches`` real batches, after one warm-up step."""
    model.train()
    optimizer = make_optimizer(model, config.train)
    loss_function = make_loss(config.train.loss, task)
    times = []
    for index in range(batches + 1):
        rows = torch.arange(index * config.train.batch_size, (index + 1) * config.train.batch_size) % len(
            data
        )
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_function(
            model(*(scale_pixels(t.index_select(0, rows)) for t in data.inputs)),
            data.target.index_select(0, rows),
        ).backward()
        optimizer.step()
        if index:
            times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def render_plan(plan: ResourcePlan | TreePlan) -> str:
    if isinstance(plan, TreePlan):
        return _table(_tree_rows(plan))
    total = plan.weight_bytes + plan.gradient_bytes + plan.optimizer_bytes
    rows = [
        ("parameters", f"{plan.parameters:,}"),
        ("FLOPs per sample (forward)", f"{plan.flops_per_sample:,}"),
        ("FLOPs per sample (training, ~3x)", f"{3 * plan.flops_per_sample:,}"),
        ("memory: weights", _size(plan.weight_bytes)),
        ("memory: gradients", _size(plan.gradient_bytes)),
        ("memory: optimizer state", _size(plan.optimizer_bytes)),
        ("memory: total (before activations)", _size(total)),
        ("training rows / steps per epoch", f"{plan.rows:,} / {plan.steps_per_epoch:,}"),
        ("time per step (measured)", f"{plan.seconds_per_step * 1000:.2f} ms"),
        ("time per epoch (estimate)", f"{plan.epoch_seconds:.2f} s"),
        *plan.privacy,
    ]
    return _table(rows)


def _tree_rows(plan: TreePlan) -> list[tuple[str, str]]:
    best = (
        "no early stop" if plan.best_round is None else f"{plan.best_round:,} of at most {plan.max_rounds:,}"
    )
    return [
        (
            "training rows / columns (categorical)",
            f"{plan.rows:,} / {plan.columns} ({plan.categorical_columns})",
        ),
        ("trees", f"{plan.trees:,}"),
        ("leaves (all trees)", f"{plan.leaves:,}"),
        ("best round", best),
        ("fit time (measured)", f"{plan.fit_seconds:.2f} s"),
        ("model.txt", _size(plan.model_bytes)),
    ]


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"
