"""The train stage's public function: build the model for the fitted features and run the loop."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from forgeml.config import EarlyStoppingConfig, ModelConfig, TrainConfig
from forgeml.data import RawData
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline
from forgeml.models import build_model
from forgeml.training.callbacks import Callback, EarlyStopping, ProgressReporter
from forgeml.training.checkpoint import relevant_config
from forgeml.training.distributed import is_restart, ranks_from_environment
from forgeml.training.logs import CSVLogger, TensorBoardLogger
from forgeml.training.loop import Session, TensorData, TrainResult, fit, seed_everything, set_threads
from forgeml.training.losses import class_weights_for, make_loss
from forgeml.training.profiling import PROFILE_DIR, ProfilerCallback
from forgeml.training.recipe import network_training
from forgeml.training.resume import ResumeMode


def tensor_data(pipeline: FeaturePipeline, raw: RawData) -> TensorData:
    """``raw`` transformed by the fitted pipeline into model-ready tensors with encoded targets."""
    inputs = pipeline.transform(raw)
    return TensorData(inputs.ordered(pipeline.input_spec.names), pipeline.encode_target(raw))


def train_model(
    pipeline: FeaturePipeline,
    train: RawData,
    validation: RawData,
    model_config: ModelConfig,
    config: TrainConfig,
    *,
    seed: int,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    session: Session | None = None,
) -> TrainResult:
    """Build a model for ``pipeline``'s inputs and train it on ``train``, watching ``validation``.

    ``session`` says where checkpoints and logs go and whether to resume (default: no files).
    Under torchrun the process's rank comes from the environment; only rank 0 prints and writes.
    ``model.type: gbm`` goes to :func:`forgeml.training.gbm.train_gbm` (LightGBM) instead of the loop,
    ``model.type: auto`` to :func:`forgeml.training.auto.train_auto` (candidates, then their ensemble).
    """
    session = session or Session(ranks=ranks_from_environment())
    if model_config.type == "auto":  # several candidates, then their ensemble
        from forgeml.training.auto import train_auto

        _refuse_for_auto(callbacks, session)
        return train_auto(pipeline, train, validation, model_config, config, seed=seed, console=console)
    if model_config.type == "gbm":  # trees are grown, not trained by epochs: the one place this is asked
        from forgeml.training.gbm import train_gbm

        return train_gbm(
            pipeline, train, validation, model_config, config,
            seed=seed, callbacks=callbacks, console=console, session=session,
        )  # fmt: skip
    set_threads(config.threads)
    spec = pipeline.input_spec
    config = resolve_monitor(
        network_training(model_config, config, spec), pipeline.task.kind, table=spec.is_table
    )
    train_data = tensor_data(pipeline, train)
    classes = max(2, len(pipeline.task.labels)) if pipeline.task.kind != "regression" else 0
    weights = class_weights_for(config.class_weights, train_data.target, classes) if classes else None
    # fails on a bad pairing before any work
    loss_function = make_loss(
        config.loss, pipeline.task, class_weights=weights, label_smoothing=config.label_smoothing
    )
    seed_everything(seed)
    model = build_model(model_config, pipeline.input_spec, pipeline.target_.output_dim)
    validation_data = tensor_data(pipeline, validation) if len(validation) else None
    main = session.ranks.is_main
    shipped: list[Callback] = [ProgressReporter(console if main else Console(file=io.StringIO()))]
    if config.early_stopping is not None and validation_data is not None:
        shipped.append(early_stopping(config.early_stopping))
    if session.run_dir is not None and main:
        if config.csv_log:
            shipped.append(CSVLogger(session.run_dir / "train_log.csv"))
        if config.tensorboard:
            shipped.append(TensorBoardLogger(session.run_dir / "tensorboard", hyperparameters=session.config))
        if config.profile_steps:
            shipped.append(ProfilerCallback(session.run_dir / PROFILE_DIR, config.profile_steps))
    result = fit(
        model,
        train_data,
        validation_data,
        loss_function,
        config,
        seed=seed,
        callbacks=[*shipped, *(callbacks or [])],
        session=session,
    )
    if result.privacy is not None and session.run_dir is not None and main:
        from forgeml.training.privacy import write_privacy

        # the accuracy cost of privacy: the same config and seed trained without it, weights kept for the card
        twin = None
        if config.privacy is not None and config.privacy.compare:
            quiet = Console(file=io.StringIO())
            twin = train_model(
                pipeline,
                train,
                validation,
                model_config,
                config.model_copy(update={"privacy": None}),
                seed=seed,
                console=quiet,
            )
        write_privacy(session.run_dir, result.privacy, twin)
    return result


def _refuse_for_auto(callbacks: list[Callback] | None, session: Session) -> None:
    if callbacks:
        raise ConfigError(
            "training callbacks hook the epochs of one network; model.type auto trains several candidates "
            "(boosted trees among them). Train without callbacks, or pick one model.type.",
            key="model.type",
        )
    if session.resume != "never":
        raise ConfigError(
            "model.type auto keeps no checkpoints to resume from. Train without --resume.", key="model.type"
        )


def make_session(
    run_dir: Path,
    config: dict[str, Any],
    train_config: TrainConfig,
    *,
    resume: bool | str | Path = False,
    force_resume: bool = False,
) -> Session:
    """The :class:`Session` of a run folder: ``resume`` True requires a checkpoint, a path names one,
    False follows ``train.resume`` (and a worker restarted by torchrun always continues)."""
    mode: ResumeMode
    if resume is True:
        mode = "require"
    elif resume:
        mode = Path(resume)
    else:
        mode = "auto" if train_config.resume == "auto" or is_restart() else "never"
    return Session(
        run_dir=run_dir,
        resume=mode,
        force_resume=force_resume,
        config=relevant_config(config),
        ranks=ranks_from_environment(),
    )


def resolve_monitor(config: TrainConfig, task_kind: str, *, table: bool) -> TrainConfig:
    """``config`` with ``early_stopping.monitor: auto`` made "error" for a classifier on a table, else "loss".

    Selecting the epoch by validation error rather than loss raised a table MLP's test accuracy on 5 of
    the 7 classification tuning tables (benchmarks/tabular_quality.py, 3 seeds, docs/tables.md): the loss
    turns up epochs before the accuracy stops rising (wine_red's best loss came at epoch 9 of 39). Images
    and text were not measured that way and keep the loss.
    """
    stopping = config.early_stopping
    if stopping is None:
        return config
    if stopping.monitor == "error" and task_kind == "regression":
        raise ConfigError(
            "train.early_stopping.monitor: error counts misclassified rows, and this target is a regression; "
            "use monitor: loss (or auto).",
            key="train.early_stopping.monitor",
        )
    if stopping.monitor != "auto":
        return config
    monitor = "error" if table and task_kind != "regression" else "loss"
    return config.model_copy(update={"early_stopping": stopping.model_copy(update={"monitor": monitor})})


def early_stopping(stopping: EarlyStoppingConfig) -> EarlyStopping:
    """The early-stopping callback ``stopping`` (its monitor resolved by :func:`resolve_monitor`) asks for."""
    monitor = "loss" if stopping.monitor == "auto" else stopping.monitor
    return EarlyStopping(patience=stopping.patience, min_delta=stopping.min_delta, monitor=monitor)
