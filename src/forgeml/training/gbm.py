"""Training for ``model.type: gbm``: LightGBM grows the trees on the fitted pipeline's tree inputs.

:func:`~forgeml.training.stage.train_model` hands gbm configs here (the one place training asks
which kind of model it has). The result is a :class:`TrainResult` like a network's: the history
holds the training and validation loss per boosting round (log loss, or mean squared error on the
standardized target, as the networks report), so ``history.csv`` and the model card's curve work.

Runs are seeded and repeat exactly: ``deterministic=True`` and ``force_row_wise=True`` (LightGBM
otherwise measures row- against column-wise histograms at the start of every run and may pick
differently on a busy machine).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
from rich.console import Console

from forgeml.config import GBMConfig, TrainConfig
from forgeml.data import RawData
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline
from forgeml.models.gbm import GradientBoostedTrees, tree_matrix
from forgeml.training.callbacks import Callback, EpochResult, TrainState
from forgeml.training.loop import Session, TrainResult
from forgeml.training.losses import class_weights_for
from forgeml.training.stage import tensor_data

logger = logging.getLogger(__name__)
# LightGBM's objective and the metric reported per round, by task kind
OBJECTIVES = {"binary": "binary", "classification": "multiclass", "regression": "regression"}
METRICS = {"binary": "binary_logloss", "classification": "multi_logloss", "regression": "l2"}


class Deadline(Callback):
    """Stop training at ``deadline`` (a ``time.perf_counter()`` value), keeping the best epoch or round so far.

    ``model.type: auto`` bounds its candidates with it: a network stops after the epoch that reaches
    the deadline (early stopping restores its best weights); a booster, the only callback train_gbm
    takes, stops after the round that reaches it and keeps its best round by validation loss."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        if time.perf_counter() >= self.deadline:
            state.should_stop = True


def train_gbm(
    pipeline: FeaturePipeline,
    train: RawData,
    validation: RawData,
    model_config: GBMConfig,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    session: Session | None = None,
) -> TrainResult:
    """Grow the trees on ``train``, stopping early on ``validation``; the booster keeps the best round."""
    import lightgbm

    _refuse_unsupported(pipeline, callbacks, session)
    started = time.perf_counter()
    task = pipeline.task.kind
    x_train, y_train = _rows(pipeline, train)
    model = GradientBoostedTrees(
        None,
        numeric=len(pipeline.numeric_.columns),
        categorical=len(pipeline.categorical_.columns),
        output_dim=pipeline.target_.output_dim,
    )
    params = lightgbm_params(model_config, config, task, classes=len(pipeline.task.labels), seed=seed)
    dataset = lightgbm.Dataset(
        x_train,
        y_train,
        weight=_sample_weights(config, y_train, task, len(pipeline.task.labels)),
        categorical_feature=model.categorical_indices,
        free_raw_data=False,
    )
    sets, names = [dataset], ["train"]
    if len(validation):
        x_valid, y_valid = _rows(pipeline, validation)
        sets.append(lightgbm.Dataset(x_valid, y_valid, reference=dataset))
        names.append("validation")
    evaluations: dict[str, Any] = {}
    stamps: list[float] = []
    hooks = [lightgbm.record_evaluation(evaluations), lambda _: stamps.append(time.perf_counter())]
    stopping = config.early_stopping
    if stopping is not None and len(validation):
        hooks.append(lightgbm.early_stopping(stopping.patience, min_delta=stopping.min_delta, verbose=False))
    for deadline in callbacks or []:
        hooks.append(_stop_at(deadline.deadline, evaluations, METRICS[task]))
    booster = lightgbm.train(
        params,
        dataset,
        num_boost_round=model_config.max_rounds,
        valid_sets=sets,
        valid_names=names,
        callbacks=hooks,
    )
    best = booster.best_iteration or None
    # Trees after the best round are dropped: the model kept is the one the bundle will hold.
    model.booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=best))
    history = _history(evaluations, METRICS[task], stamps, started)
    seconds = time.perf_counter() - started
    _report(console, model, best, history, seconds)
    return TrainResult(model=model, history=history, best_epoch=best, seconds=seconds)


