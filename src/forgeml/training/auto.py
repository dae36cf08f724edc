"""Training for ``model.type: auto``: several candidates on one split, then one weighted ensemble.

:func:`~forgeml.training.stage.train_model` hands auto configs here. The run's pipeline holds the
tree inputs (auto's kind rules: raw numbers with NaN, category ids); the network candidates get a
second pipeline fitted on the same training rows with ``features.numeric``'s default scaling and
one-hot categories, and ride the ensemble behind it (:class:`~forgeml.bundle.inference.NetworkMember`).
Every candidate's validation probabilities (or values) go to greedy ensemble selection
(:mod:`forgeml.training.ensemble_selection`); the members with a weight form the
:class:`~forgeml.models.ensemble.WeightedEnsemble` the bundle holds, and every candidate gets a
leaderboard row (validation loss, fit and predict seconds, weight, or why it was skipped).

``train.time_budget`` bounds the whole: a candidate starts only when its estimate (rows x columns x
a measured rate, :data:`SECONDS_PER_CELL`) fits in what is left, a network also stops at the
deadline (keeping its best epoch), and a budget too small for any candidate is refused before
training starts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from rich.console import Console
from torch import nn

from forgeml.bundle.inference import NetworkMember
from forgeml.config import (
    GBM_DEFAULTS,
    AutoConfig,
    CategoricalConfig,
    EarlyStoppingConfig,
    GBMConfig,
    MLPConfig,
    ModelConfig,
    NumericConfig,
    TrainConfig,
)
from forgeml.data import RawData
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline, fit_features
from forgeml.models import predict_outputs
from forgeml.models.ensemble import WeightedEnsemble
from forgeml.training.callbacks import Callback, EpochResult, TrainState
from forgeml.training.ensemble_selection import select_ensemble, validation_loss
from forgeml.training.loop import TrainResult
from forgeml.training.stage import tensor_data

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One entry of auto's menu: a model config and how its training settings derive from the run's."""

    model: ModelConfig
    train: Callable[[TrainConfig], TrainConfig]
    trees: bool


def _tree_settings(config: TrainConfig, *, learning_rate: float, patience: int) -> TrainConfig:
    """The run's train section as a booster reads it: its own learning rate and patience (in rounds)."""
    stopping = EarlyStoppingConfig(
        patience=patience, min_delta=config.early_stopping.min_delta if config.early_stopping else 0.0
    )
    return config.model_copy(update={"learning_rate": learning_rate, "early_stopping": stopping})


# gbm: the gbm defaults (chosen on the tuning tables, config.GBM_DEFAULTS). gbm_large: AutoGluon's
# "GBMLarge" setting (learning rate 0.03, 128 leaves, 3 rows a leaf, 90% of columns a tree), the second
# booster its medium_quality preset trains, with rounds to match the smaller steps. mlp and linear
# (no hidden layer: logistic or ridge-like regression on the network features) train with the run's
# train section, which auto leaves to the networks.
CANDIDATES: dict[str, Candidate] = {
    "gbm": Candidate(
        GBMConfig(),
        lambda config: _tree_settings(
            config,
            learning_rate=GBM_DEFAULTS["learning_rate"],
            patience=GBM_DEFAULTS["early_stopping_rounds"],
        ),
        trees=True,
    ),
    "gbm_large": Candidate(
        GBMConfig(num_leaves=128, min_data_in_leaf=3, feature_fraction=0.9, max_rounds=1000),
        lambda config: _tree_settings(config, learning_rate=0.03, patience=50),
        trees=True,
    ),
    # periodic numeric embeddings: the better MLP on 2 of 4 tuning tables; the ensemble weighs it anyway
    "mlp": Candidate(MLPConfig(numeric_embedding="periodic"), lambda config: config, trees=False),
    # no hidden layer and no numeric embedding: a linear (logistic or least-squares) model on the features
    "linear": Candidate(MLPConfig(hidden=[], numeric_embedding="none"), lambda config: config, trees=False),
}
# Seconds per (training row x input column), a network's per epoch: benchmarks/auto_budget.py on a
# 50,000-row table (34,999 training rows x 16 columns), taskset to 2 cores of this project's shared
# 2-core machine under a load of ~9 (2026-12-07): gbm 19.5 s (100 rounds), gbm_large 81 s (452 rounds),
# mlp 8.3 s an epoch, linear 3.1 s an epoch; all four 181 s. Measured busy, so the estimates err long
# on a quiet machine (a candidate may be skipped that would have fit; never the first one).
SECONDS_PER_CELL = {"gbm": 3.5e-5, "gbm_large": 1.45e-4, "mlp": 1.5e-5, "linear": 5.5e-6}
MIN_EPOCHS = 2
FIXED_SECONDS = 0.5  # per candidate: setting up, predicting the validation rows


