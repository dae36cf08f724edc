"""Training for ``model.type: auto``: several candidates on one split, then one weighted ensemble.

:func:`~forgeml.training.stage.train_model` hands auto configs here. The run's pipeline holds the
tree inputs (auto's kind rules: raw numbers with NaN, category ids); the network candidates get a
second pipeline fitted on the same training rows with ``features.numeric``'s default scaling and
one-hot categories, and ride the ensemble behind it (:class:`~forgeml.bundle.inference.NetworkMember`).
Every candidate's validation probabilities (or values) go to greedy ensemble selection
(:mod:`forgeml.training.ensemble_selection`); the members with a weight form the
:class:`~forgeml.models.ensemble.WeightedEnsemble` the bundle holds, and every candidate gets a
leaderboard row (validation loss, fit and predict seconds, weight, or why it was skipped).

On a small table (at most :data:`BAG_MAX_ROWS` training and validation rows) the boosters are
k-fold bagged, as AutoGluon bags its models: ``model.bag_folds`` boosters, each grown on all the
training and validation rows but one fold and stopped early on that fold. The bag's out-of-fold
predictions of the validation rows are what ensemble selection weighs (no booster saw the row it
predicts), and its boosters join the ensemble as members ``<name>-fold<i>`` sharing its weight.

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
from functools import cached_property

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from torch import nn

from forgeml.bundle.inference import NetworkMember
from forgeml.config import (
    GBM_DEFAULTS,
    TABLE_MLP_DEFAULTS,
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
from forgeml.training.callbacks import EpochResult
from forgeml.training.ensemble_selection import select_ensemble, validation_loss
from forgeml.training.gbm import Deadline
from forgeml.training.loop import TensorData, TrainResult
from forgeml.training.recipe import filled
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


def _network_settings(config: TrainConfig) -> TrainConfig:
    """The run's train section as auto's networks read it: a large table mlp's defaults
    (config.TABLE_MLP_DEFAULTS, whatever the table's size: the settings auto was measured with) for every
    key the config does not set, and AUTO_NETWORK_STOPPING."""
    return filled(config, TABLE_MLP_DEFAULTS["train"], AUTO_NETWORK_STOPPING)


# auto's networks stop after 30 epochs without a lower validation loss, unlike a plain mlp on a large table
# (which runs its whole schedule and keeps the epoch of least error, config.TABLE_MLP_DEFAULTS; a small
# table's runs 20 epochs, forgeml.training.recipe): the budget is
# shared by the candidates, and ensemble selection weighs members by their validation log loss, so each
# network keeps its epoch of least loss. These are the settings auto's candidates were measured with.
AUTO_NETWORK_STOPPING = {"patience": 30, "monitor": "loss"}


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
    # periodic numeric embeddings: the better MLP on 2 of 4 tuning tables; the ensemble weighs it anyway.
    # One network, not submodels: auto already averages (bagged folds, the ensemble), and submodels
    # would take several times the seconds of the budget the other candidates share.
    "mlp": Candidate(MLPConfig(numeric_embedding="periodic", submodels=1), _network_settings, trees=False),
    # no hidden layer and no numeric embedding: a linear (logistic or least-squares) model on the features
    "linear": Candidate(
        MLPConfig(hidden=[], numeric_embedding="none", submodels=1), _network_settings, trees=False
    ),
}
# Seconds per (training row x input column), a network's per epoch: 4x the rates benchmarks/auto_budget.py
# measured on a quiet 2-core machine (50,000 rows, 34,999 training rows x 16 columns, 2026-12-07: gbm
# 8.7e-7 for 196 rounds, gbm_large 4.5e-6 for 452, mlp 8.7e-7 an epoch, linear 9.2e-8; all four 23.5 s),
# so one thread or a shared machine still fits. The rates measured under a load of ~9 before (16-60x
# these) made auto skip gbm_large on car_choice (an estimated 187 s; its whole auto fit took 24 s).
SECONDS_PER_CELL = {"gbm": 3.5e-6, "gbm_large": 1.8e-5, "mlp": 3.5e-6, "linear": 4e-7}
MIN_EPOCHS = 2
FIXED_SECONDS = 0.5  # per candidate: setting up, predicting the validation rows
# Tables with at most this many training + validation rows bag their boosters (model.bag_folds).
# Measured with hand-written LightGBM (learning rate 0.05, early stopping after 50 rounds) on the
# tuning tables, 3 seeds, test accuracy / R^2 of 5 boosters each stopped on its own fold of the
# train+validation rows against one booster stopped on the validation rows: bank_churn 0.9732 vs
# 0.9702, benefits 0.6930 vs 0.6885, wine_red 0.6604 vs 0.6427, car_choice 0.3867 vs 0.3928,
# computers 0.9392 vs 0.9370, budget_food (19,178 rows) 0.4312 vs 0.4308, schooling 0.3043 vs
# 0.2959: better on 6 of 7 (most on the smallest), for 5x a booster's seconds. Above 20,000 rows
# the gain was nil and the seconds are what the budget needs for the networks.
BAG_MAX_ROWS = 20_000
# Tables with at most this many training + validation rows bag the networks too, and then ensemble
# selection weighs every candidate by its out-of-fold predictions of ALL those rows, not only the
# validation rows (AutoGluon's bagged mode): 5x the rows to choose weights on where the validation rows are
# fewest. A table MLP fits in seconds there (under 2 s on the tuning tables of under 5,000 rows, one thread),
# so five of them fit the budget; above, they would take the boosters' and gbm_large's share.
NETWORK_BAG_MAX_ROWS = 5_000


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


def estimate_seconds(
    name: str, rows: int, columns: int, bag: int = 0, validation: int = 0, repeats: int = 1
) -> float:
    """The least time candidate ``name`` needs on ``rows`` x ``columns`` (a network: MIN_EPOCHS epochs;
    bagged ``bag`` ways ``repeats`` times: ``bag x repeats`` fits on ``(bag - 1) / bag`` of the rows
    and ``validation``)."""
    fits, rows = (bag * repeats, (rows + validation) * (bag - 1) // bag) if bag > 1 else (1, rows)
    passes = 1 if CANDIDATES[name].trees else MIN_EPOCHS
    return fits * (FIXED_SECONDS + SECONDS_PER_CELL[name] * rows * max(columns, 1) * passes)


def bag_folds(model_config: AutoConfig, train: RawData, validation: RawData) -> int:
    """How many ways the boosters are bagged on this table: ``model.bag_folds`` on a small one, else 0."""
    small = len(train) + len(validation) <= BAG_MAX_ROWS
    return model_config.bag_folds if model_config.bag_folds > 1 and small else 0


def bags_everything(bag: int, train: RawData, validation: RawData) -> bool:
    """Whether the networks are bagged too (and selection reads every row's out-of-fold prediction)."""
    return bag > 1 and len(train) + len(validation) <= NETWORK_BAG_MAX_ROWS


@dataclass(frozen=True)
class Bagging:
    """How auto bags on one table: ``folds`` ways (0: no bag), ``repeats`` times, the networks too when
    ``everything`` (then selection reads every row's out-of-fold prediction)."""

    folds: int = 0
    repeats: int = 1
    everything: bool = False

    def folds_for(self, name: str) -> int:
        """How many ways candidate ``name`` is bagged: a booster ``folds``, a network only when ``everything``."""
        return self.folds if CANDIDATES[name].trees or self.everything else 0

    def seconds(self, name: str, rows: int, columns: int, validation: int) -> float:
        """:func:`estimate_seconds` for candidate ``name`` bagged this way."""
        return estimate_seconds(name, rows, columns, self.folds_for(name), validation, self.repeats)


def bagging_for(model_config: AutoConfig, train: RawData, validation: RawData) -> Bagging:
    """The bagging ``model_config`` asks for on this table (:func:`bag_folds`, :func:`bags_everything`)."""
    folds = bag_folds(model_config, train, validation)
    return Bagging(folds, model_config.bag_repeats, bags_everything(folds, train, validation))


def check_budget(
    model_config: AutoConfig,
    budget: float,
    rows: int,
    columns: int,
    validation: int = 0,
    bagging: Bagging = Bagging(),
) -> None:
    """Refuse, before any training, a ``train.time_budget`` that no candidate fits in."""
    needs = {name: bagging.seconds(name, rows, columns, validation) for name in model_config.candidates}
    cheapest = min(needs, key=needs.__getitem__)
    if budget < needs[cheapest]:
        raise ConfigError(
            f"train.time_budget={budget:g}s is too small for even one candidate: the quickest, {cheapest}, "
            f"needs about {needs[cheapest]:.1f}s on {rows} rows x {columns} columns (estimated at "
            f"{SECONDS_PER_CELL[cheapest]:.1e}s per row and column, measured on 2 cores). "
            f"Set train.time_budget to at least {needs[cheapest] * 1.5:.0f}.",
            key="train.time_budget",
        )


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
    bagging = bagging_for(model_config, train, validation)
    check_budget(model_config, config.time_budget, len(train), columns, len(validation), bagging)
    fitter = _Fitter(pipeline, train, validation, config, seed=seed, deadline=deadline, console=console)
    # the rows ensemble selection weighs: every row's out-of-fold prediction when everything is bagged
    inputs = fitter.bag_data if bagging.everything else tensor_data(pipeline, validation)
    truth = inputs.target.numpy()
    members: dict[str, list[nn.Module]] = {}  # one module, or a bag's modules
    predictions: dict[str, np.ndarray] = {}
    rows: dict[str, LeaderboardRow] = {}
    histories: dict[str, tuple[EpochResult, ...]] = {}
    for name in model_config.candidates:
        bagged = bagging.folds_for(name)
        left = deadline - time.perf_counter()
        needs = bagging.seconds(name, len(train), columns, len(validation))
        if needs > left and members:  # the first candidate always trains (the budget check let it)
            note = f"skipped: needs ~{needs:.0f}s, {max(left, 0):.0f}s left"
            rows[name] = LeaderboardRow(name, CANDIDATES[name].model.type, None, None, None, 0.0, note)
            continue
        fit_started = time.perf_counter()
        if bagged:
            members[name], histories[name], out_of_fold = fitter.fit_bagged(name, bagged, bagging.repeats)
            predictions[name] = out_of_fold if bagging.everything else out_of_fold[len(train) :]
            fit_seconds = time.perf_counter() - fit_started
            predict_seconds = 0.0  # each member predicted its own fold's rows while fitting
        else:
            module, histories[name] = fitter.fit(name)
            members[name] = [module]
            fit_seconds = time.perf_counter() - fit_started
            predict_started = time.perf_counter()
            predictions[name] = _averaged(pipeline, predict_outputs(module, inputs.inputs).numpy())
            predict_seconds = time.perf_counter() - predict_started
        loss = validation_loss(predictions[name], truth, regression=pipeline.task.kind == "regression")
        rows[name] = LeaderboardRow(
            name, CANDIDATES[name].model.type, _in_target_units(pipeline, loss), fit_seconds, predict_seconds,
            0.0, _bag_note(bagged, bagging, len(truth)), rounds=len(histories[name]),
        )  # fmt: skip
    selection = select_ensemble(
        [predictions[name] for name in members], truth,
        regression=pipeline.task.kind == "regression", rounds=model_config.ensemble_rounds,
    )  # fmt: skip
    weights = dict(zip(members, selection.weights, strict=True))
    # a bag's boosters already saw every row; a lone booster kept by the ensemble is grown again on them
    lone_boosters = [
        n for n in members if weights[n] > 0 and CANDIDATES[n].trees and not bagging.folds_for(n)
    ]
    for name in lone_boosters if model_config.refit else []:
        members[name], rows[name] = fitter.refit(name, members[name], rows[name])
    loss = _in_target_units(pipeline, selection.loss)
    ensemble, leaderboard = _ensemble(pipeline, members, weights, loss, rows)
    heaviest = max(weights, key=weights.__getitem__)
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
        module, history = self._fit_on(name, self.train, self.validation, console=self.console)
        if self.console is not None and history and not CANDIDATES[name].trees:
            losses = [(r.val_loss if r.val_loss is not None else r.train_loss, r.epoch) for r in history]
            best, epoch = min(losses)
            self.console.print(
                f"{name}: {len(history)} epochs, best validation loss {best:.4f} at epoch {epoch}"
            )
        return module, history

    def _fit_on(
        self, name: str, train: RawData, stop_on: RawData, *, console: Console | None, seed: int | None = None
    ) -> tuple[nn.Module, tuple[EpochResult, ...]]:
        """Candidate ``name`` grown on ``train`` and stopped early on ``stop_on``, as an ensemble member
        (seeded with ``seed``, else the run's seed)."""
        from forgeml.training.stage import train_model

        candidate = CANDIDATES[name]
        settings = candidate.train(self.config)
        seed = self.seed if seed is None else seed
        if candidate.trees:
            result = train_model(
                self.pipeline, train, stop_on, candidate.model, settings,
                seed=seed, callbacks=[Deadline(self.deadline)], console=console,
            )  # fmt: skip
            return result.model, result.history
        self.network_pipeline = self.network_pipeline or _network_pipeline(self.pipeline, self.train)
        # per-epoch lines stay in the candidate's history, not the terminal: with a table MLP's up to
        # 200 epochs beside the linear model's, a newcomer's heart_failure run printed 251 epoch lines
        result = train_model(
            self.network_pipeline, train, stop_on, candidate.model, settings, seed=seed,
            callbacks=[Deadline(self.deadline)], console=Console(quiet=True),
        )  # fmt: skip
        names = self.pipeline.input_spec.names
        return NetworkMember(
            result.model, self.network_pipeline, names, candidate.model
        ).eval(), result.history

    def refit(
        self, name: str, members: list[nn.Module], row: LeaderboardRow
    ) -> tuple[list[nn.Module], LeaderboardRow]:
        """Booster ``name`` grown again on :attr:`bag_rows`, no row held out, for the rounds early stopping
        kept scaled by the rows gained; kept as it is when the deadline leaves too little time.

        Rounds scaled by the rows (x1.23 with the 65/15 split) against the rounds kept, and against no
        refit, on the 4 tuning tables too large to bag (3 seeds, test accuracy or R²; log loss or RMSE
        moved the same way on all 4): lecture_rating 0.2840 / 0.2833 / 0.2806, movie_rating 0.2764 /
        0.2758 / 0.2749, diamonds 0.9832 / 0.9831 / 0.9831, vietnam_insurance 0.8799 / 0.8784 / 0.8765
        (LightGBM's defaults fit on all those rows: 0.2832, 0.2704, 0.9814, 0.8673)."""
        from forgeml.training.stage import train_model

        (stopped,) = members
        gained = len(self.bag_rows) / len(self.train)
        rounds = max(1, round(stopped.booster.current_iteration() * gained))
        # more rows and more rounds; its first fit also grew patience rounds past the kept ones
        needs = (row.fit_seconds or 0.0) * gained**2
        left = self.deadline - time.perf_counter()
        if needs > left:
            return members, replace(row, note=f"not refit: needs ~{needs:.0f}s, {max(left, 0):.0f}s left")
        started = time.perf_counter()
        candidate = CANDIDATES[name]
        result = train_model(
            self.pipeline, self.bag_rows, self.validation.take(np.arange(0)),
            candidate.model.model_copy(update={"max_rounds": rounds}),
            candidate.train(self.config).model_copy(update={"early_stopping": None}),
            seed=self.seed, console=Console(quiet=True),
        )  # fmt: skip
        seconds = time.perf_counter() - started
        note = f"refit on all {len(self.bag_rows)} rows for {rounds} rounds in {seconds:.1f}s"
        if self.console is not None:
            self.console.print(f"{name}: {note}")
        return [result.model], replace(row, fit_seconds=(row.fit_seconds or 0.0) + seconds, note=note)

    @cached_property
    def bag_rows(self) -> RawData:
        """The training rows, then the validation rows: what a bag splits into folds."""
        return RawData(
            table=pd.concat([self.train.table, self.validation.table], ignore_index=True),
            images=None,
            target=pd.concat([self.train.target, self.validation.target], ignore_index=True),
            source=self.train.source,
        )

    @cached_property
    def bag_data(self) -> TensorData:
        """:attr:`bag_rows` as the run's model inputs, made once for every bagged candidate."""
        return tensor_data(self.pipeline, self.bag_rows)

    def fit_bagged(
        self, name: str, folds: int, repeats: int = 1
    ) -> tuple[list[nn.Module], tuple[EpochResult, ...], np.ndarray]:
        """``folds`` members over the training and validation rows, each stopped early on its own fold;
        ``repeats`` times over a fresh split into folds (AutoGluon's repeated bagging, ``num_bag_sets``).

        Returns the members, the first one's history, and the out-of-fold predictions of every row of
        :attr:`bag_rows` (each the mean of the ``repeats`` members whose fold held the row)."""
        from sklearn.model_selection import KFold, StratifiedKFold

        rows, data = self.bag_rows, self.bag_data
        target = data.target.numpy()
        counts = np.bincount(target.astype(np.int64)) if self.pipeline.task.kind != "regression" else None
        stratify = counts is not None and counts[counts > 0].min() >= folds
        modules, histories, predictions = [], [], None
        for repeat in range(repeats):
            seed = self.seed + repeat
            splitter = (StratifiedKFold if stratify else KFold)(
                folds, shuffle=True, random_state=seed % 2**32
            )
            for fit_rows, held in splitter.split(np.zeros((len(rows), 1)), target):
                module, history = self._fit_on(
                    name, rows.take(fit_rows), rows.take(held), console=Console(quiet=True), seed=seed
                )
                modules.append(module)
                histories.append(history)
                index = torch.from_numpy(held)
                part = _averaged(
                    self.pipeline, predict_outputs(module, tuple(t[index] for t in data.inputs)).numpy()
                )
                if predictions is None:
                    predictions = np.zeros((len(rows), *part.shape[1:]), dtype=np.float64)
                predictions[held] += part / repeats
        assert predictions is not None
        if self.console is not None:
            size = (
                f"{sum(module.trees for module in modules)} trees"
                if CANDIDATES[name].trees
                else f"{sum(len(h) for h in histories)} epochs"
            )
            self.console.print(f"{name}: {_bag_name(folds, repeats)}, {size}")
        return modules, histories[0], predictions


def _bag_name(folds: int, repeats: int) -> str:
    return f"{folds}-fold bag" + (f" x{repeats}" if repeats > 1 else "")


def _bag_note(bagged: int, bagging: Bagging, rows: int) -> str:
    if not bagged:
        return ""
    which = "all " if bagging.everything else "the validation "
    return f"{_bag_name(bagged, bagging.repeats)}, out-of-fold loss of {which}{rows} rows"


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


def member_names(name: str, count: int) -> list[str]:
    """The ensemble's names for candidate ``name``'s modules: itself, or ``name-fold1..k`` for a bag."""
    return [name] if count == 1 else [f"{name}{FOLD}{index}" for index in range(1, count + 1)]


FOLD = "-fold"  # a bagged candidate's boosters are members <candidate>-fold<i>


def _ensemble(
    pipeline: FeaturePipeline,
    members: dict[str, list[nn.Module]],
    weights: dict[str, float],
    loss: float,
    rows: dict[str, LeaderboardRow],
) -> tuple[WeightedEnsemble, list[dict[str, object]]]:
    """The ensemble of the candidates with a weight (a bag's boosters share theirs equally), and the
    leaderboard headed by the ensemble's own row (``loss``: its validation loss in target units)."""
    names = list(members)
    kept = [name for name in names if weights[name] > 0]
    board = [replace(row, weight=weights.get(row.name, 0.0)).to_json() for row in rows.values()]
    board.insert(
        0,
        LeaderboardRow(
            "ensemble", "auto", loss,
            sum(row.fit_seconds or 0.0 for row in rows.values()),
            sum(rows[name].predict_seconds or 0.0 for name in kept), 1.0,
            " + ".join(f"{weights[name]:.2f} {name}" for name in kept),
        ).to_json(),
    )  # fmt: skip

    def expanded(chosen: list[str]) -> list[tuple[str, nn.Module, float]]:
        return [
            (member, module, weights[name] / len(members[name]))
            for name in chosen
            for member, module in zip(member_names(name, len(members[name])), members[name], strict=True)
        ]

    parts = expanded(kept)
    ensemble = WeightedEnsemble(
        [module for _, module, _ in parts], [weight for _, _, weight in parts],
        names=[member for member, _, _ in parts], task=pipeline.task.kind, leaderboard=board,
    )  # fmt: skip
    ensemble.dropped = {member: module for member, module, _ in expanded([n for n in names if n not in kept])}
    return ensemble, board


def _report(
    console: Console | None, leaderboard: list[dict[str, object]], seconds: float, budget: float
) -> None:
    line = f"auto: {leaderboard[0]['note']} in {seconds:.1f}s of a {budget:g}s budget"
    if console is not None:
        console.print(line)
    else:
        logger.info("%s", line)
