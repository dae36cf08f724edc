"""Numeric columns: impute missing values, then scale each column; fitted on the training split only.

``impute="none"`` with ``scale="none"`` passes the raw values through with NaN kept: what
gradient-boosted trees read (they route missing values down a learned side of every split).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from forgeml.errors import DataError, NotFittedError
from forgeml.features.codes import code_values, indicators
from forgeml.features.scaling import choose_scaling, quantile_knots


class NumericFeatures:
    """Imputation, then per column an optional log and a scaling: standard, robust, quantile or none.

    ``scale="auto"`` chooses per column from the training values (:func:`choose_scaling`). Every
    column's transform is ``impute -> [log1p(max(x, 0))] -> (x - center) / scale -> [quantile map]``,
    where the quantile map is piecewise linear through fitted knots (``quantiles_``); the ONNX graph
    (:class:`forgeml.bundle.onnx_export.InferenceModule`) runs the same steps.

    ``integer_codes="auto"`` appends, after the scaled columns, one indicator per kept value of each
    integer-code column (:mod:`forgeml.features.codes`); :attr:`width` counts them.
    """

    def __init__(
        self,
        columns: list[str],
        *,
        impute: str = "median",
        scale: str = "standard",
        integer_codes: str = "none",
    ) -> None:
        self.columns = columns
        self.impute = impute
        self.scale = scale
        self.integer_codes = integer_codes

    @property
    def width(self) -> int:
        """Output columns: one per input column, plus the integer codes' indicators."""
        return len(self.columns) + sum(len(values) for values in self.codes_.values())

    def fit(self, table: pd.DataFrame, target: np.ndarray | None = None) -> NumericFeatures:
        """``target``: the encoded training target, which integer codes are judged against
        (:func:`~forgeml.features.codes.code_values`; none are found without it)."""
        values = to_numbers(table, self.columns)
        self.codes_: dict[int, np.ndarray] = {}
        if self.integer_codes == "auto" and target is not None:  # raw values: the steps below work in place
            found = {index: code_values(values[:, index], target) for index in range(len(self.columns))}
            self.codes_ = {index: kept for index, kept in found.items() if kept is not None}
        with np.errstate(all="ignore"):
            fill = {"median": np.nanmedian, "mean": np.nanmean}.get(self.impute)
            fills = fill(values, axis=0) if fill is not None and len(values) else np.zeros(len(self.columns))
        fills = np.where(np.isfinite(fills), fills, 0.0)  # an all-missing column imputes to 0
        if self.impute == "none":
            fills = np.full(len(self.columns), np.nan)  # NaN filled with NaN: missing values stay missing
        self.fill_values_ = fills
        choices = [choose_scaling(values[:, index], self.scale) for index in range(len(self.columns))]
        self.scalings_ = [choice.name for choice in choices]
        self.log_ = np.array([choice.log for choice in choices], dtype=bool)
        self.reasons_ = {
            column: choice.reason
            for column, choice in zip(self.columns, choices, strict=True)
            if choice.reason
        }
        filled = _log(_impute(values, fills), self.log_)
        standard = np.array([name == "standard" for name in self.scalings_], dtype=bool)
        # Whole-matrix means and stds (numpy sums a row-major matrix row by row: the same bits as
        # bundles written before per-column scaling), kept for the standard columns.
        centers = np.where(standard, filled.mean(axis=0), 0.0) if standard.any() else np.zeros(len(standard))
        scales = np.where(standard, filled.std(axis=0), 1.0) if standard.any() else np.ones(len(standard))
        self.quantiles_: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, name in enumerate(self.scalings_):
            column = filled[:, index]
            if name == "robust":
                scaler = RobustScaler().fit(column[:, None])
                centers[index], scales[index] = scaler.center_[0], scaler.scale_[0]
            elif name == "quantile":
                self.quantiles_[index] = quantile_knots(column)
        self.means_ = centers
        self.stds_ = np.where(scales > 0, scales, 1.0)  # a constant column scales to 0, not to NaN
        return self

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """``(N, len(columns))`` float32 matrix, ready for the model."""
        if not hasattr(self, "fill_values_"):
            raise NotFittedError("NumericFeatures.transform called before fit.")
        numbers = to_numbers(table, self.columns)
        check_scaled_range(self, numbers)
        codes = indicators(numbers, self.codes_) if self.codes_ else None  # before the in-place steps below
        filled = _log(_impute(numbers, self.fill_values_), self.log_)
        # In place on our own copy: the same arithmetic as (filled - means) / stds, two fewer
        # temporaries of the table's size.
        filled -= self.means_
        filled /= self.stds_
        for index, (knots, targets) in self.quantiles_.items():
            filled[:, index] = np.interp(filled[:, index], knots, targets)
        if codes is not None:
            return np.concatenate([filled.astype(np.float32), codes], axis=1)
        return filled.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "impute": self.impute,
            "scale": self.scale,
            "fill_values": [None if np.isnan(value) else value for value in self.fill_values_.tolist()],
            "means": self.means_.tolist(),
            "stds": self.stds_.tolist(),
            "scalings": self.scalings_,
            "log": self.log_.tolist(),
            "reasons": self.reasons_,
            "quantiles": {str(index): [k.tolist(), t.tolist()] for index, (k, t) in self.quantiles_.items()},
            "integer_codes": self.integer_codes,
            "codes": {str(index): values.tolist() for index, values in self.codes_.items()},
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> NumericFeatures:
        features = cls(
            list(state["columns"]),
            impute=state["impute"],
            scale=state["scale"],
            integer_codes=state.get("integer_codes", "none"),  # bundles written before integer codes
        )
        features.fill_values_ = np.asarray(state["fill_values"], dtype=np.float64)
        features.means_ = np.asarray(state["means"], dtype=np.float64)
        features.stds_ = np.asarray(state["stds"], dtype=np.float64)
        # Bundles written before per-column scaling: every column standard (or none), no log.
        count = len(features.columns)
        features.scalings_ = list(state.get("scalings", [state["scale"]] * count))
        features.log_ = np.asarray(state.get("log", [False] * count), dtype=bool)
        features.reasons_ = dict(state.get("reasons", {}))
        features.quantiles_ = {
            int(index): (np.asarray(knots, dtype=np.float64), np.asarray(targets, dtype=np.float64))
            for index, (knots, targets) in state.get("quantiles", {}).items()
        }
        features.codes_ = {
            int(index): np.asarray(values, dtype=np.float64)
            for index, values in state.get("codes", {}).items()
        }
        return features


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_scaled_range(features: NumericFeatures, numbers: np.ndarray) -> None:
    """Refuse a finite number that scaling turns into infinity (DataError naming its column and row).

    Scaling runs in float64 and the model reads float32: 1e308 divided by a small spread, or anything
    past 3.4e38, becomes inf, and the row's outputs NaN. log1p columns cannot overflow.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.abs((numbers - features.means_) / features.stds_)
    too_large = np.isfinite(numbers) & ~(scaled <= FLOAT32_MAX)
    too_large[:, features.log_] = False
    if not too_large.any():
        return
    row, index = (int(i) for i in np.argwhere(too_large)[0])
    column = features.columns[index]
    raise DataError(
        f"column {column!r}, row {row + 1}: {numbers[row, index]:g} is too large: scaled by the training "
        f"statistics it exceeds the largest 32-bit float (3.4e38), so the prediction would be NaN. "
        "Check the value and its unit.",
        column=column,
        row=row + 1,
    )


def _log(values: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``log1p(max(x, 0))`` on the chosen columns, in place (a value below the training minimum of 0 clips)."""
    if columns.any():
        values[:, columns] = np.log1p(np.maximum(values[:, columns], 0.0))
    return values


