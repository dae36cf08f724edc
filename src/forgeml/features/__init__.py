"""The features stage: fit transforms on the training split, apply them to any rows.

``fit_features(train, cfg, task)`` is the stage's public function; it returns a fitted
:class:`FeaturePipeline` whose JSON state travels in the bundle.
"""

from __future__ import annotations

from forgeml.config import FeaturesConfig
from forgeml.data import RawData, TaskInfo
from forgeml.features.pipeline import FeaturePipeline, InputSpec, ModelInputs
from forgeml.features.target import Decoded

__all__ = ["Decoded", "FeaturePipeline", "InputSpec", "ModelInputs", "fit_features"]


def fit_features(
    train: RawData, config: FeaturesConfig, task: TaskInfo, *, backbone: str | None = None
) -> FeaturePipeline:
    """A pipeline fitted on the training rows only (fit on train, apply everywhere).

    ``backbone`` names the pretrained vision model images are fitted for (``Config.image_backbone``):
    its input size and normalisation are read here and kept in the pipeline for the model and the bundle.
    """
    return FeaturePipeline(config, task, backbone=backbone).fit(train)
