"""The Predictor's output frame, built from blocks, equals the one pandas builds column by column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.bundle.predictor import classifier_frame


def reference(values: np.ndarray, probabilities: np.ndarray, labels: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(probabilities, columns=[f"probability_{label}" for label in labels])
    frame.insert(0, "prediction", values)
    return frame


@pytest.mark.parametrize(
    "labels",
    [tuple(range(10)), ("benign", "malignant"), (False, True), (0.5, 1.5, 2.5)],
    ids=["ints", "strings", "bools", "floats"],
)
@pytest.mark.parametrize("rows", [1, 256])
def test_same_frame_as_pandas_builds_by_columns(labels: tuple, rows: int) -> None:
    rng = np.random.default_rng(rows)
    probabilities = rng.dirichlet(np.ones(len(labels)), rows)
    values = np.asarray(labels, dtype=object)[probabilities.argmax(axis=1)]
    frame = classifier_frame(values, probabilities, labels)
    pd.testing.assert_frame_equal(frame, reference(values, probabilities, labels))
    assert frame["prediction"].dtype == pd.Series(values).dtype  # str for text labels, as pandas infers


def test_the_label_dtype_does_not_depend_on_which_labels_a_batch_holds() -> None:
    """Mixed labels stay objects even in a batch of text only (column by column, pandas made it str)."""
    labels = ("a", 1)
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]])
    values = np.array(["a", "a"], dtype=object)
    assert classifier_frame(values, probabilities, labels)["prediction"].dtype == np.dtype(object)