@dataclass(frozen=True)
class LeaderboardRow:
    """One candidate's line: how it did on validation, what it cost, and its weight in the ensemble."""

    name: str
    model_type: str
    validation_loss: float | None
    fit_seconds: float | None
    predict_seconds: float | None
    weight: float
    note: str = ""
    rounds: int | None = None  # epochs of a network, boosting rounds of a booster (kept trees)

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.name,
            "type": self.model_type,
            "validation_loss": self.validation_loss,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "weight": self.weight,
            "note": self.note,
            "rounds": self.rounds,
        }


def estimate_seconds(name: str, rows: int, columns: int) -> float:
    """The least time candidate ``name`` needs on ``rows`` x ``columns`` (a network: MIN_EPOCHS epochs)."""
    epochs = 1 if CANDIDATES[name].trees else MIN_EPOCHS
    return FIXED_SECONDS + SECONDS_PER_CELL[name] * rows * max(columns, 1) * epochs


def check_budget(model_config: AutoConfig, budget: float, rows: int, columns: int) -> None:
    """Refuse, before any training, a ``train.time_budget`` that no candidate fits in."""
    needs = {name: estimate_seconds(name, rows, columns) for name in model_config.candidates}
    cheapest = min(needs, key=needs.__getitem__)
    if budget < needs[cheapest]:
        raise ConfigError(
            f"train.time_budget={budget:g}s is too small for even one candidate: the quickest, {cheapest}, "
            f"needs about {needs[cheapest]:.1f}s on {rows} rows x {columns} columns (estimated at "
            f"{SECONDS_PER_CELL[cheapest]:.1e}s per row and column, measured on 2 cores). "
            f"Set train.time_budget to at least {needs[cheapest] * 1.5:.0f}.",
            key="train.time_budget",
        )


