"""Categorical columns: a vocabulary per column with an unknown bucket, as one-hot or as ids.

Index 0 of every vocabulary is the bucket for values unseen in training and for missing values,
so a category that appears only at prediction time predicts without error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import NotFittedError

UNKNOWN = "<unknown>"


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
        for column in self.columns:
            counts = as_category_strings(table[column]).value_counts(dropna=True)
            # Most frequent first; ties broken by the value so the vocabulary does not depend on row order.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            kept = [value for value, count in ranked if count >= self.min_frequency][: self.max_categories]
            self.vocabularies_[column] = [UNKNOWN, *sorted(kept)]
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Vocabulary size of each column, unknown bucket included."""
        self._require_fitted()
        return [len(self.vocabularies_[column]) for column in self.columns]

    def ids(self, table: pd.DataFrame) -> np.ndarray:
        """``(N, len(columns))`` int64 ids; unseen and missing values get 0."""
        self._require_fitted()
        ids = np.zeros((len(table), len(self.columns)), dtype=np.int64)
        for index, column in enumerate(self.columns):
            lookup = {value: position for position, value in enumerate(self.vocabularies_[column])}
            strings = as_category_strings(table[column])
            ids[:, index] = strings.map(lookup).fillna(0).to_numpy(dtype=np.int64)
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
        return features

    def _require_fitted(self) -> None:
        if not hasattr(self, "vocabularies_"):
            raise NotFittedError("CategoricalFeatures used before fit.")


def as_category_strings(series: pd.Series) -> pd.Series:
    """Values as strings, with whole floats written as ints ("3.0" -> "3") and missing kept missing.

    A column of small integers read from CSV is int64 in training but float64 at prediction time
    once a value is missing; both must map to the same category.
    """

    def text(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return series.astype(object).map(text)
