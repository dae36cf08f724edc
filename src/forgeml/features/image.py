"""Image arrays ``(N, C, H, W)``: divided by a scale fitted on the training split."""

from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.errors import DataError, NotFittedError


class ImageFeatures:
    """Scales pixel values to about [0, 1]; checks that every image has the trained shape."""

    def __init__(self, *, scale: float | str = "auto") -> None:
        self.scale = scale

    def fit(self, images: np.ndarray) -> ImageFeatures:
        if self.scale == "auto":
            peak = float(np.max(images)) if images.size else 1.0
            self.scale_ = peak if peak > 1.0 else 1.0
        else:
            self.scale_ = float(self.scale)
        self.shape_ = tuple(int(size) for size in images.shape[1:])
        return self

    def transform(self, images: np.ndarray | None) -> np.ndarray:
        """``(N, C, H, W)`` float32."""
        if not hasattr(self, "scale_"):
            raise NotFittedError("ImageFeatures.transform called before fit.")
        if images is None:
            raise DataError(
                f"this model needs images of shape {self.shape_} (an .npz with an 'images' or 'x' array)."
            )
        if tuple(images.shape[1:]) != self.shape_:
            raise DataError(
                f"images have shape {tuple(images.shape[1:])} but the model was trained on {self.shape_} (C, H, W)."
            )
        if not np.all(np.isfinite(images)):
            row = int(np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))[0])
            raise DataError(f"image {row + 1} contains NaN or infinite pixel values.", row=row + 1)
        return (images / self.scale_).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale_, "shape": list(self.shape_)}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> ImageFeatures:
        features = cls(scale=state["scale"])
        features.scale_ = float(state["scale"])
        features.shape_ = tuple(state["shape"])
        return features