class _Deadline(Callback):
    """Stops a network's training after the epoch that reaches the deadline (early stopping keeps the best)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def on_epoch_end(self, state: TrainState, result: EpochResult) -> None:
        if time.perf_counter() >= self.deadline:
            state.should_stop = True


def train_auto(
    pipeline: FeaturePipeline,
    train: RawData,
    validation: RawData,
    model_config: AutoConfig,
    config: TrainConfig,
    *,
    seed: int,
    console: Console | None = None,
) -> TrainResult:
    """Train the candidates within ``config.time_budget`` and return their weighted ensemble."""
    started = time.perf_counter()
    deadline = started + config.time_budget
    if not len(validation):
        raise ConfigError(
            "model.type auto weighs its candidates on validation rows; data.split.validation is 0. "
            "Give it a fraction above 0 (e.g. 0.15), or pick one model.type.",
            key="data.split.validation",
        )
    columns = len(pipeline.numeric_.columns) + len(pipeline.categorical_.columns)
    check_budget(model_config, config.time_budget, len(train), columns)
    inputs = tensor_data(pipeline, validation)
    truth = inputs.target.numpy()
    fitter = _Fitter(pipeline, train, validation, config, seed=seed, deadline=deadline, console=console)
    members: dict[str, nn.Module] = {}
    predictions: dict[str, np.ndarray] = {}
    rows: dict[str, LeaderboardRow] = {}
    histories: dict[str, tuple[EpochResult, ...]] = {}
    for name in model_config.candidates:
        left, needs = deadline - time.perf_counter(), estimate_seconds(name, len(train), columns)
        if needs > left and members:  # the first candidate always trains (the budget check let it)
            note = f"skipped: needs ~{needs:.0f}s, {max(left, 0):.0f}s left"
            rows[name] = LeaderboardRow(name, CANDIDATES[name].model.type, None, None, None, 0.0, note)
            continue
        fit_started = time.perf_counter()
        members[name], histories[name] = fitter.fit(name)
        fit_seconds = time.perf_counter() - fit_started
        predict_started = time.perf_counter()
        predictions[name] = _averaged(pipeline, predict_outputs(members[name], inputs.inputs).numpy())
        predict_seconds = time.perf_counter() - predict_started
        loss = validation_loss(predictions[name], truth, regression=pipeline.task.kind == "regression")
        rows[name] = LeaderboardRow(
            name, CANDIDATES[name].model.type, _in_target_units(pipeline, loss), fit_seconds, predict_seconds,
            0.0, rounds=len(histories[name]),
        )  # fmt: skip
    ensemble, leaderboard = _ensemble(pipeline, model_config, members, predictions, truth, rows)
    heaviest = max(zip(ensemble.names, ensemble.weights.tolist(), strict=True), key=lambda item: item[1])[0]
    seconds = time.perf_counter() - started
    _report(console, leaderboard, seconds, config.time_budget)
    return TrainResult(model=ensemble, history=histories[heaviest], best_epoch=None, seconds=seconds)


@dataclass
class _Fitter:
    """Trains one candidate on the run's split: boosters on the run's pipeline, networks on their own."""

    pipeline: FeaturePipeline
    train: RawData
    validation: RawData
    config: TrainConfig
    seed: int
    deadline: float
    console: Console | None
    network_pipeline: FeaturePipeline | None = None  # fitted once, for the first network

    def fit(self, name: str) -> tuple[nn.Module, tuple[EpochResult, ...]]:
        """The trained candidate as an ensemble member (taking the run's model inputs), and its history."""
        from forgeml.training.stage import train_model

        candidate = CANDIDATES[name]
        settings = candidate.train(self.config)
        if candidate.trees:
            result = train_model(
                self.pipeline, self.train, self.validation, candidate.model, settings,
                seed=self.seed, console=self.console,
            )  # fmt: skip
            return result.model, result.history
        self.network_pipeline = self.network_pipeline or _network_pipeline(self.pipeline, self.train)
        result = train_model(
            self.network_pipeline, self.train, self.validation, candidate.model, settings, seed=self.seed,
            callbacks=[_Deadline(self.deadline)], console=self.console or Console(quiet=True),
        )  # fmt: skip
        names = self.pipeline.input_spec.names
        return NetworkMember(
            result.model, self.network_pipeline, names, candidate.model
        ).eval(), result.history


def _network_pipeline(pipeline: FeaturePipeline, train: RawData) -> FeaturePipeline:
    """The networks' features: the run's columns and vocabularies, with imputation, scaling and one-hot."""
    features = pipeline.config.model_copy(
        update={
            "numeric": NumericConfig(),
            "categorical": pipeline.config.categorical.model_copy(
                update={"encoding": CategoricalConfig.model_fields["encoding"].default}
            ),
        }
    )
    network = fit_features(train, features, pipeline.task)
    same = (
        network.numeric_.columns == pipeline.numeric_.columns
        and network.categorical_.columns == pipeline.categorical_.columns
        and network.categorical_.vocabularies_ == pipeline.categorical_.vocabularies_
    )
    assert same, "both pipelines read the same columns with the same vocabularies"
    return network


def _averaged(pipeline: FeaturePipeline, outputs: np.ndarray) -> np.ndarray:
    """What the ensemble averages: class probabilities ``(N, K)``, or standardized values ``(N,)``."""
    if pipeline.task.kind == "regression":
        return outputs[:, 0].astype(np.float64)
    probabilities = pipeline.target_.decode(outputs).probabilities
    assert probabilities is not None
    return probabilities


def _in_target_units(pipeline: FeaturePipeline, loss: float) -> float:
    """Log loss as it is; a regression's mean squared error from standardized to the target's units."""
    return loss * pipeline.target_.std_**2 if pipeline.task.kind == "regression" else loss


def _ensemble(
    pipeline: FeaturePipeline,
    model_config: AutoConfig,
    members: dict[str, nn.Module],
    predictions: dict[str, np.ndarray],
    truth: np.ndarray,
    rows: dict[str, LeaderboardRow],
) -> tuple[WeightedEnsemble, list[dict[str, object]]]:
    """Greedy selection over the trained candidates; the ensemble of those with a weight, and the leaderboard."""
    names = list(members)
    regression = pipeline.task.kind == "regression"
    selection = select_ensemble(
        [predictions[name] for name in names],
        truth,
        regression=regression,
        rounds=model_config.ensemble_rounds,
    )
    weights = dict(zip(names, selection.weights, strict=True))
    kept = [name for name in names if weights[name] > 0]
    board = [replace(row, weight=weights.get(row.name, 0.0)).to_json() for row in rows.values()]
    board.insert(
        0,
        LeaderboardRow(
            "ensemble", "auto", _in_target_units(pipeline, selection.loss),
            sum(row.fit_seconds or 0.0 for row in rows.values()),
            sum(rows[name].predict_seconds or 0.0 for name in kept), 1.0,
            " + ".join(f"{weights[name]:.2f} {name}" for name in kept),
        ).to_json(),
    )  # fmt: skip
    ensemble = WeightedEnsemble(
        [members[name] for name in kept], [weights[name] for name in kept],
        names=kept, task=pipeline.task.kind, leaderboard=board,
    )  # fmt: skip
    ensemble.dropped = {name: members[name] for name in names if name not in kept}
    return ensemble, board


def _report(
    console: Console | None, leaderboard: list[dict[str, object]], seconds: float, budget: float
) -> None:
    line = f"auto: {leaderboard[0]['note']} in {seconds:.1f}s of a {budget:g}s budget"
    if console is not None:
        console.print(line)
    else:
        logger.info("%s", line)
