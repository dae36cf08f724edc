"""A multi-layer perceptron over numeric, embedded categorical and flattened image inputs."""

from __future__ import annotations

import torch
from torch import nn

from forgeml.config import MLPConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Dense layers ``f(x) = s(Wx + b)`` (the document's section 4.1) ending in a task head of ``output_dim``."""

    def __init__(self, config: MLPConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__()
        if spec.text_columns:
            raise ConfigError(
                "model.type: mlp cannot read text columns. Use bag_of_embeddings, text_cnn, transformer or "
                "pretrained: they read the text and the table's numeric and categorical columns together.",
                key="model.type",
            )
        self.spec = spec
        self.embeddings = nn.ModuleList(
            nn.Embedding(size, spec.embedding_dim) for size in spec.categorical_cardinalities
        )
        width = spec.numeric_dim + spec.embedding_dim * len(spec.categorical_cardinalities)
        if spec.image_shape is not None:
            width += int(torch.tensor(spec.image_shape).prod())
        layers: list[nn.Module] = []
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in ``spec.names`` order -> ``(N, output_dim)`` logits or values."""
        parts = []
        for name, tensor in zip(self.spec.names, inputs, strict=True):
            if name == "categorical":  # (N, K) ids -> K embeddings of (N, E)
                parts += [embedding(tensor[:, index]) for index, embedding in enumerate(self.embeddings)]
            else:
                parts.append(tensor.flatten(1))  # images (N, C, H, W) -> (N, C*H*W)
        return self.layers(torch.cat(parts, dim=1))
