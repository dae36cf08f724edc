"""Which table columns become features, and how string values are read before any encoding.

Two decisions live here so that training, evaluation, the Predictor and the server make them alike:

* **Spelling.** A string value is read with surrounding spaces trimmed, and a trimmed missing
  marker (:data:`~forgeml.data.csv_reader.MISSING_MARKERS`: ``""``, ``"?"``, ``"NA"``, ...) is a
  missing value, so ``" ?"`` is missing and ``" Private"`` is ``"Private"``. CSV files such as UCI
  Adult put a space after every comma; without this a category seen as ``" Private"`` in training
  would be unseen when a client sends ``"Private"``.
* **Leaving columns out.** A column that cannot generalise adds noise to every model: an identifier
  (the gate's own test, :func:`forgeml.checks.schema.profile_column`: unique integers in a dense or
  increasing run, or unique short strings without spaces) and free text with mostly unique values
  (names, tickets), which one-hot encoding would turn into its 100 most frequent values, each seen
  about once. Both are left out by default (``features.leave_out``) and reported, with the key that
  brings them back; a column listed in ``features.numeric_columns`` or ``categorical_columns`` is
  always used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from forgeml.checks.schema import profile_column
from forgeml.config import FeaturesConfig
from forgeml.data.csv_reader import MISSING_MARKERS

# Free text: a string column whose distinct values are at least this share of its present values.
# Titanic's Name is 1.0 and Ticket 0.76; the categorical columns of the tuning tables are all under 0.05.
FREE_TEXT_DISTINCT_SHARE = 0.5
FREE_TEXT_MIN_ROWS = 20  # fewer present values than this prove nothing about uniqueness
_MISSING = frozenset(MISSING_MARKERS)


@dataclass(frozen=True)
class ColumnPlan:
    """The input columns by kind, and those left out with the reason (a sentence naming the fix)."""

    numeric: list[str]
    categorical: list[str]
    left_out: dict[str, str] = field(default_factory=dict)


def spelled(value: object) -> str | None:
    """A string with surrounding spaces trimmed, or None when it (then) spells a missing value."""
    text = str(value).strip()
    return None if text in _MISSING else text


def clean_strings(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` with the string values of ``columns`` trimmed and missing markers made missing.

    Only object and string columns are touched (numbers are left as they are), and each distinct
    value is spelled once, so a million-row column with a few categories costs one factorize.
    The input frame is never modified; an unchanged frame is returned as it is.
    """
    changed: dict[str, pd.Series] = {}
    for column in columns:
        series = table[column]
        if not _holds_strings(series):
            continue
        codes, uniques = pd.factorize(series)
        if not len(uniques):
            continue
        cleaned = np.array(
            [spelled(value) if isinstance(value, str) else value for value in uniques], dtype=object
        )
        if all(a is b or a == b for a, b in zip(cleaned, uniques, strict=True)):
            continue
        changed[column] = pd.Series(np.append(cleaned, None)[codes], index=series.index, name=column)
    if not changed:
        return table
    table = table.copy(deep=False)
    for column, series in changed.items():
        table[column] = series
    return table


def plan_columns(table: pd.DataFrame, config: FeaturesConfig) -> ColumnPlan:
    """Numeric and categorical inputs: listed ones as told, the rest by their values; some left out.

    ``table`` has been through :func:`clean_strings`.
    """
    forced_numeric, forced_categorical = set(config.numeric_columns), set(config.categorical_columns)
    numeric, categorical, left_out = [], [], {}
    for column in map(str, table.columns):
        if column in config.exclude or column in config.text_columns:
            continue
        series = table[column]
        if column not in forced_numeric | forced_categorical:
            reason = _leave_out_reason(column, series, config.leave_out)
            if reason is not None:
                left_out[column] = reason
                continue
        is_number = _reads_as_numbers(series)
        if column in forced_numeric or (is_number and column not in forced_categorical):
            numeric.append(column)
        else:
            categorical.append(column)
    return ColumnPlan(numeric, categorical, left_out)


def _leave_out_reason(column: str, series: pd.Series, leave_out: list[str]) -> str | None:
    if "identifiers" in leave_out and _profile_kind(column, series) == "identifier":
        return (
            f"column {column!r} looks like an identifier (a distinct value on nearly every row): left out "
            "of the features, since a model would memorise it. To use it, list it in "
            "features.numeric_columns or features.categorical_columns."
        )
    if "free_text" in leave_out and _holds_strings(series):
        present = series.dropna()
        distinct = present.nunique()
        if len(present) >= FREE_TEXT_MIN_ROWS and distinct >= FREE_TEXT_DISTINCT_SHARE * len(present):
            return (
                f"column {column!r} looks like free text ({distinct} distinct values in {len(present)} rows): "
                "left out of the features rather than one-hot encoded into its most frequent values. To use "
                "it, list it in features.text_columns with a text model (model.type: bag_of_embeddings, "
                "text_cnn, transformer or pretrained)."
            )
    return None


def _profile_kind(column: str, series: pd.Series) -> str:
    """The gate's kind for the column (identifier, numeric, text, ...), from the same code."""
    if _holds_strings(series):
        values = pa.array(series.astype(object).where(series.notna(), None).tolist(), type=pa.string())
    elif pd.api.types.is_bool_dtype(series):
        return "boolean"
    elif pd.api.types.is_numeric_dtype(series):
        values = pa.array(series.to_numpy(dtype=np.float64, na_value=np.nan), from_pandas=True)
    else:
        return "other"
    return profile_column(column, pa.chunked_array([values])).kind


def _holds_strings(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def _reads_as_numbers(series: pd.Series) -> bool:
    """Numeric or boolean dtype. Strings stay categorical: reading mostly-number text is the reader's call."""
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
