"""``to_numbers``: the one-block fast path and the per-column path agree, and both name bad cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.errors import DataError
from forgeml.features.numeric import to_numbers


def test_numeric_block_matches_per_column_conversion() -> None:
    table = pd.DataFrame(
        {"a": [1.5, np.nan, 3.0], "b": pd.array([1, None, 2], dtype="Int64"), "c": [True, False, True]}
    )
    fast = to_numbers(table, ["a", "b", "c"])  # exactly the table's numeric columns: one conversion
    slow = to_numbers(table.assign(extra="x"), ["a", "b", "c"])  # an extra column: column by column
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast[1], [np.nan, np.nan, 0.0])
    fast[0, 0] = 99.0  # the result is the caller's own copy, never a view of the table
    assert table.loc[0, "a"] == 1.5


@pytest.mark.parametrize("extra", [False, True])
def test_infinity_is_refused_with_its_column_and_row(extra: bool) -> None:
    table = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, np.inf]})
    if extra:
        table["note"] = "x"
    with pytest.raises(DataError, match=r"column 'b', row 2: infinite value") as caught:
        to_numbers(table, ["a", "b"])
    assert (caught.value.column, caught.value.row) == ("b", 2)


def test_text_in_a_numeric_column_is_named() -> None:
    table = pd.DataFrame({"a": ["1.0", "abc"]})
    with pytest.raises(DataError, match=r"column 'a', row 2: 'abc' is not a number"):
        to_numbers(table, ["a"])
