"""What ``forgeml train`` returns, for every kind of model: one :class:`Run`, with the kind's extras.

A :class:`PredictorRun` carries the fitted features and the data splits that evaluation and
compression re-use; :class:`~forgeml.training.lm.LMRun` carries the tokenizer, chat template and the
before/after metrics of fine-tuning. Both write their bundle to ``<run folder>/bundle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from forgeml.config import Config
from forgeml.data import Splits
from forgeml.features import FeaturePipeline
from forgeml.training.loop import TrainResult

BUNDLE_DIR = "bundle"


@dataclass(frozen=True)
class Run:
    """A finished training run of any kind: its folder, config, trained model and the engine's result."""

    path: Path
    config: Config
    model: nn.Module
    result: TrainResult

    @property
    def bundle_path(self) -> Path:
        return self.path / BUNDLE_DIR

    def summary(self) -> str:
        """What the CLI prints when the run is done."""
        return f"trained in {self.result.seconds:.1f}s; run folder: {self.path}; bundle: {self.bundle_path}"


@dataclass(frozen=True)
class PredictorRun(Run):
    """A run of a model that maps rows to predictions: also its fitted features and data splits."""

    pipeline: FeaturePipeline
    splits: Splits
