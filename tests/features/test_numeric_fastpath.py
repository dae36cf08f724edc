"""``to_numbers`` converts the requested numeric columns of a wider table in one block.

The block path must give what the per-column path gives (values, column order, NaN for missing)
and must still leave bad cells to the per-column path, which names their column and row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.errors import DataError
from forgeml.features.numeric import NumericFeatures, _column_numbers, to_numbers


def per_column(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return np.stack([_column_numbers(table[column], column) for column in columns], axis=1)


def wide_table(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    floats = rng.normal(size=rows)
    floats[::7] = np.nan
    return pd.DataFrame(
        {
            "colour": rng.choice(["red", "blue"], rows),
            "f": floats,
            "i": rng.integers(-5, 5, rows),
            "n": pd.array(np.where(rng.random(rows) < 0.2, None, rng.integers(0, 3, rows)), dtype="Int64"),
            "b": rng.random(rows) < 0.5,
            "size": rng.choice(["s", "m"], rows),
        }
    )


@pytest.mark.parametrize("columns", [["f", "i", "n", "b"], ["b", "f"], ["i"]])
def test_block_of_a_wider_table_matches_per_column(columns: list[str]) -> None:
    table = wide_table()
    fast = to_numbers(table, columns)
    np.testing.assert_array_equal(fast, per_column(table, columns))
    assert fast.shape == (len(table), len(columns)) and fast.dtype == np.float64
    fast[:] = 0.0  # the caller's own copy, never a view of the table
    assert not (table["f"].fillna(1.0) == 0.0).all()


def test_infinity_in_a_wider_table_is_named() -> None:
    table = wide_table()
    table.loc[41, "f"] = -np.inf
    with pytest.raises(DataError, match=r"column 'f', row 42: infinite value") as caught:
        to_numbers(table, ["i", "f"])
    assert (caught.value.column, caught.value.row) == ("f", 42)


def test_text_among_the_columns_takes_the_checking_path() -> None:
    table = wide_table().assign(t=lambda frame: frame["i"].astype(str))
    np.testing.assert_array_equal(to_numbers(table, ["f", "t"]), per_column(table, ["f", "t"]))
    table.loc[3, "t"] = "four"
    with pytest.raises(DataError, match=r"column 't', row 4: 'four' is not a number"):
        to_numbers(table, ["f", "t"])


def test_missing_column_is_still_a_key_error_not_a_silent_block() -> None:
    with pytest.raises(KeyError):
        to_numbers(wide_table(), ["f", "absent"])


def test_fitted_statistics_are_bit_identical_to_the_per_column_path() -> None:
    """numpy sums a column-major column pairwise and a row-major one row by row: the block must be
    row-major like the loop's, or every bundle's means and stds would move in the last digit."""
    table = wide_table(rows=5000)
    columns = ["f", "i", "n", "b"]
    assert to_numbers(table, columns).flags.c_contiguous
    fitted = NumericFeatures(columns).fit(table)
    values = per_column(table, columns)  # row-major, as the loop writes it
    filled = np.where(np.isnan(values), fitted.fill_values_, values)
    assert fitted.means_.tobytes() == filled.mean(axis=0).tobytes()
    assert fitted.stds_.tobytes() == np.where(filled.std(axis=0) > 0, filled.std(axis=0), 1.0).tobytes()


@pytest.mark.parametrize("with_missing", [True, False])
def test_transform_matches_the_plain_formula_and_leaves_the_table_alone(with_missing: bool) -> None:
    table = wide_table(rows=3000)
    if not with_missing:  # the path that skips imputation
        table = table.assign(f=table["f"].fillna(0.5), n=table["n"].fillna(1))
    columns = ["f", "i", "n", "b"]
    before = table.copy()
    features = NumericFeatures(columns).fit(table)
    values = per_column(table, columns)
    expected = (
        (np.where(np.isnan(values), features.fill_values_, values) - features.means_) / features.stds_
    ).astype(np.float32)
    assert features.transform(table).tobytes() == np.ascontiguousarray(expected).tobytes()
    pd.testing.assert_frame_equal(table, before)


def test_text_numbers_blanks_and_bad_values() -> None:
    """A text column (how `forgeml predict` streams a CSV): blanks impute, the first bad value is named."""
    table = pd.DataFrame({"t": ["1.5", " ", "", None, "2", "x", "3", "y"]})
    with pytest.raises(
        DataError, match=r"column 't', row 6: 'x' is not a number \(2 such values\)"
    ) as caught:
        to_numbers(table, ["t"])
    assert caught.value.row == 6
    good = table["t"].where(~table["t"].isin(["x", "y"]), "")
    np.testing.assert_array_equal(
        to_numbers(good.to_frame(), ["t"])[:, 0], [1.5, np.nan, np.nan, np.nan, 2.0, np.nan, 3.0, np.nan]
    )
