import numpy as np
import pandas as pd
import pytest

from forgeml.config import DataConfig, SplitConfig
from forgeml.data import load_data
from forgeml.data.split import infer_task
from forgeml.errors import ConfigError, DataError


def test_split_is_repeatable_and_stratified() -> None:
    config = DataConfig(source="sklearn:iris", split=SplitConfig(validation=0.2, test=0.2))
    first, second = load_data(config, seed=3), load_data(config, seed=3)
    pd.testing.assert_frame_equal(first.test.table, second.test.table)
    assert len(first.train) + len(first.validation) + len(first.test) == 150
    assert first.test.target.value_counts().tolist() == [10, 10, 10]  # stratified: 10 of each class
    other = load_data(config, seed=4)
    assert not first.test.table.equals(other.test.table)


def test_no_row_lands_in_two_splits() -> None:
    splits = load_data(DataConfig(source="sklearn:wine"), seed=0)
    keys = [
        set(map(tuple, part.table.to_numpy().round(6)))
        for part in (splits.train, splits.validation, splits.test)
    ]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0, 1, 1, 0], "binary"),
        (["a", "b", "c", "a"], "classification"),
        ([0.5, 1.25, 3.0, 2.2], "regression"),
        (list(range(50)), "regression"),
        ([True, False, True, True], "binary"),
    ],
)
def test_task_inference(values: list, kind: str) -> None:
    assert infer_task(pd.Series(values, name="y"), "auto").kind == kind


def test_task_errors() -> None:
    with pytest.raises(DataError, match="missing values"):
        infer_task(pd.Series([1.0, np.nan, 0.0], name="y"), "auto")
    with pytest.raises(DataError, match="single class"):
        infer_task(pd.Series(["a", "a"], name="y"), "auto")
    with pytest.raises(ConfigError, match="data.task"):
        infer_task(pd.Series(["a", "b"], name="y"), "regression")
