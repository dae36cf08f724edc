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


def fit_features(train: RawData, config: FeaturesConfig, task: TaskInfo) -> FeaturePipeline:
    """A pipeline fitted on the training rows only (fit on train, apply everywhere)."""
    return FeaturePipeline(config, task).fit(train)
