"""The Predictor: a bundle's model behind the same preprocessing that training ran.

``forgeml predict``, the Python API (``forgeml.load(bundle).predict(rows)``) and the server all go
through this class, so they cannot disagree with each other or with evaluation. It runs ONNX
Runtime when the bundle holds ``model.onnx`` and PyTorch otherwise; both engines take the same
raw inputs and do imputation, scaling and one-hot expansion inside the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # pandas >= 3.0: a frame from ready-made blocks, without per-column inference
    from pandas.api.internals import create_dataframe_from_blocks
except ImportError:  # pragma: no cover - older pandas builds the frame column by column
    create_dataframe_from_blocks = None

from forgeml.bundle.encode import Feeds, UnseenPolicy, encode_raw
from forgeml.bundle.engine import Engine, make_engine
from forgeml.bundle.predictive import Bundle, read_predictor_bundle
from forgeml.data import RawData, load_source
from forgeml.data.images import EXCLUDE_FILE, EXTENSIONS, ImageFiles, read_exclusions
from forgeml.errors import DataError

PREDICTION_COLUMN = "prediction"
FILE_COLUMN = "file"


class Predictor:
    """Turns raw rows (a DataFrame, a list of records, or images) into predictions."""

    def __init__(
        self,
        bundle: Bundle,
        *,
        engine: str = "auto",
        threads: int = 0,
        unseen: UnseenPolicy = "unknown",
        spinning: bool = True,
    ) -> None:
        self.bundle = bundle
        self.pipeline = bundle.pipeline
        self.unseen = unseen
        self.engine: Engine = make_engine(bundle, engine, threads=threads, spinning=spinning)

    @classmethod
    def from_bundle(cls, path: str | Path, **options: Any) -> Predictor:
        """``options``: ``engine`` ("auto", "onnx", "torch"), ``threads``, ``unseen``, ``spinning``."""
        return cls(read_predictor_bundle(path), **options)

    @property
    def labels(self) -> tuple[Any, ...]:
        return self.pipeline.task.labels

    @cached_property
    def label_names(self) -> list[str]:
        """The labels as JSON keys (the server's ``probabilities``)."""
        return [str(label) for label in self.labels]

    def predict(
        self, rows: pd.DataFrame | Sequence[dict[str, Any]] | np.ndarray | RawData | str | Path
    ) -> pd.DataFrame:
        """One output row per input row: ``prediction`` plus ``probability_<label>`` for classifiers.

        A path (``str`` or ``Path``) is read as ``forgeml predict`` reads it (:func:`read_rows`): a
        folder of images or a table of image paths then gives a first column ``file``, the file each
        row is for.
        """
        if isinstance(rows, str | Path):
            rows = read_rows(rows, self.bundle.manifest["task"].get("target"), images=self.pipeline.image_)
        raw = as_raw(rows)
        if len(raw) == 0:
            return pd.DataFrame({PREDICTION_COLUMN: []})
        predictions = self.frame(self.raw_outputs(raw))
        if isinstance(raw.images, ImageFiles):  # which file each prediction is for
            predictions.insert(0, FILE_COLUMN, list(raw.images.paths))
        return predictions

    def raw_outputs(self, raw: RawData) -> np.ndarray:
        """The model's raw outputs ``(N, output_dim)`` (logits or standardized values), as float32."""
        return check_finite_outputs(self.run(self.encode(raw)))

    def encode(self, raw: RawData) -> Feeds:
        """Graph inputs for ``raw``; bad values raise DataError before anything reaches the model."""
        return encode_raw(self.pipeline, raw, unseen=self.unseen)

    def run(self, feeds: Feeds) -> np.ndarray:
        return self.engine.run(feeds)

    def frame(self, outputs: np.ndarray) -> pd.DataFrame:
        """Decoded predictions (and class probabilities) for raw outputs."""
        decoded = self.pipeline.target_.decode(outputs)
        if decoded.probabilities is None:
            return pd.DataFrame({PREDICTION_COLUMN: decoded.values})
        return classifier_frame(decoded.values, decoded.probabilities, self.labels)


def check_finite_outputs(outputs: np.ndarray) -> np.ndarray:
    """``outputs`` when every value is finite; else DataError naming the first row (NaN is not JSON,
    and in a CSV it is an empty cell: a prediction is a number or an error, never silently missing)."""
    finite = np.isfinite(outputs)
    if finite.all():
        return outputs
    row = int(np.flatnonzero(~finite.all(axis=1))[0])
    raise DataError(
        f"row {row + 1}: the model's output is not a finite number (NaN or infinity), so there is no "
        "prediction or probability to report. Check that row's values for extreme magnitudes.",
        row=row + 1,
    )


def classifier_frame(values: np.ndarray, probabilities: np.ndarray, labels: tuple[Any, ...]) -> pd.DataFrame:
    """``prediction`` (labels, dtype as pandas infers it for them) then ``probability_<label>`` columns.

    Built from its two blocks in one step: inserting the label column into a frame of
    probabilities cost ~1.4 ms per batch once the model call had evicted pandas from the CPU caches
    (0.66 ms this way), 7% of the document CNN's 256-row batch.
    """
    columns, dtype = _frame_layout(labels, tuple(type(label) for label in labels))
    rows = len(values)
    if create_dataframe_from_blocks is None:  # pandas < 3.0
        frame = pd.DataFrame(probabilities, columns=columns[1:], copy=False)
        frame.insert(0, PREDICTION_COLUMN, values)
        return frame
    label_block = values.reshape(1, rows) if dtype is None else pd.array(values, dtype=dtype)
    blocks = [(label_block, _FIRST), (probabilities.T, np.arange(1, len(columns)))]
    return create_dataframe_from_blocks(blocks, pd.RangeIndex(rows), columns)


@lru_cache(maxsize=64)
def _frame_layout(labels: tuple[Any, ...], _types: tuple[type, ...]) -> tuple[pd.Index, object]:
    """The frame's columns, and the labels' dtype when pandas would not keep them as objects (str).

    ``_types`` is there for the cache key only: ``(0, 1) == (False, True)``, so a process that had
    predicted with a 0/1 model handed a True/False model the columns ``probability_0``, ``probability_1``.
    """
    columns = pd.Index([PREDICTION_COLUMN, *(f"probability_{label}" for label in labels)])
    inferred = pd.Series(np.asarray(labels, dtype=object)).dtype
    return columns, None if inferred == np.dtype(object) else inferred


_FIRST = np.array([0])


def read_rows(source: str | Path, target: str | None, *, images: object | None = None) -> RawData:
    """The rows of a file or folder to predict, without labels (any target column is dropped).

    For a model trained on images (``images`` is its fitted image features), a folder gives every
    image file under it at any depth, sorted by path: new photos in one flat folder, or a labelled
    folder of class subfolders alike (files listed in its ``forgeml-exclude.txt`` left out). Anything
    else goes through the training reader (``load_source``): tables, tables of image paths, ``.npz``.
    """
    if images is not None and Path(source).is_dir():
        return RawData(pd.DataFrame(), image_files(Path(source)), None, str(source))
    return load_source(str(source), target, require_target=False)


def image_files(folder: Path) -> ImageFiles:
    """Every image file under ``folder`` (sorted; hidden folders skipped), or DataError naming it."""
    excluded = read_exclusions(folder / EXCLUDE_FILE, folder)
    paths = [
        str(path)
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
        and str(path.resolve()) not in excluded
    ]
    if not paths:
        raise DataError(
            f"{folder}: no image files ({', '.join(EXTENSIONS)}) in this folder or its subfolders.",
            path=str(folder),
        )
    return ImageFiles(tuple(paths), str(folder))


def as_raw(rows: pd.DataFrame | Sequence[dict[str, Any]] | np.ndarray | RawData) -> RawData:
    if isinstance(rows, RawData):
        return rows
    if isinstance(rows, np.ndarray):
        if rows.ndim < 3:
            raise DataError(
                f"an array passed to predict must hold images (N, C, H, W) or (N, H, W); got shape {rows.shape}."
            )
        images = rows[:, None] if rows.ndim == 3 else rows
        return RawData(pd.DataFrame(index=range(len(images))), images.astype(np.float32), None, "array")
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
    return RawData(frame.reset_index(drop=True), None, None, "records")
