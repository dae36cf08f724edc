"""The design document's CNN (section 5): Conv32-3x3 -> MaxPool2 -> Conv64-3x3 -> MaxPool2 -> Dense64 -> head.

Channels, kernel size and padding are configurable so the same network fits 8x8 and 28x28 images.
The head is ``output_dim`` logits, not the document's single sigmoid unit, which cannot learn 10 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from forgeml.config import CNNConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec
from forgeml.models.mlp import ACTIVATIONS


class CNN(nn.Module):
    """Convolution blocks (conv, activation, 2x2 max-pool) then a dense layer and the task head."""

    def __init__(self, config: CNNConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__()
        if spec.image_shape is None or spec.names != ("image",):
            raise ConfigError(
                "model.type: cnn needs image inputs only (an .npz of images or sklearn:digits); this data has table "
                "columns. Use model.type: mlp for tables.",
                key="model.type",
            )
        channels, height, width = spec.image_shape
        blocks: list[nn.Module] = []
        for out_channels in config.channels:
            blocks += [
                nn.Conv2d(channels, out_channels, config.kernel_size, padding=config.padding),
                ACTIVATIONS[config.activation](),
                nn.MaxPool2d(2),
            ]
            channels = out_channels
            height = (height + 2 * config.padding - config.kernel_size + 1) // 2
            width = (width + 2 * config.padding - config.kernel_size + 1) // 2
            if height < 1 or width < 1:
                raise ConfigError(
                    f"model: image {spec.image_shape[1:]} shrinks to nothing after {len(blocks) // 3} conv blocks. "
                    f"Use fewer model.channels or a larger model.padding.",
                    key="model.channels",
                )
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [
            nn.Flatten(),
            nn.Linear(channels * height * width, config.dense),
            ACTIVATIONS[config.activation](),
        ]
        if config.dropout > 0:
            head.append(nn.Dropout(config.dropout))
        head.append(nn.Linear(config.dense, output_dim))
        self.head = nn.Sequential(*head)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images -> ``(N, output_dim)`` logits."""
        return self.head(self.features(image))
