"""Slices: the headline metric on each value of a column, to find groups the model serves badly.

Categorical columns are sliced by value (the most frequent ones; the rest share "other"), numeric
columns with many values by quantile bins. A slice whose metric trails the overall one by more than
``evaluate.slice_gap`` is flagged. Small slices are noisy: the row count is shown beside every metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forgeml.errors import ConfigError
from forgeml.evaluation.metrics import headline_score

QUANTILE_BINS = 4
MAX_VALUES = 12  # distinct values shown per categorical column; the rest are grouped as "other"


@dataclass(frozen=True)
class Slice:
    """One group of rows: ``column == value`` (or in a bin), its size and headline metric."""

    column: str
    value: str
    rows: int
    metric: float | None  # None where undefined, e.g. R² of a single row
    gap: float | None  # overall - metric; positive means the slice is worse
    flagged: bool

    def to_json(self) -> dict[str, str | int | float | bool | None]:
        return {
            "column": self.column,
            "value": self.value,
            "rows": self.rows,
            "metric": self.metric,
            "gap": self.gap,
            "flagged": self.flagged,
        }


def slice_metrics(
    table: pd.DataFrame,
    columns: list[str],
    *,
    task: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    gap: float,
) -> tuple[Slice, ...]:
    """Slices of every column in ``columns``; ``truth``/``predicted`` are values or class indices."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ConfigError(
            f"evaluate.slices: column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in the "
            f"evaluation data. Columns are: {', '.join(map(str, table.columns[:20]))}.",
            key="evaluate.slices",
        )
    overall = headline_score(task, truth, predicted)
    found: list[Slice] = []
    for column in columns:
        groups = group_values(table[column])
        for value in groups.cat.categories if isinstance(groups.dtype, pd.CategoricalDtype) else []:
            members = (groups == value).to_numpy()
            if members.any():
                found.append(_one_slice(column, str(value), task, truth, predicted, members, overall, gap))
    return tuple(found)


def group_values(series: pd.Series) -> pd.Series:
    """A categorical series naming each row's group: a quantile bin, a value, "other" or "missing"."""
    if pd.api.types.is_numeric_dtype(series) and series.nunique() > MAX_VALUES:
        bins = pd.qcut(series, QUANTILE_BINS, duplicates="drop")
        return bins.cat.add_categories(["missing"]).fillna("missing").cat.remove_unused_categories()
    text = series.astype("string").fillna("missing")
    frequent = text.value_counts().index[:MAX_VALUES]
    grouped = text.where(text.isin(frequent), "other")
    return grouped.astype("category")


def _one_slice(
    column: str,
    value: str,
    task: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    members: np.ndarray,
    overall: float,
    gap: float,
) -> Slice:
    metric = headline_score(task, truth[members], predicted[members])
    if not np.isfinite(metric):
        return Slice(column, value, int(members.sum()), None, None, False)
    trail = overall - metric
    return Slice(column, value, int(members.sum()), metric, trail, trail > gap)
