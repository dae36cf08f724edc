"""The image classifier's part of the model card: example test images per class, the most
confidently wrong ones, and integrated-gradient maps in colour over the image.

Every picture is a small PNG made with Pillow and inlined as a data URI (the card loads nothing).
Thumbnails keep the model's own pixels (what the decoder gave the network, at the model size), so a
reader sees what the model saw, not the original photo; the card's CSS scales them up without
smoothing. The maps reuse :func:`forgeml.evaluation.explain.integrated_gradients` (Captum, zero
baseline = a black image) on the images shown: |attribution| summed over the channels, drawn with the
"turbo" colour map (blue: nothing, red: most) over a grey copy of the image.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from forgeml.data import RawData
from forgeml.data.images import ImageFiles
from forgeml.evaluation.explain import SALIENCY_IMAGES, integrated_gradients
from forgeml.features import FeaturePipeline

PER_CLASS = 4  # example thumbnails per class
MAX_CLASSES = 24  # classes shown with examples (a 1,000-class card would weigh megabytes)
WRONG = 8  # most confidently wrong test images shown
THUMBNAIL = 96  # longest side in pixels at most: larger model sizes are scaled down
OVERLAY_ALPHA = 0.6  # opacity of the colour map over the grey image


@dataclass(frozen=True)
class Thumbnail:
    """One test image as a PNG data URI, with what the card says under it."""

    uri: str
    name: str  # the file name (image files) or "row N" (arrays)
    truth: str
    said: str
    probability: float  # of the class the model said

    @property
    def wrong(self) -> bool:
        return self.truth != self.said


@dataclass(frozen=True)
class Attributed:
    """A test image and its integrated-gradients map over it, both PNG data URIs."""

    image: Thumbnail
    overlay: str


@dataclass(frozen=True)
class ImageExamples:
    """What the card's image section shows; ``attribution_note`` says why there are no maps, if none."""

    per_class: tuple[tuple[str, tuple[Thumbnail, ...]], ...]
    classes: int  # how many classes the model has (``per_class`` shows at most MAX_CLASSES)
    wrong: tuple[Thumbnail, ...]
    attributed: tuple[Attributed, ...]
    method: str = ""
    attribution_note: str = ""


def image_examples(
    model: nn.Module,
    pipeline: FeaturePipeline,
    test: RawData,
    truth: np.ndarray,
    probabilities: np.ndarray,
    *,
    seed: int,
) -> ImageExamples | None:
    """The card's images for a classifier of images; None for other models or without test images.

    ``truth`` holds class indices and ``probabilities`` is ``(N, classes)``, both for ``test``.
    """
    if pipeline.image_ is None or test.images is None or len(test) == 0:
        return None
    labels = [str(label) for label in pipeline.task.labels]
    said = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(said != truth)
    wrong = wrong[np.argsort(-probabilities[wrong, said[wrong]], kind="stable")][:WRONG]
    examples = [(label, np.flatnonzero(truth == index)[:PER_CLASS]) for index, label in enumerate(labels)]
    examples = examples[:MAX_CLASSES]
    explained = _explained_rows(wrong, said, truth)
    shown = np.unique(np.concatenate([wrong, explained, *(rows for _, rows in examples)]).astype(int))
    pixels = dict(zip(shown.tolist(), _displayable(pipeline, test.images[shown]), strict=True))

    def thumbnail(row: int) -> Thumbnail:
        return Thumbnail(
            uri=png_uri(pixels[row]),
            name=_name(test, row),
            truth=labels[truth[row]],
            said=labels[said[row]],
            probability=float(probabilities[row, said[row]]),
        )

    found = integrated_gradients(model, pipeline, test.take(explained), seed=seed) if len(explained) else None
    maps = None if found is None else found.saliency
    attributed = (
        ()
        if maps is None
        else tuple(
            Attributed(thumbnail(row), png_uri(overlay(pixels[row], maps[index])))
            for index, row in enumerate(explained[: len(maps)])
        )
    )
    return ImageExamples(
        per_class=tuple((label, tuple(thumbnail(row) for row in rows)) for label, rows in examples),
        classes=len(labels),
        wrong=tuple(thumbnail(row) for row in wrong),
        attributed=attributed,
        method=found.method if found is not None else "",
        attribution_note=(found.not_computed if found is not None else "")
        or ("" if attributed else "No attributions: the model has no image input to take gradients of."),
    )


def _explained_rows(wrong: np.ndarray, said: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The rows to explain: the most confidently wrong first, then the first right ones (SALIENCY_IMAGES)."""
    right = np.flatnonzero(said == truth)
    return np.concatenate([wrong, right])[:SALIENCY_IMAGES].astype(int)


def _name(test: RawData, row: int) -> str:
    if isinstance(test.images, ImageFiles):
        return Path(test.images.paths[row]).name
    return f"row {row + 1}"


def _displayable(pipeline: FeaturePipeline, images: np.ndarray | ImageFiles) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 RGB (grey repeated) of the model's pixels, whatever the training scale."""
    assert pipeline.image_ is not None
    pixels = np.asarray(pipeline.image_.pixels(images))  # files: decoded exactly as in training
    if pixels.dtype != np.uint8:  # arrays on their training scale (digits: 0..16)
        scaled = np.nan_to_num(pixels.astype(np.float64) / float(pipeline.image_.scale_))
        pixels = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    if pixels.shape[1] == 1:
        pixels = np.repeat(pixels, 3, axis=1)
    return np.ascontiguousarray(np.moveaxis(pixels[:, :3], 1, -1))


def overlay(image: np.ndarray, attribution: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 turned grey, with ``attribution`` ``(H, W)`` >= 0 coloured over it.

    The map is scaled to its 99th percentile (one extreme pixel would leave the rest dark) and drawn
    with the "turbo" colour map at a fixed opacity: blue where nothing pushed, red where most did.
    """
    from matplotlib import colormaps

    top = float(np.percentile(attribution, 99))
    weight = np.clip(attribution / top, 0, 1) if top > 0 else np.zeros_like(attribution)  # (H, W)
    colour = colormaps["turbo"](weight)[..., :3] * 255  # (H, W, 3)
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # (H, W)
    blended = (1 - OVERLAY_ALPHA) * grey[..., None] + OVERLAY_ALPHA * colour
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def png_uri(pixels: np.ndarray) -> str:
    """``(H, W, 3)`` uint8 as a PNG data URI, scaled down to THUMBNAIL pixels on its longest side."""
    from PIL import Image

    image = Image.fromarray(pixels)  # (H, W, 3) uint8: RGB
    if max(image.size) > THUMBNAIL:
        image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
