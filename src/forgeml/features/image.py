"""Images ``(N, C, H, W)``: arrays from an ``.npz``, or image files decoded at the fitted size.

Pixel values are divided by a scale fitted on the training split (255 for image files). For files,
the decoding options (size, resize policy, channels) are fitted here and saved with the pipeline, so
evaluation, ``forgeml predict`` and the server decode with exactly the options training used.

8-bit pixels on the scale 255 (every decoded folder) are not divided here: :meth:`ImageFeatures.transform`
hands the uint8 array on as it is (for files, the memory-mapped cache), and :func:`scale_pixels` divides
each batch where it is cut (the training step, validation, ``predict_outputs``). A split is then never
held as float32 (4 bytes a pixel) in memory, so a folder larger than RAM trains with flat memory
(tests/data/test_images_memory.py measures it).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from forgeml.config import ImageConfig
from forgeml.data.images import DecodeOptions, ImageFiles, cache_folder, decode_files, grey_only
from forgeml.errors import DataError, NotFittedError

Images = np.ndarray | ImageFiles
# A uint8 image tensor always holds pixels 0..255 that the model takes divided by this.
PIXEL_PEAK = 255.0
# float32 input bytes of one inference batch (batch_rows): 21 RGB images at 128x128, 1,024 digits
BATCH_BYTES = 4 * 2**20


def scale_pixels(tensor: torch.Tensor) -> torch.Tensor:
    """A batch of one input as the model takes it: uint8 pixels -> float32 in [0, 1]; other dtypes as they are.

    Called on each batch after it is cut from the split, so only a batch is ever float32. The
    division is the one the exported graph does (``InferenceModule``), value for value.
    """
    if tensor.dtype != torch.uint8:
        return tensor
    return tensor.to(torch.float32).div_(PIXEL_PEAK)


def pixel_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``pixels`` as a tensor sharing its memory, also when it is the read-only mapped cache.

    torch warns on wrapping a read-only array because writing through the tensor would crash;
    nothing writes to model inputs in place (batches are cut and converted into new tensors),
    so the warning is silenced here, for this array only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(pixels)


def batch_rows(inputs: tuple[torch.Tensor, ...], most: int) -> int:
    """Rows per inference batch: ``most``, fewer when a row is large, so one batch's float32 inputs
    stay near :data:`BATCH_BYTES`.

    Evaluation used 1,024 rows a batch whatever a row was: for 128x128 RGB images that is 200 MB of
    float input and 2 GB in the default CNN's first convolution output; before this cap the
    anonymous memory peak of tests/data/test_images_memory.py grew by 192 MiB between a 180- and a
    720-image folder (a 4-channel CNN), after it by 1 to 8 MiB. Rows of tables and token ids are
    small, so they keep ``most``.
    """
    row_bytes = sum(4 * tensor[:1].numel() for tensor in inputs)
    return max(1, min(most, BATCH_BYTES // max(1, row_bytes)))


class ImageFeatures:
    """Scales pixel values to about [0, 1]; checks that every image has the trained shape."""

    def __init__(
        self,
        *,
        scale: float | str = "auto",
        size: int | list[int] = 64,
        resize: str = "crop",
        channels: int | str = "auto",
        cache: bool = True,
    ) -> None:
        self.scale = scale
        self.size = size
        self.resize = resize
        self.channels = channels
        self.cache = cache

    @classmethod
    def from_config(cls, config: ImageConfig) -> ImageFeatures:
        return cls(
            scale=config.scale,
            size=config.size,
            resize=config.resize,
            channels=config.channels,
            cache=config.cache,
        )

    def fit(self, images: Images) -> ImageFeatures:
        self.decode_: DecodeOptions | None = None
        if isinstance(images, ImageFiles):
            height, width = (self.size, self.size) if isinstance(self.size, int) else self.size[:2]
            channels = self.channels if self.channels != "auto" else (1 if grey_only(images) else 3)
            self.decode_ = DecodeOptions(int(height), int(width), int(channels), self.resize)
            self.scale_ = 255.0 if self.scale == "auto" else float(self.scale)
            self.shape_ = (int(channels), int(height), int(width))
            return self
        if self.scale == "auto":
            peak = float(np.max(images)) if images.size else 1.0
            self.scale_ = peak if peak > 1.0 else 1.0
        else:
            self.scale_ = float(self.scale)
        self.shape_ = tuple(int(size) for size in images.shape[1:])
        return self

    def pixels(self, images: Images) -> np.ndarray:
        """Raw pixels ``(N, C, H, W)``: arrays as they are, files decoded with the fitted options."""
        if not isinstance(images, ImageFiles):
            return images
        if getattr(self, "decode_", None) is None:
            raise DataError(
                f"{images.source}: this model was trained on image arrays of shape {self.shape_}, not image "
                "files. Pass an .npz of arrays."
            )
        assert self.decode_ is not None
        cache = cache_folder() if self.cache else None
        return decode_files(images, self.decode_, cache=cache)

    def transform(self, images: Images | None) -> np.ndarray:
        """``(N, C, H, W)`` float32 divided by the scale, or uint8 pixels when the scale is 255.

        The uint8 array is the decoded cache itself (memory-mapped, nothing copied); batches cut from
        it go through :func:`scale_pixels` before the model.
        """
        if not hasattr(self, "scale_"):
            raise NotFittedError("ImageFeatures.transform called before fit.")
        if images is None:
            raise DataError(
                f"this model needs images of shape {self.shape_} (an .npz with an 'images' or 'x' array, "
                "or a folder of image files)."
            )
        images = self.pixels(images)
        if tuple(images.shape[1:]) != self.shape_:
            raise DataError(
                f"images have shape {tuple(images.shape[1:])} but the model was trained on {self.shape_} (C, H, W)."
            )
        if images.dtype == np.uint8 and self.scale_ == PIXEL_PEAK:  # finite by construction
            return images
        if images.dtype == np.uint8:  # another scale set by hand: divide here, in 64-row blocks
            out = np.empty(images.shape, dtype=np.float32)
            for start in range(0, len(images), 64):
                np.divide(images[start : start + 64], np.float32(self.scale_), out=out[start : start + 64])
            return out
        if not np.all(np.isfinite(images)):
            row = int(np.flatnonzero(~np.isfinite(images.reshape(len(images), -1)).all(axis=1))[0])
            raise DataError(f"image {row + 1} contains NaN or infinite pixel values.", row=row + 1)
        return (images / self.scale_).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        decode = getattr(self, "decode_", None)
        state: dict[str, Any] = {"scale": self.scale_, "shape": list(self.shape_)}
        if decode is not None:
            state["decode"] = decode.to_json() | {"cache": self.cache}
        return state

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> ImageFeatures:
        features = cls(scale=state["scale"])
        features.scale_ = float(state["scale"])
        features.shape_ = tuple(state["shape"])
        decode = dict(state.get("decode") or {})  # absent for array-trained models and older bundles
        features.cache = bool(decode.pop("cache", False))
        features.decode_ = DecodeOptions(**decode) if decode else None
        return features
