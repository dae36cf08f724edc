"""CategoricalFeatures.ids(unseen=...): the one category lookup training and prediction share."""

from __future__ import annotations

import pandas as pd
import pytest

from forgeml.errors import DataError
from forgeml.features.categorical import UNKNOWN, CategoricalFeatures


def test_unseen_values_go_to_the_unknown_bucket_or_are_refused() -> None:
    features = CategoricalFeatures(["city"]).fit(pd.DataFrame({"city": ["a", "b", "b"]}))
    table = pd.DataFrame({"city": ["b", None, "zzz"]})
    assert features.ids(table)[:, 0].tolist() == [2, 0, 0]
    with pytest.raises(
        DataError, match=r"column 'city', row 3: 'zzz' was not seen in training \(known: a, b\)"
    ):
        features.ids(table, unseen="reject")
    # missing is never "unseen"; the bucket's own name is not a category a row can name
    assert features.ids(table.iloc[:2], unseen="reject")[:, 0].tolist() == [2, 0]
    with pytest.raises(DataError, match="not seen in training"):
        features.ids(pd.DataFrame({"city": [UNKNOWN]}), unseen="reject")
