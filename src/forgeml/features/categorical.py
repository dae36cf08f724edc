"""Categorical columns: a vocabulary per column with an unknown bucket, as one-hot or as ids.

Index 0 of every vocabulary is the bucket for values unseen in training, for missing values and
for rare ones (seen in fewer than ``min_frequency`` training rows: a weight learnt from a handful
of rows is noise), so a category that appears only at prediction time predicts without error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from forgeml.errors import DataError, NotFittedError
from forgeml.features.columns import spelled

UNKNOWN = "<unknown>"
UnseenPolicy = Literal["unknown", "reject"]  # at prediction time: the unknown bucket, or a DataError


class CategoricalFeatures:
    """Maps each column's values to integer ids (0 = unknown); ``onehot`` expands ids to indicator columns."""

    def __init__(
        self,
        columns: list[str],
        *,
        encoding: str = "onehot",
        max_categories: int = 100,
        min_frequency: int = 1,
    ) -> None:
        self.columns = columns
        self.encoding = encoding
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def fit(self, table: pd.DataFrame) -> CategoricalFeatures:
        self.vocabularies_: dict[str, list[str]] = {}
        self.grouped_: dict[str, list[str]] = {}
        for column in self.columns:
            counts = category_counts(table[column])
            # Most frequent first; ties broken by the value so the vocabulary does not depend on row order.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            kept = [value for value, count in ranked if count >= self.min_frequency][: self.max_categories]
            self.vocabularies_[column] = [UNKNOWN, *sorted(kept)]
            # Rare values (and those past max_categories) share bucket 0 with unseen and missing ones,
            # as scikit-learn's infrequent category does; they are remembered so that a server that
            # rejects unseen categories still accepts a value it saw in training.
            self.grouped_[column] = sorted(set(counts) - set(kept))
        return self

    def lookup(self, column: str) -> dict[str, int]:
        """Value text -> id for ``column``: its vocabulary, plus grouped (rare) training values -> 0."""
        self._require_fitted()
        return vocabulary_lookup(self.vocabularies_[column]) | dict.fromkeys(self.grouped_.get(column, ()), 0)

    @property
    def cardinalities(self) -> list[int]:
        """Vocabulary size of each column, unknown bucket included."""
        self._require_fitted()
        return [len(self.vocabularies_[column]) for column in self.columns]

    def ids(self, table: pd.DataFrame, *, unseen: UnseenPolicy = "unknown") -> np.ndarray:
        """``(N, len(columns))`` int64 ids; missing values get 0, and so do unseen ones.

        ``unseen="reject"`` (prediction time, ``serve.unseen_category``) instead raises DataError
        naming the column, row and value of the first value not in the vocabulary.
        """
        self._require_fitted()
        ids = np.zeros((len(table), len(self.columns)), dtype=np.int64)
        for index, column in enumerate(self.columns):
            lookup = self.lookup(column)
            codes, spellings = factorized_strings(table[column])
            # One lookup per distinct value, then one gather: no Python call per row.
            known = np.fromiter((lookup.get(text, -1) for text in spellings), np.int64, len(spellings))
            if unseen == "reject":
                bad = np.flatnonzero((codes >= 0) & (np.append(known, 0)[codes] < 0))
                if len(bad):
                    row = int(bad[0])
                    raise unseen_error(column, row, spellings[codes[row]], lookup)
            ids[:, index] = np.append(np.maximum(known, 0), 0)[codes]  # missing (-1) and unseen -> 0
        return ids

    def one_hot(self, table: pd.DataFrame) -> np.ndarray:
        """``(N, sum(cardinalities))`` float32 indicators, one block per column."""
        ids = self.ids(table)
        blocks = [
            np.eye(size, dtype=np.float32)[ids[:, index]] for index, size in enumerate(self.cardinalities)
        ]
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(table), 0), dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "columns": self.columns,
            "encoding": self.encoding,
            "max_categories": self.max_categories,
            "min_frequency": self.min_frequency,
            "vocabularies": self.vocabularies_,
            "grouped": self.grouped_,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> CategoricalFeatures:
        features = cls(
            list(state["columns"]),
            encoding=state["encoding"],
            max_categories=state["max_categories"],
            min_frequency=state["min_frequency"],
        )
        features.vocabularies_ = {column: list(values) for column, values in state["vocabularies"].items()}
        # absent in bundles written before rare categories were grouped
        features.grouped_ = {column: list(values) for column, values in state.get("grouped", {}).items()}
        return features

    def _require_fitted(self) -> None:
        if not hasattr(self, "vocabularies_"):
            raise NotFittedError("CategoricalFeatures used before fit.")


def vocabulary_lookup(vocabulary: Sequence[str]) -> dict[str, int]:
    """Value text -> id; the unknown bucket (index 0) is not a value a request can name."""
    return {value: position for position, value in enumerate(vocabulary) if position > 0}


def unseen_error(column: str, row: int, value: object, lookup: Mapping[str, int]) -> DataError:
    """The error for a category not seen in training (``row`` 0-based); the server counts it by its wording."""
    known = ", ".join(list(lookup)[:10]) + (", ..." if len(lookup) > 10 else "")
    return DataError(
        f"column {column!r}, row {row + 1}: {value!r} was not seen in training (known: {known}). "
        "Send a known category, or serve with unseen_category=unknown to use the unknown bucket.",
        column=column,
        row=row + 1,
    )


def as_category_strings(series: pd.Series) -> pd.Series:
    """Values as strings, with whole floats written as ints ("3.0" -> "3"), trimmed, and missing kept missing.

    A column of small integers read from CSV is int64 in training but float64 at prediction time
    once a value is missing; both must map to the same category.
    """

    codes, spellings = factorized_strings(series)
    # No dtype: pandas infers it from the values, as Series.map did when this spelled every row.
    return pd.Series(np.append(spellings, None)[codes], index=series.index, name=series.name)


def factorized_strings(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` (N,) into ``spellings`` (the distinct values as :func:`as_category_strings` writes them); -1 = missing.

    Each distinct value is spelled once instead of once per row (a Python call per row cost about
    1 s per million rows). Two distinct values may share a spelling (1 and 1.0 in one column).
    Other dtypes (Python objects, dates) are spelled first and then factorized: objects that
    compare equal can spell differently (``True == 1``), and a missing date spells "NaT".
    """
    if not _factorizes_like_text(series.dtype):
        codes, uniques = pd.factorize(series.astype(object).map(_text))
        return codes, np.asarray(uniques, dtype=object)
    codes, uniques = pd.factorize(series)
    return codes, pd.Series(uniques).astype(object).map(_text).to_numpy(dtype=object)


def _factorizes_like_text(dtype: object) -> bool:
    """Numbers, booleans and (non-object) strings: equal values spell alike, and missing means None."""
    return not pd.api.types.is_object_dtype(dtype) and (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def category_counts(series: pd.Series) -> dict[str, int]:
    """How many rows hold each spelling (missing values not counted)."""
    codes, spellings = factorized_strings(series)
    counts: dict[str, int] = {}
    for text, count in zip(spellings, np.bincount(codes[codes >= 0], minlength=len(spellings)), strict=True):
        counts[text] = counts.get(text, 0) + int(count)
    return counts


def category_text(value: object) -> str | None:
    """One value's category spelling: whole floats as ints ("3.0" -> "3"), strings trimmed, missing as None.

    Training, ``Predictor.predict`` and the server's records all spell values here, so " Private"
    and "Private" are one category everywhere and " ?" is missing (see :mod:`forgeml.features.columns`).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return spelled(value)


_text = category_text
