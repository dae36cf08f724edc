"""The categorical fast path (each distinct value spelled once) equals spelling every row.

``as_category_strings``, ``CategoricalFeatures.fit`` and ``.ids`` used to call a Python function per
row; they now factorize first. These tests hold them to the per-row reference on every dtype a
table can carry, including the ones that must keep the per-row path (objects, dates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.features.categorical import UNKNOWN, CategoricalFeatures, as_category_strings


def spelled_per_row(value: object) -> object:
    """The reference: the per-row spelling the fast path must reproduce."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def reference_strings(series: pd.Series) -> pd.Series:
    return series.astype(object).map(spelled_per_row)


SERIES = {
    "str with missing": pd.Series(["a", None, "b", "a"]),
    "float whole and not": pd.Series([1.0, np.nan, 2.5, 3.0, -0.0, 0.0, 1e20, np.inf]),
    "int": pd.Series([3, 1, 2, 3]),
    "bool": pd.Series([True, False, True]),
    "object mixing 1, 1.0 and True": pd.Series([True, 1, 1.0, "1", None, np.nan], dtype=object),
    "nullable int": pd.Series([1, None, 3], dtype="Int64"),
    "nullable bool": pd.Series([True, None], dtype="boolean"),
    "string[python]": pd.Series(["a", None], dtype="string"),
    "categorical": pd.Series(pd.Categorical(["x", None, "y", "x"])),
    "dates with NaT": pd.Series(pd.to_datetime(["2020-01-01", None])),
    "all missing float": pd.Series([np.nan, np.nan]),
    "empty": pd.Series([], dtype=float),
    "named with an index": pd.Series(["a", "b"], index=[5, 7], name="colour"),
}


@pytest.mark.parametrize("series", SERIES.values(), ids=SERIES.keys())
def test_as_category_strings_matches_per_row_spelling(series: pd.Series) -> None:
    fast, reference = as_category_strings(series), reference_strings(series)
    assert fast.dtype == reference.dtype
    assert fast.index.equals(reference.index) and fast.name == reference.name
    assert fast.tolist() == reference.tolist() or fast.equals(reference)


def reference_fit_and_ids(frame: pd.DataFrame, columns: list[str], **options: int) -> tuple[dict, np.ndarray]:
    """The old implementation: value_counts and Series.map over the per-row spellings."""
    vocabularies, ids = {}, np.zeros((len(frame), len(columns)), dtype=np.int64)
    for index, column in enumerate(columns):
        counts = reference_strings(frame[column]).value_counts(dropna=True)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [value for value, count in ranked if count >= options["min_frequency"]]
        vocabularies[column] = [UNKNOWN, *sorted(kept[: options["max_categories"]])]
        lookup = {value: position for position, value in enumerate(vocabularies[column])}
        ids[:, index] = reference_strings(frame[column]).map(lookup).fillna(0).to_numpy(dtype=np.int64)
    return vocabularies, ids


@pytest.mark.parametrize(
    "options", [{"min_frequency": 1, "max_categories": 100}, {"min_frequency": 3, "max_categories": 4}]
)
def test_fit_and_ids_match_the_per_row_reference(options: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    rows = 2000
    floats = rng.integers(0, 6, rows).astype(float)
    floats[rng.random(rows) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "colour": pd.Series(rng.choice(["red", "green", "blue", "teal", "x"], rows)).where(
                rng.random(rows) > 0.05
            ),
            "whole_floats": floats,
            "ints": rng.integers(0, 9, rows),
            "mixed": pd.Series(rng.choice([1, 1.0, True, "1", None, "b"], rows), dtype=object),
            "dates": pd.Series(pd.to_datetime(rng.choice(["2020-01-01", "2021-06-30", None], rows))),
        }
    )
    columns = list(frame.columns)
    features = CategoricalFeatures(columns, **options).fit(frame)
    vocabularies, ids = reference_fit_and_ids(frame, columns, **options)
    assert features.vocabularies_ == vocabularies
    np.testing.assert_array_equal(features.ids(frame), ids)
    # Rows seen only at prediction time, and missing values, go to the unknown bucket (0).
    unseen = pd.DataFrame(
        {"colour": ["purple", None], "whole_floats": [99.0, np.nan], "ints": [42, 42], "mixed": [False, None]}
        | {"dates": pd.to_datetime(["1999-01-01", None])}
    )
    assert features.ids(unseen)[:, :4].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_int_training_column_and_float_prediction_column_share_ids() -> None:
    """Why whole floats spell as ints: a column read as int64 in training is float64 once a value is missing."""
    features = CategoricalFeatures(["rooms"]).fit(pd.DataFrame({"rooms": [1, 2, 3, 2]}))
    at_prediction = pd.DataFrame({"rooms": [2.0, np.nan, 3.0]})
    assert features.ids(at_prediction)[:, 0].tolist() == [
        features.vocabularies_["rooms"].index("2"),
        0,
        features.vocabularies_["rooms"].index("3"),
    ]