def _stop_at(deadline: float, evaluations: dict[str, Any], metric: str) -> Any:
    """A LightGBM callback that ends boosting at ``deadline`` with the best round so far kept."""
    import lightgbm

    def hook(env: Any) -> None:
        if time.perf_counter() >= deadline:
            losses = evaluations.get("validation", {}).get(metric) or []
            best = int(np.argmin(losses)) if losses else env.iteration
            raise lightgbm.callback.EarlyStopException(best, env.evaluation_result_list)

    hook.order = 40  # type: ignore[attr-defined]  # after record_evaluation (20) and early_stopping (30)
    return hook


def lightgbm_params(
    model_config: GBMConfig, config: TrainConfig, task: str, *, classes: int, seed: int
) -> dict[str, Any]:
    """LightGBM's parameters for a gbm config: the model's tree settings plus the shared train settings."""
    settings = model_config.model_dump(exclude={"type", "max_rounds", "max_depth"})
    return settings | {
        "objective": OBJECTIVES[task],
        "metric": METRICS[task],
        **({"num_class": classes} if task == "classification" else {}),
        "max_depth": model_config.max_depth or -1,
        "learning_rate": config.learning_rate,
        "num_threads": config.threads or _cores(),
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def _rows(pipeline: FeaturePipeline, raw: RawData) -> tuple[np.ndarray, np.ndarray]:
    """The tree matrix (the fitted pipeline's transform, as every engine runs it) and the encoded target."""
    data = tensor_data(pipeline, raw)
    return tree_matrix(*(tensor.numpy() for tensor in data.inputs)), data.target.numpy()


def _sample_weights(config: TrainConfig, target: np.ndarray, task: str, classes: int) -> np.ndarray | None:
    """``train.class_weights`` as a weight per row (the networks weight their loss the same way)."""
    if task == "regression" or config.class_weights is None:
        return None
    import torch

    weights = class_weights_for(config.class_weights, torch.from_numpy(target), max(2, classes))
    return None if weights is None else weights.numpy()[target.astype(np.int64)]


def _history(
    evaluations: dict[str, Any], metric: str, stamps: list[float], started: float
) -> tuple[EpochResult, ...]:
    train_losses = evaluations.get("train", {}).get(metric, [])
    valid_losses = evaluations.get("validation", {}).get(metric, [])
    ends = np.asarray(stamps)
    durations = np.diff(ends, prepend=started) if len(ends) else ends
    return tuple(
        EpochResult(
            epoch=index + 1,
            train_loss=float(loss),
            val_loss=float(valid_losses[index]) if index < len(valid_losses) else None,
            seconds=float(durations[index]) if index < len(durations) else 0.0,
        )
        for index, loss in enumerate(train_losses)
    )


def _refuse_unsupported(
    pipeline: FeaturePipeline, callbacks: list[Callback] | None, session: Session | None
) -> None:
    if pipeline.image_ is not None or pipeline.text_.columns:
        raise ConfigError(
            "model.type gbm reads table columns (numbers and categories); this data has "
            f"{'images' if pipeline.image_ is not None else 'text columns'}. Use model.type "
            f"{'cnn or mlp' if pipeline.image_ is not None else 'bag_of_embeddings, text_cnn or transformer'}.",
            key="model.type",
        )
    if not pipeline.input_columns:
        raise ConfigError(
            "model.type gbm found no input columns: every column is the target or excluded.",
            key="features.exclude",
        )
    if any(not isinstance(callback, Deadline) for callback in callbacks or []):
        raise ConfigError(
            "training callbacks hook the epochs of a network; model.type gbm trains by boosting rounds "
            "and calls none. Train without callbacks, or use a network.",
            key="model.type",
        )
    if session is not None and session.resume != "never":
        raise ConfigError(
            "model.type gbm keeps no checkpoints to resume from (it retrains in seconds). Train without --resume.",
            key="model.type",
        )


def _report(
    console: Console | None,
    model: GradientBoostedTrees,
    best: int | None,
    history: tuple[EpochResult, ...],
    seconds: float,
) -> None:
    last = history[-1] if history else None
    loss = (
        ""
        if last is None or last.val_loss is None
        else f", validation loss {history[(best or len(history)) - 1].val_loss:.4f}"
    )
    stop = f" (early stop: best round {best} of {len(history)})" if best else ""
    line = f"gbm: {model.trees} trees{stop}{loss}, {seconds:.2f}s"
    if console is not None:
        console.print(line)
    else:
        logger.info("%s", line)


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
