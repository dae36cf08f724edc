"""The design document's CNN (section 5): Conv32-3x3 -> MaxPool2 -> Conv64-3x3 -> MaxPool2 -> Dense64 -> head.

Channels, kernel size and padding are configurable so the same network fits 8x8 and 28x28 images.
The head is ``output_dim`` logits, not the document's single sigmoid unit, which cannot learn 10 classes.

With ``features.image.augment.enabled`` the network first applies random flips, resized crops, small
rotations and colour jitter (:class:`Augment`, each image its own draw) to its input batch, in training mode
only: validation, evaluation, export and serving see the images unchanged, and the augmentation
has no weights, so bundles and ONNX graphs are the same with it or without it.
"""

from __future__ import annotations

import json
import math

import torch
from torch import nn
from torch.nn import functional

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
        self.augment = Augment(spec.image_augment, spec.image_shape)
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
        return self.head(self.features(self.augment(image)))


class Augment(nn.Module):
    """Random changes to a training batch ``(N, C, H, W)`` in [0, 1]; the identity in eval mode.

    Built from ``features.image.augment`` (JSON, "" for none). Each image gets its own draw: one
    affine warp (a random resized crop keeping ``crop_scale``..1 of the area at an aspect ratio of
    3/4..4/3, a rotation of up to ``rotation`` degrees, a left-right flip with chance ``flip``,
    reflected at the borders), then brightness, contrast and saturation each scaled by 1 +/- ``jitter``.

    Hand-written in torch rather than a library: torchvision 0.28.0 from PyPI (CUDA build) does not
    import beside torch 2.13.0+cpu, and kornia 0.9.0's flip + resized crop + rotation + ColorJiggle
    took 1,890 ms per batch of 64 RGB 64x64 images against 556 ms for this warp (same process, 2
    cores loaded by other agents), more than a training step of the document's CNN.
    """

    def __init__(self, settings: str, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.settings = json.loads(settings) if settings else {}
        self.channels = shape[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.settings:
            return images
        return self._jitter(self._warp(images))

    def _warp(self, images: torch.Tensor) -> torch.Tensor:
        settings, rows = self.settings, len(images)
        area = settings["crop_scale"] + (1 - settings["crop_scale"]) * _uniform(rows, images)
        span = math.log(4 / 3) if settings["crop_scale"] < 1 else 0.0  # crop_scale 1: no crop at all
        aspect = torch.exp(_signed(rows, images) * span)
        scale_x, scale_y = torch.sqrt(area * aspect).clamp(max=1.0), torch.sqrt(area / aspect).clamp(max=1.0)
        shift_x, shift_y = _signed(rows, images) * (1 - scale_x), _signed(rows, images) * (1 - scale_y)
        angle = _signed(rows, images) * math.radians(settings["rotation"])
        mirror = torch.where(_uniform(rows, images) < settings["flip"], -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [
                torch.stack([cos * scale_x * mirror, -sin * scale_y, shift_x], 1),
                torch.stack([sin * scale_x * mirror, cos * scale_y, shift_y], 1),
            ],
            1,
        )  # (N, 2, 3): output coordinates -> input coordinates
        grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
        return functional.grid_sample(images, grid, padding_mode="reflection", align_corners=False)

    def _jitter(self, images: torch.Tensor) -> torch.Tensor:
        amount, rows = self.settings["jitter"], len(images)
        if amount <= 0:
            return images
        images = images * (1 + amount * _signed(rows, images).view(-1, 1, 1, 1))  # brightness
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = (images - mean) * (1 + amount * _signed(rows, images).view(-1, 1, 1, 1)) + mean  # contrast
        if self.channels == 3:  # saturation: towards or away from the image's grey (ITU-R 601 weights)
            weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device)
            grey = (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
            images = (images - grey) * (1 + amount * _signed(rows, images).view(-1, 1, 1, 1)) + grey
        return images.clamp(0.0, 1.0)


def _uniform(rows: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(rows, dtype=like.dtype, device=like.device)


def _signed(rows: int, like: torch.Tensor) -> torch.Tensor:
    return _uniform(rows, like) * 2 - 1
