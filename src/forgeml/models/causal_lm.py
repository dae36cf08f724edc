"""The causal LM: loaded from the hub, a local folder, an installed package or a GGUF file; LoRA;
the thin module and loss that let the training engine (:func:`forgeml.training.loop.fit`) train it.

The engine trains any module whose ``forward(*inputs)`` returns outputs scored by
``loss_function(outputs, target)``. :class:`CausalLMModule` maps (input_ids, attention_mask) to
logits and :func:`answer_loss` is the shifted cross-entropy over answer tokens (labels -100 are
skipped), so bf16 autocast, gradient accumulation, checkpoints with exact resume and torchrun come
from the engine unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from forgeml.config import CausalLMConfig, LoRAConfig
from forgeml.data.lm import IGNORE_INDEX, LMTensors, first_line, model_source
from forgeml.errors import ConfigError
from forgeml.extras import require

logger = logging.getLogger(__name__)


def load_model(config: CausalLMConfig) -> nn.Module:
    """``AutoModelForCausalLM`` in float32 (a GGUF file is de-quantized), never running remote code."""
    transformers = require("transformers", "llm", "model.type: causal_lm", key="model.type")
    source, gguf = model_source(config)
    if gguf is not None:
        require("gguf", "llm", "model.gguf_file", key="model.gguf_file")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source, gguf_file=gguf, trust_remote_code=False, dtype=torch.float32
        )
    except ImportError as exc:
        raise ConfigError(
            f"model.gguf_file: loading GGUF needs the gguf package (pip install 'forgeml[llm]'): {first_line(exc)}",
            key="model.gguf_file",
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"model.name: cannot load {config.name!r} as a causal LM: {first_line(exc)}", key="model.name"
        ) from None
    model = _without_gguf_marker(model)
    if config.gradient_checkpointing:
        # use_reentrant=False: works when the inputs need no gradient (frozen embeddings under LoRA)
        # transformers 5 renamed it activation_checkpointing_enable (the old name warns, gone in v6)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def _without_gguf_marker(model: nn.Module) -> nn.Module:
    """A GGUF model de-quantized on load is plain float32, but transformers keeps its quantizer
    attached and then refuses ``save_pretrained``; drop the marker so the merged model can be bundled.
    Layers kept packed (GgufLinear, on hardware with GGUF kernels) are refused instead: their weights
    cannot be trained or saved as plain safetensors."""
    if getattr(model, "hf_quantizer", None) is None:
        return model
    packed = sorted(
        {type(m).__name__ for m in model.modules() if type(m).__name__.lower().startswith("gguf")}
    )
    if packed:
        raise ConfigError(
            f"model.gguf_file: transformers kept {', '.join(packed)} layers packed; forgeml fine-tunes "
            "de-quantized float32 weights only. Convert the GGUF file to a safetensors folder first.",
            key="model.gguf_file",
        )
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def with_lora(model: nn.Module, settings: LoRAConfig) -> nn.Module:
    """``model`` wrapped by peft with trainable low-rank adapters; every base weight is frozen."""
    peft = require("peft", "llm", "model.lora", key="model.lora")
    adapters = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return peft.get_peft_model(model, adapters)
    except ValueError as exc:
        raise ConfigError(f"model.lora: {first_line(exc)}", key="model.lora.target_modules") from None


def merged(model: nn.Module) -> nn.Module:
    """Adapters folded into plain weights (the model itself when it has none), in eval mode."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.eval()


class CausalLMModule(nn.Module):
    """(input_ids, attention_mask) -> next-token logits, cut to the batch's longest row.

    Rows are right-padded to the longest example of the whole set; slicing each batch to its own
    longest row skips the padding's compute. :func:`answer_loss` cuts the labels to match.
    With adapters, ``state_dict`` holds only the trainable weights, so a checkpoint of a LoRA run is
    megabytes, not the whole base model (which is reloaded from ``model.name`` on resume).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.adapters_only = any(not p.requires_grad for p in model.parameters())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = int(attention_mask.sum(dim=1).max())
        output = self.model(
            input_ids=input_ids[:, :length], attention_mask=attention_mask[:, :length], use_cache=False
        )
        return output.logits  # (B, L, V)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        state = super().state_dict(*args, **kwargs)
        if not self.adapters_only or args or kwargs.get("prefix"):
            return state
        trainable = self._trainable()
        return {key: value for key, value in state.items() if key in trainable}

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        if not self.adapters_only:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = sorted(self._trainable() - set(state_dict))
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"adapter weights do not match: missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}"
            )
        return result

    def _trainable(self) -> set[str]:
        return {name for name, parameter in self.named_parameters() if parameter.requires_grad}


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each answer token given the tokens before it (labels -100 skipped).

    ``logits`` (B, L, V) predict position t+1 from position t; ``labels`` (B, T >= L) are cut to L.
    """
    labels = labels[:, : logits.shape[1]]
    predicted = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B*(L-1), V)
    target = labels[:, 1:].reshape(-1)  # (B*(L-1),)
    total = F.cross_entropy(predicted.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (target != IGNORE_INDEX).sum().clamp(min=1)


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


@dataclass(frozen=True)
class LossReport:
    """Mean answer-token cross-entropy (nats) and its exponential, over ``tokens`` answer tokens."""

    loss: float
    perplexity: float
    tokens: int

    def to_json(self) -> dict[str, float | int]:
        return {"loss": round(self.loss, 6), "perplexity": round(self.perplexity, 4), "tokens": self.tokens}


@torch.inference_mode()
def answer_token_loss(model: nn.Module, data: LMTensors, *, batch_size: int = 8) -> LossReport:
    """Token-weighted mean loss over every answer token of ``data`` (each batch cut to its longest row).

    Training measures it before and after fine-tuning; it lives with :func:`answer_loss` because it is
    the same quantity over a whole set instead of one batch.
    """
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(data), batch_size):
        mask = data.attention_mask[start : start + batch_size]
        length = int(mask.sum(dim=1).max())
        ids = data.input_ids[start : start + batch_size, :length]
        labels = data.labels[start : start + batch_size, :length]
        logits = model(input_ids=ids, attention_mask=mask[:, :length], use_cache=False).logits  # (B, L, V)
        target = labels[:, 1:].reshape(-1)
        total += float(
            F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                target,
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
        )
        tokens += int((target != IGNORE_INDEX).sum())
    loss = total / max(tokens, 1)
    return LossReport(loss, math.exp(min(loss, 50.0)), tokens)
