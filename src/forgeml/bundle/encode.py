"""Raw rows to the arrays the inference graph takes, with the checks training's transform makes.

The graph (``model.onnx`` or :class:`~forgeml.bundle.onnx_export.InferenceModule`) does the
arithmetic itself: numeric imputation and scaling, one-hot expansion, image scaling. What is left
for the host is what ONNX cannot express well: looking each category up in its vocabulary,
tokenizing text columns with the fitted tokenizer (``text`` ids and ``text_mask``, ``(N, C, L)``
int64), and refusing values that are not numbers. Both entry points below produce the same arrays:
``encode_raw`` from a DataFrame (files, ``Predictor.predict``) using the training code's own helpers,
``RecordEncoder`` from validated JSON records (the server's hot path, no pandas per request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from forgeml.data import RawData
from forgeml.errors import DataError
from forgeml.features import FeaturePipeline
from forgeml.features.categorical import UnseenPolicy, category_text, unseen_error
from forgeml.features.numeric import check_scaled_range, to_numbers

Feeds = dict[str, np.ndarray]


def graph_input_names(pipeline: FeaturePipeline) -> tuple[str, ...]:
    """The raw inputs the inference graph takes, in order: numeric, categorical, image, text, text_mask."""
    names = []
    if pipeline.numeric_.columns:
        names.append("numeric")
    if pipeline.categorical_.columns:
        names.append("categorical")
    if pipeline.image_ is not None:
        names.append("image")
    if text_columns(pipeline):
        names += ["text", "text_mask"]
    return tuple(names)


def text_columns(pipeline: FeaturePipeline) -> list[str]:
    """The pipeline's text columns (none for bundles written before text support)."""
    text = getattr(pipeline, "text_", None)
    return list(text.columns) if text is not None else []


def encode_raw(pipeline: FeaturePipeline, raw: RawData, *, unseen: UnseenPolicy = "unknown") -> Feeds:
    """Graph inputs for ``raw``; raises DataError naming the column and row of the first bad value."""
    missing = [column for column in pipeline.input_columns if column not in raw.table.columns]
    if missing:
        raise DataError(
            f"missing input column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. The model was trained with them.",
            column=missing[0],
        )
    feeds: Feeds = {}
    if pipeline.numeric_.columns:
        feeds["numeric"] = to_numbers(raw.table, pipeline.numeric_.columns)
        check_scaled_range(pipeline.numeric_, feeds["numeric"])
    if pipeline.categorical_.columns:
        feeds["categorical"] = pipeline.categorical_.ids(raw.table, unseen=unseen)
    if pipeline.image_ is not None:
        feeds["image"] = check_images(pipeline, raw.images)
    if text_columns(pipeline):
        # The fitted tokenizer, exactly as training ran it: missing -> "", other values as str().
        feeds["text"], feeds["text_mask"] = pipeline.text_.encode(raw.table)
    return feeds


def image_dtype(pipeline: FeaturePipeline) -> type[np.generic]:
    """The graph's image input type: uint8 for a model trained on image files, float32 for arrays.

    Decoded files are 8-bit by construction, so their graph takes the decoder's bytes (4x fewer than
    float32) and divides in the graph; arrays from an ``.npz`` may hold any scale (digits: 0..16,
    floats already in 0..1), so their graph keeps float32, as every bundle before uint8 inputs did.
    """
    assert pipeline.image_ is not None
    return np.uint8 if getattr(pipeline.image_, "decode_", None) is not None else np.float32


def check_images(pipeline: FeaturePipeline, images: np.ndarray | None) -> np.ndarray:
    """Raw images ``(N, C, H, W)`` of the trained shape in :func:`image_dtype` (the graph scales them).

    For a model trained on files, pixels given as numbers (JSON, an array) must be whole numbers
    0..255, what the decoder gives: anything else never reached the model in training.
    """
    assert pipeline.image_ is not None
    shape = tuple(pipeline.image_.shape_)
    images = None if images is None else pipeline.image_.pixels(images)  # image files: decoded as in training
    if images is None:
        raise DataError(f"this model needs images of shape {shape} (an .npz with an 'images' or 'x' array).")
    if tuple(images.shape[1:]) != shape:
        raise DataError(
            f"images have shape {tuple(images.shape[1:])} but the model was trained on {shape} (C, H, W)."
        )
    if image_dtype(pipeline) is np.uint8:
        return images if images.dtype == np.uint8 else _as_bytes(images)
    bad = ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"image {row + 1} contains NaN or infinite pixel values.", row=row + 1)
    return np.ascontiguousarray(images, dtype=np.float32)