def _impute(values: np.ndarray, fills: np.ndarray) -> np.ndarray:
    """``values`` (a fresh matrix) with NaN replaced by its column's fill; itself when nothing is missing.

    ``np.where`` keeps the memory layout, so skipping it changes no later sum.
    """
    missing = np.isnan(values)
    return np.where(missing, fills, values) if missing.any() else values


def to_numbers(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The columns as a float64 matrix with NaN for missing; a value that is not a number is an error.

    Infinity is refused too: it would silently turn a whole batch's outputs into NaN.
    """
    block = _numeric_block(table, columns)
    if block is not None:
        # One conversion of the whole block: per-column Series access costs ~50 us a column in
        # pandas, which dominated single-row prediction, and a column-by-column copy of a million
        # rows costs ~15 ms a column. An infinity falls through to the loop, which names its column and row.
        matrix = block.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        if block is not table:
            # Row-major, as the loop below writes it: numpy sums a column-major column pairwise,
            # so the fitted means would move in the last digit against older bundles.
            matrix = np.ascontiguousarray(matrix)
        if not np.isinf(matrix).any():
            return matrix
    matrix = np.empty((len(table), len(columns)), dtype=np.float64)
    for index, column in enumerate(columns):
        matrix[:, index] = _column_numbers(table[column], column)
    return matrix


def _numeric_block(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame | None:
    """``table[columns]`` when every one is of numeric or boolean dtype, else None (the checking loop runs).

    A table holding exactly ``columns`` is used as it is: selecting costs more than a one-row predict.
    """
    if list(table.columns) == columns:
        selected = table
    elif table.columns.is_unique and set(columns) <= set(table.columns):
        selected = table[columns]  # copy-on-write: no data is copied here
    else:
        return None
    return selected if all(dtype.kind in "biuf" for dtype in selected.dtypes.values) else None


def _column_numbers(series: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = (
            series.astype("float64").to_numpy(na_value=np.nan)
            if series.hasnans
            else series.to_numpy(dtype=np.float64)
        )
    else:
        values = pd.to_numeric(series, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
        bad = np.flatnonzero(
            np.isnan(values) & series.notna().to_numpy() & (series.astype(str).str.strip() != "").to_numpy()
        )
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"column {column!r}, row {row + 1}: {series.iloc[row]!r} is not a number "
                f"({len(bad)} such value{'s' if len(bad) > 1 else ''}). Fix the value or leave it empty to impute it.",
                column=column,
                row=row + 1,
            )
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        row = int(infinite[0])
        raise DataError(
            f"column {column!r}, row {row + 1}: infinite value. Replace it with a finite number or leave it empty.",
            column=column,
            row=row + 1,
        )
    return values
