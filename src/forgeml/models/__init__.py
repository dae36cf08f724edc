"""The models stage: a name -> class registry and ``build_model``.

Every model takes ``(config, spec, output_dim)`` and its ``forward`` takes the inputs named by
``spec.names`` in that order, so the loop, the bundle and ONNX export treat all models alike.
"""

from __future__ import annotations

import torch
from torch import nn

from forgeml.config import ModelConfig
from forgeml.features import InputSpec
from forgeml.models.cnn import CNN
from forgeml.models.mlp import MLP

MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN}

__all__ = ["CNN", "MLP", "MODELS", "build_model", "count_parameters", "predict_outputs"]


def build_model(config: ModelConfig, spec: InputSpec, output_dim: int) -> nn.Module:
    """A freshly initialised model of ``config.type`` (seed torch first for repeatable weights)."""
    return MODELS[config.type](config, spec, output_dim)  # type: ignore[call-arg]


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


@torch.inference_mode()
def predict_outputs(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], *, batch_size: int = 1024
) -> torch.Tensor:
    """Raw outputs ``(N, output_dim)`` in eval mode, in large batches (no gradients kept)."""
    was_training = model.training
    model.eval()
    try:
        total = len(inputs[0])
        outputs = [
            model(*(tensor[start : start + batch_size] for tensor in inputs))
            for start in range(0, total, batch_size)
        ]
        return torch.cat(outputs) if outputs else torch.empty(0)
    finally:
        model.train(was_training)