def _as_bytes(images: np.ndarray) -> np.ndarray:
    """Pixels given as numbers, as uint8; DataError naming the first image with a value that is not one.

    One cast and one comparison: no uint8 equals NaN, a fraction or a value outside 0..255, so every
    such pixel differs from its cast. Separate finite, range and whole-number checks took 70.5 ms
    against 24.5 ms for 64 RGB images of 224x224 (medians of 15, interleaved, on the loaded 2-core machine).
    """
    with np.errstate(invalid="ignore"):  # NaN and out-of-range casts are caught by the comparison
        pixels = np.ascontiguousarray(images, dtype=np.uint8)
    bad = (pixels != images).reshape(len(images), -1).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"image {row + 1}: this model was trained on 8-bit image files, so pixel values must be "
            "whole numbers 0..255 (not NaN); send the file itself to /v1/predict/image instead.",
            row=row + 1,
        )
    return pixels


class RecordEncoder:
    """Validated JSON records (dicts of floats/None, strings/ints/None, text, images) to graph inputs, fast."""

    def __init__(self, pipeline: FeaturePipeline, *, unseen: UnseenPolicy = "unknown") -> None:
        self.pipeline = pipeline
        self.unseen = unseen
        self.numeric_columns = list(pipeline.numeric_.columns)
        self.categorical_columns = list(pipeline.categorical_.columns)
        self.lookups = {column: pipeline.categorical_.lookup(column) for column in self.categorical_columns}
        self.text_columns = text_columns(pipeline)

    def encode(self, records: Sequence[Mapping[str, Any]], images: np.ndarray | None = None) -> Feeds:
        """Records already type-checked by the request schema; raises DataError for unseen categories."""
        feeds: Feeds = {}
        if self.numeric_columns:
            nan = float("nan")
            feeds["numeric"] = np.array(
                [[nan if (v := r.get(c)) is None else v for c in self.numeric_columns] for r in records],
                dtype=np.float64,
            ).reshape(len(records), len(self.numeric_columns))
            check_scaled_range(self.pipeline.numeric_, feeds["numeric"])
        if self.categorical_columns:
            feeds["categorical"] = self._ids(records)
        if self.pipeline.image_ is not None:
            feeds["image"] = check_images(self.pipeline, images)
        if self.text_columns:
            feeds["text"], feeds["text_mask"] = self._texts(records)
        return feeds

    def _texts(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """``(N, C, L)`` token ids and mask; the schema has checked each value is a string or null."""
        text = self.pipeline.text_
        ids = np.zeros((len(records), len(self.text_columns), text.length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for index, column in enumerate(self.text_columns):
            values = [record.get(column) for record in records]
            for row, value in enumerate(values):
                if value is not None and not isinstance(value, str):
                    raise DataError(
                        f"text column {column!r}, row {row + 1}: expected a string, got {type(value).__name__}.",
                        column=column,
                        row=row + 1,
                    )
            texts = ["" if value is None else value for value in values]
            ids[:, index], mask[:, index] = text.encode_texts(texts, column)
        return ids, mask

    def _ids(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        ids = np.zeros((len(records), len(self.categorical_columns)), dtype=np.int64)
        for row, record in enumerate(records):
            for index, column in enumerate(self.categorical_columns):
                text = category_text(record.get(column))
                if text is None:
                    continue
                found = self.lookups[column].get(text)
                if found is None and self.unseen == "reject":
                    raise unseen_error(column, row, record.get(column), self.lookups[column])
                ids[row, index] = found or 0
        return ids
