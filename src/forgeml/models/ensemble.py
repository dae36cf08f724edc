"""A weighted ensemble behind the same call as every model: ``model(*inputs)`` -> raw outputs.

``model.type: auto`` trains several candidates and keeps a weighted average of some of them
(weights from greedy ensemble selection, :mod:`forgeml.training.ensemble_selection`). Each member is
a module taking the run's model inputs (the tree inputs: raw numbers with NaN, category ids) and
returning its own raw outputs; a network member carries its own preprocessing
(:class:`forgeml.bundle.inference.NetworkMember`), a booster reads the inputs as they are.

What is averaged is what a user reads: the members' *probabilities* (classification) or values
(regression), never their logits. The output is then put back in the units every model returns, so
the target decoder, evaluation, permutation importance and the Predictor need no branch:

* binary: ``logit(p)`` of the averaged probability ``p`` of ``labels[1]`` (the decoder's sigmoid gives ``p``);
* multiclass: ``log(p)`` of the averaged probabilities (the decoder's softmax of ``log p`` is ``p``,
  because ``p`` sums to 1);
* regression: the weighted mean of the standardized values.

The averaging runs in float64 and ``p`` is kept within ``[EPSILON, 1 - EPSILON]``, so the logit stays
finite (an infinite output would make ONNX Runtime and PyTorch differ by ``inf - inf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

EPSILON = 1e-7  # probabilities are kept this far from 0 and 1 (changes them by at most 1e-7)


class WeightedEnsemble(nn.Module):
    """The weighted average of ``members``' probabilities (or values), returned as raw outputs."""

    engine_name = "torch+lightgbm"

    def __init__(
        self,
        members: Sequence[nn.Module],
        weights: Sequence[float],
        *,
        names: Sequence[str],
        task: str,
        leaderboard: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        assert len(members) == len(weights) == len(names) > 0, "one weight and one name per member"
        self.members = nn.ModuleList(members)
        self.names = list(names)
        self.task = task
        # every candidate's row (trained or skipped) from training: validation loss, seconds, weight
        self.leaderboard = list(leaderboard or [])
        # candidates trained but given weight 0: never run by forward or in model.onnx; the bundle
        # keeps them so that the leaderboard can score every candidate on the test rows
        self.dropped: dict[str, nn.Module] = {}
        self.register_buffer("weights", torch.tensor(list(weights), dtype=torch.float64))

    def candidates(self) -> list[tuple[str, nn.Module, float]]:
        """Every trained candidate as (name, module, weight): the members, then those with weight 0."""
        members = zip(self.names, self.members, self.weights.tolist(), strict=True)
        return [*members, *((name, module, 0.0) for name, module in self.dropped.items())]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in the run's ``spec.names`` order -> ``(N, output_dim)`` float32 raw outputs."""
        return self.combine([member(*inputs) for member in self.members])

    def combine(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The members' raw outputs (each ``(N, output_dim)``) -> the ensemble's raw output."""
        total = None
        for index, output in enumerate(outputs):
            part = self.weights[index] * self._average_of(output.to(torch.float64))
            total = part if total is None else total + part
        assert total is not None
        if self.task == "regression":
            return total.to(torch.float32)
        probability = total.clamp(EPSILON, 1.0 - EPSILON)
        if self.task == "binary":
            return (torch.log(probability) - torch.log1p(-probability)).to(torch.float32)  # logit
        return torch.log(probability).to(torch.float32)

    def _average_of(self, output: torch.Tensor) -> torch.Tensor:
        """What is averaged: probabilities (of labels[1] for binary) or standardized values."""
        if self.task == "binary":
            return torch.sigmoid(output)
        if self.task == "classification":
            return torch.softmax(output, dim=1)
        return output
