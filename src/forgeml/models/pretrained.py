"""A pretrained Hugging Face encoder (``AutoModel``) pooled into a vector per text column, then the head.

Three ways to train it: ``freeze: true`` (only the head learns; the encoder runs without
gradients), full fine-tuning (the default), or LoRA adapters through ``peft``.

Serving needs neither the hub nor peft: :meth:`PretrainedModel.merged_for_export` folds the
adapters into plain weights, and ``PretrainedModel(..., pretrained_weights=False)`` rebuilds the
plain architecture from the Hugging Face config JSON kept in the input spec (``AutoModel.from_config``,
no download) so those weights load into it.
"""

from __future__ import annotations

import copy
import json
from typing import Any, TypeVar

import torch
from torch import nn

from forgeml.config import LoRAConfig, PretrainedConfig
from forgeml.errors import ConfigError
from forgeml.extras import require
from forgeml.features import InputSpec
from forgeml.features.text import resolve_pretrained
from forgeml.models.text import TextModel, masked_mean

Backboned = TypeVar("Backboned", bound=nn.Module)  # a model with a ``backbone`` attribute


class PretrainedModel(TextModel):
    """``AutoModel`` backbone (frozen, fine-tuned or with LoRA) + pooling + the shared text-model head."""

    def __init__(
        self, config: PretrainedConfig, spec: InputSpec, output_dim: int, *, pretrained_weights: bool = True
    ) -> None:
        backbone_config = _backbone_config(config, spec)
        super().__init__(spec, int(backbone_config.hidden_size), config.hidden, config.dropout, output_dim)
        self.config = config
        self.pooling = config.pooling
        self.backbone = _load_backbone(spec.backbone, backbone_config, pretrained_weights)
        if config.freeze:
            self.backbone.requires_grad_(False)
        elif config.lora is not None and pretrained_weights:
            # Without pretrained weights we are rebuilding for serving: the exported weights are merged.
            self.backbone = with_lora(self.backbone, config.lora)

    def train(self, mode: bool = True) -> PretrainedModel:
        """A frozen encoder stays in eval mode (no dropout), so its vectors match serving's."""
        super().train(mode)
        if self.config.freeze:
            self.backbone.eval()
        return self

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze):
            states = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        return states[:, 0] if self.pooling == "cls" else masked_mean(states, mask)

    def merged_for_export(self) -> PretrainedModel:
        """This model with LoRA adapters merged into plain weights (itself when there are none).

        Call it before saving a state_dict for serving or exporting to ONNX; the result's keys match
        ``PretrainedModel(config, spec, output_dim, pretrained_weights=False)``. Training state
        (checkpoints, resume) keeps the adapters.
        """
        return self if self.config.lora is None else merged_copy(self)


def merged_copy(model: Backboned) -> Backboned:
    """A copy of ``model`` in eval mode whose ``backbone``'s LoRA adapters are merged into plain weights.

    Shared by the text encoders and the vision backbones (forgeml.models.pretrained_image).
    """
    plain = copy.deepcopy(model).eval()
    plain.backbone = plain.backbone.merge_and_unload()
    return plain


def _backbone_config(config: PretrainedConfig, spec: InputSpec) -> Any:
    if not spec.backbone_config:
        raise ConfigError(
            "model.type: pretrained needs the backbone's own tokenizer: set features.text.pretrained to the "
            "model (hub id, local folder or package:<module>) and list the text columns in features.text_columns.",
            key="features.text.pretrained",
        )
    if config.name is not None and config.name != spec.backbone:
        raise ConfigError(
            f"model.name is {config.name!r} but the text was tokenized for {spec.backbone!r} "
            f"(features.text.pretrained). Set both to the same model, or leave model.name out.",
            key="model.name",
        )
    # Serving a pretrained-encoder bundle rebuilds the architecture too, so it needs the extra as well.
    transformers = require("transformers", "text", "model.type: pretrained", key="model.type")
    values = json.loads(spec.backbone_config)
    return transformers.AutoConfig.for_model(values.pop("model_type"), **values)


def _load_backbone(name: str, backbone_config: Any, pretrained_weights: bool) -> nn.Module:
    transformers = require("transformers", "text", "model.type: pretrained", key="model.type")
    if not pretrained_weights:
        return transformers.AutoModel.from_config(backbone_config)
    try:
        return transformers.AutoModel.from_pretrained(resolve_pretrained(name))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"features.text.pretrained: cannot load the weights of {name!r}: {str(exc).splitlines()[0]}",
            key="features.text.pretrained",
        ) from None


def with_lora(
    backbone: nn.Module, lora: LoRAConfig | None, *, default_targets: str | list[str] | None = None
) -> nn.Module:
    """``backbone`` wrapped with peft LoRA adapters; ``default_targets`` when ``model.lora.target_modules`` is unset.

    ``None`` leaves the choice to peft, which knows the text encoders (query, value for BERT).
    """
    peft = require("peft", "text", "model.lora", key="model.lora")
    assert lora is not None
    adapters = peft.LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules or default_targets,
        bias="none",
    )
    try:
        return peft.get_peft_model(backbone, adapters)
    except ValueError as exc:
        raise ConfigError(
            f"model.lora: {str(exc).splitlines()[0]}", key="model.lora.target_modules"
        ) from None
