"""Gradient-boosted trees (LightGBM) behind the same call as every network: ``model(*inputs)``.

The inputs are the fitted pipeline's tree inputs (``features.numeric.impute: none`` and ids for
categories, which gbm's kind rules set): ``numeric`` ``(N, F)`` float32 raw values with NaN for
missing, and ``categorical`` ``(N, K)`` int64 vocabulary ids (0 = the unknown bucket). The trees see
one float matrix, numeric columns first, with the id columns declared categorical to LightGBM.

:class:`GradientBoostedTrees` is an ``nn.Module`` with no parameters so that evaluation,
permutation importance, verify and the Predictor's non-ONNX engine call it exactly as they call a
network (one code path, no "is this a tree?" in each of them); its forward is the booster's own
``predict(raw_score=True)``. Its outputs are raw scores, as a network's are logits: the log-odds of
``labels[1]`` (binary), one score per class (softmax gives LightGBM's probabilities), or the
standardized value (regression), so the target encoder decodes both alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class GradientBoostedTrees(nn.Module):
    """A trained LightGBM booster taking the tree inputs; outputs ``(N, output_dim)`` float32 raw scores."""

    engine_name = "lightgbm"

    def __init__(self, booster: Any, *, numeric: int, categorical: int, output_dim: int) -> None:
        super().__init__()
        self.booster = booster
        self.numeric = numeric
        self.categorical = categorical
        self.output_dim = output_dim

    @classmethod
    def from_text(cls, text: str, *, numeric: int, categorical: int, output_dim: int) -> GradientBoostedTrees:
        """Rebuild from LightGBM's text model format (what ``model.txt`` in a bundle holds)."""
        import lightgbm

        return cls(
            lightgbm.Booster(model_str=text), numeric=numeric, categorical=categorical, output_dim=output_dim
        )

    def to_text(self) -> str:
        """LightGBM's own text format: every tree, readable, no pickle."""
        return str(self.booster.model_to_string())

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.raw_scores(tree_matrix(*(tensor.numpy() for tensor in inputs))))

    def raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        """``(N, output_dim)`` float32 raw scores of a :func:`tree_matrix`."""
        if not len(matrix):
            return np.zeros((0, self.output_dim), dtype=np.float32)
        scores = self.booster.predict(matrix, raw_score=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(matrix), self.output_dim)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """TreeSHAP values ``(N, output_dim, columns + 1)`` (LightGBM's ``pred_contrib``; last = expected value)."""
        values = np.asarray(self.booster.predict(matrix, pred_contrib=True), dtype=np.float64)
        return values.reshape(len(matrix), self.output_dim, matrix.shape[1] + 1)

    @property
    def categorical_indices(self) -> list[int]:
        """Columns of the tree matrix that hold category ids."""
        return list(range(self.numeric, self.numeric + self.categorical))

    @property
    def trees(self) -> int:
        return int(self.booster.num_trees())

    @property
    def leaves(self) -> int:
        """Leaves over all trees."""
        return sum(tree["num_leaves"] for tree in self.booster.dump_model()["tree_info"])


def tree_matrix(*blocks: np.ndarray) -> np.ndarray:
    """The model inputs as one ``(N, F + K)`` float64 matrix: float32 numbers widened, ids as numbers.

    Numbers pass through float32 first (training, LightGBM's predict and the ONNX graph all see the
    same float32 values; the ONNX tree operator compares in float32), so a split never lands
    differently in one engine than in another because of a rounding the other did not make.
    """
    columns = [
        np.asarray(block, dtype=np.float32).astype(np.float64).reshape(len(block), -1) for block in blocks
    ]
    return np.concatenate(columns, axis=1) if columns else np.zeros((0, 0))
