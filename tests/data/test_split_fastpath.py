"""The stratified split in numpy selects exactly the rows scikit-learn's train_test_split selects.

A seed must keep selecting the same test rows (``forgeml evaluate`` re-derives a run's test split
from its config), so the fast path is held to sklearn draw for draw, and it steps aside (None)
wherever sklearn refuses a split, leaving sklearn's error to be reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from forgeml.config import SplitConfig
from forgeml.data import RawData
from forgeml.data import split as split_module
from forgeml.data.split import TaskInfo, _stratified_cut, split_rows
from forgeml.errors import DataError


def labels_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    cases = {}
    for rows in (20, 57, 1000, 20_000):
        for classes in (2, 3, 7):
            labels = rng.integers(0, classes, rows)
            labels[: 2 * classes] = np.repeat(np.arange(classes), 2)
            cases[f"{rows} rows, {classes} classes"] = labels
    cases["text labels"] = np.array(["b", "a", "c"] * 100, dtype=object)
    cases["3% minority"] = np.where(rng.random(1000) < 0.03, "rare", "common").astype(object)
    cases["tiny"] = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    return cases


@pytest.mark.parametrize("labels", labels_cases().values(), ids=labels_cases().keys())
def test_same_rows_as_sklearn(labels: np.ndarray) -> None:
    positions = np.arange(len(labels)) * 3 + 5  # not 0..n-1: the second cut works on a subset
    for fraction in (0.15, 0.2, 0.5, 0.15 / 0.85, 0.9):
        for seed in (0, 1, 42):
            fast = _stratified_cut(positions, fraction, labels, seed)
            try:
                kept, held_out = train_test_split(
                    positions, test_size=fraction, random_state=seed, stratify=labels
                )
            except ValueError:
                assert fast is None, (fraction, seed)
                continue
            assert fast is not None, (fraction, seed)
            np.testing.assert_array_equal(fast[0], np.sort(kept))
            np.testing.assert_array_equal(fast[1], np.sort(held_out))


def test_split_rows_unchanged_end_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    rows = 3000
    raw = RawData(
        table=pd.DataFrame({"x": rng.normal(size=rows)}),
        images=None,
        target=pd.Series(rng.choice(["no", "yes", "maybe"], rows, p=[0.7, 0.25, 0.05]), name="y"),
        source="memory",
    )
    task = TaskInfo("classification", ("maybe", "no", "yes"))
    fast = split_rows(raw, SplitConfig(), task, seed=7)
    monkeypatch.setattr(split_module, "_stratified_cut", lambda *args: None)  # sklearn does it all
    slow = split_rows(raw, SplitConfig(), task, seed=7)
    for ours, theirs in zip(fast, slow, strict=True):
        pd.testing.assert_frame_equal(ours.table, theirs.table)
        pd.testing.assert_series_equal(ours.target, theirs.target)


def test_refused_split_still_raises_the_data_error() -> None:
    """One test row cannot hold three classes: sklearn refuses, and the user reads why."""
    raw = RawData(pd.DataFrame({"x": range(6)}), None, pd.Series([0, 0, 1, 1, 2, 2], name="y"), "memory")
    task = TaskInfo("classification", (0, 1, 2))
    with pytest.raises(DataError, match="cannot split 6 rows with fraction 0.15.*greater or equal"):
        split_rows(raw, SplitConfig(test=0.15, validation=0.15), task, seed=0)


def test_approximate_mode_matches_sklearns_private_helper() -> None:
    """forgeml's copy of ``_approximate_mode`` (so a split needs no scikit-learn import) draws alike."""
    from sklearn.utils.extmath import _approximate_mode as sklearns

    from forgeml.data.split import _approximate_mode

    rng = np.random.default_rng(7)
    for _ in range(300):
        counts = rng.integers(1, 6, rng.integers(2, 12)) * rng.choice([1, 1, 10])  # many ties
        draws = int(rng.integers(1, counts.sum()))
        seed = int(rng.integers(0, 1000))
        ours = _approximate_mode(counts, draws, np.random.RandomState(seed))
        theirs = sklearns(counts, draws, np.random.RandomState(seed))
        np.testing.assert_array_equal(ours, theirs)
        assert ours.sum() == draws
