"""Decide the task from the target, and split rows into train, validation and test, repeatably."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forgeml.config import SplitConfig, Task
from forgeml.data.sources import RawData
from forgeml.errors import ConfigError, DataError

logger = logging.getLogger(__name__)
TaskKind = Literal["classification", "binary", "regression"]
# An integer target with more distinct values than this is taken as a quantity, not a class.
MAX_AUTO_CLASSES = 20


@dataclass(frozen=True)
class TaskInfo:
    """What is predicted: the task kind and, for classifiers, the class labels in a fixed order."""

    kind: TaskKind
    labels: tuple[str | int | float | bool, ...] = ()


@dataclass(frozen=True)
class Splits:
    """The three row sets every later stage works on, and the task they share."""

    train: RawData
    validation: RawData
    test: RawData
    task: TaskInfo


def infer_task(target: pd.Series, requested: Task) -> TaskInfo:
    """Resolve ``data.task`` (possibly "auto") against the target's values."""
    _require_complete_target(target)
    kind = _infer_kind(target) if requested == "auto" else requested
    if kind == "regression":
        if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
            raise ConfigError(
                f"data.task is regression but the target holds non-numeric values such as {target.iloc[0]!r}.",
                key="data.task",
            )
        return TaskInfo("regression")
    labels = tuple(_plain(value) for value in sorted(target.unique(), key=lambda v: (str(type(v)), v)))
    if len(labels) < 2:
        raise DataError(
            f"the target has a single class ({labels[0]!r}); a classifier needs at least two.",
            column=str(target.name),
        )
    if kind == "binary" and len(labels) != 2:
        raise ConfigError(
            f"data.task is binary but the target has {len(labels)} classes. Use task: classification.",
            key="data.task",
        )
    return TaskInfo("binary" if len(labels) == 2 else "classification", labels)


def split_rows(
    raw: RawData, split: SplitConfig, task: TaskInfo, seed: int
) -> tuple[RawData, RawData, RawData]:
    """Train, validation and test parts of ``raw``; stratified by class for classifiers when possible."""
    positions = np.arange(len(raw))
    labels = raw.target.to_numpy() if raw.target is not None else None
    stratify = split.stratify and task.kind != "regression" and labels is not None
    rest, test = _cut(positions, split.test, labels if stratify else None, seed)
    if split.validation == 0:
        train, validation = rest, rest[:0]
    else:
        share = split.validation / (1.0 - split.test)
        train, validation = _cut(rest, share, labels[rest] if stratify else None, seed + 1)
    return raw.take(train), raw.take(validation), raw.take(test)


def _cut(
    positions: np.ndarray, fraction: float, labels: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if fraction == 0:
        return positions, positions[:0]
    if labels is not None and pd.Series(labels).value_counts().min() < 2:
        logger.warning(
            "a class has fewer than 2 rows, so the split cannot be stratified; splitting at random instead"
        )
        labels = None
    if labels is not None:
        fast = _stratified_cut(positions, fraction, labels, seed)
        if fast is not None:
            return fast
    # Imported here: scikit-learn pulls in scipy (seconds), and the server and predictor never split.
    from sklearn.model_selection import train_test_split

    try:
        kept, held_out = train_test_split(positions, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise DataError(
            f"cannot split {len(positions)} rows with fraction {fraction}: {exc}. Use more data or smaller data.split fractions."
        ) from None
    return np.sort(kept), np.sort(held_out)


def _stratified_cut(
    positions: np.ndarray, fraction: float, labels: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's stratified ``train_test_split``, the same draws in the same order, in numpy.

    sklearn gathers the chosen rows into a Python list one row at a time (about 1 s per call on a
    million rows); this keeps its algorithm and random stream (StratifiedShuffleSplit with
    ``RandomState(seed)``), so a seed selects exactly the rows it always did; tests/data compares
    the two. The permutation sklearn applies last only reorders rows, which the caller sorts anyway.
    None where sklearn would refuse the split: the caller then lets sklearn raise its own error.
    """
    if not 0 < fraction < 1:
        return None
    n_test = math.ceil(fraction * len(positions))
    n_train = len(positions) - n_test
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if n_train < len(classes) or n_test < len(classes) or counts.min() < 2:
        return None
    rows_by_class = np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    kept, held_out = [], []
    for rows, count, n_kept, n_held in zip(rows_by_class, counts, train_counts, test_counts, strict=True):
        shuffled = rows.take(rng.permutation(count), mode="clip")
        kept.append(shuffled[:n_kept])
        held_out.append(shuffled[n_kept : n_kept + n_held])
    return np.sort(positions[np.concatenate(kept)]), np.sort(positions[np.concatenate(held_out)])


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows per class for ``n_draws`` draws: scikit-learn's ``utils.extmath._approximate_mode``
    (BSD-3), step for step and with the same random draws for ties. Written out here because it is a
    private helper, and importing scikit-learn for it cost every 1M-row read ~1.6 s (scipy's import).
    """
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)  # never overshoots; the largest remainders get the rest
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            add_now = min(len(tied), need_to_add)
            floored[rng.choice(tied, size=add_now, replace=False)] += 1  # ties broken at random
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _infer_kind(target: pd.Series) -> TaskKind:
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "binary" if target.nunique() == 2 else "classification"
    values = target.to_numpy(dtype=float)
    whole = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    distinct = target.nunique()
    if distinct == 2:
        return "binary"
    return "classification" if whole and distinct <= MAX_AUTO_CLASSES else "regression"


def _require_complete_target(target: pd.Series) -> None:
    missing = np.flatnonzero(target.isna().to_numpy())
    if len(missing):
        rows = ", ".join(str(row + 1) for row in missing[:5])
        raise DataError(
            f"target column {target.name!r} has {len(missing)} missing values (data rows {rows}). "
            f"Remove those rows or run `forgeml check --fix`.",
            column=str(target.name),
            row=int(missing[0]) + 1,
        )


def _plain(value: object) -> str | int | float | bool:
    """A label as a JSON-friendly Python value (numpy scalars become int/float/bool)."""
    return value.item() if isinstance(value, np.generic) else value  # type: ignore[return-value]
