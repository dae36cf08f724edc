"""Magnitude pruning: unstructured (global or per layer) and structured (whole neurons and channels).

``torch.nn.utils.prune`` decides *what* to remove in both cases: ``L1Unstructured`` /
``global_unstructured`` zero the smallest weights; ``LnStructured`` ranks whole rows of a weight
(a neuron's inputs, a convolution's filter) by their L1 norm (Li et al., "Pruning filters for
efficient ConvNets"). Unstructured masks are made permanent with ``prune.remove``: the model is
sparser but not smaller, since dense runtimes store and multiply the zeros. Structured pruning goes
further: the kept rows are sliced out into a *narrower* model built from a model config with the
new widths (``hidden`` for the MLP, ``channels``/``dense`` for the CNN), so the bundle's
``build_model`` rebuilds it and the file, the parameter count and the latency all shrink.

torch-pruning (DepGraph) would find the coupled layers of arbitrary graphs for us, but the bundle
must record the shrunk widths as a model config anyway, which only works for architectures whose
config names their widths; for those two the coupling is three lines, so no new dependency.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import prune

from forgeml.config import CNNConfig, MLPConfig, ModelConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec
from forgeml.models import build_model

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
STRUCTURED_MODELS = ("mlp", "cnn")


def prunable_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Every dense or convolution layer (their ``weight`` is what magnitude pruning zeroes).

    Layers inside ``nn.MultiheadAttention`` are skipped: attention reads ``out_proj.weight``
    without calling the layer, so the mask's forward hook would never refresh it.
    """
    inside_attention = {
        id(child)
        for module in model.modules()
        if isinstance(module, nn.MultiheadAttention)
        for child in module.modules()
    }
    return (
        module
        for module in model.modules()
        if isinstance(module, PRUNABLE) and id(module) not in inside_attention
    )


def mask_unstructured(model: nn.Module, amount: float, *, scope: str) -> None:
    """Zero the ``amount`` smallest weights, over all layers at once (``global``) or in each (``layer``).

    The masks stay attached (``weight = weight_orig * weight_mask``) so fine-tuning cannot regrow
    the zeros; call :func:`make_permanent` afterwards.
    """
    layers = list(prunable_layers(model))
    if scope == "global":
        prune.global_unstructured(
            [(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured, amount=amount
        )
    else:
        for layer in layers:
            prune.l1_unstructured(layer, "weight", amount=amount)


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight (plain parameters again, zeros where pruned)."""
    for layer in prunable_layers(model):
        if prune.is_pruned(layer) and hasattr(layer, "weight_mask"):
            prune.remove(layer, "weight")
    return model


def zero_fraction(model: nn.Module) -> float:
    """Share of prunable weights that are exactly zero."""
    weights = [layer.weight.detach() for layer in prunable_layers(model)]
    total = sum(weight.numel() for weight in weights)
    return sum(int((weight == 0).sum()) for weight in weights) / total if total else 0.0


def kept_rows(weight: torch.Tensor, amount: float) -> torch.Tensor:
    """Sorted indices of the rows (output neurons / filters) of ``weight`` that survive pruning.

    At least one row is always kept so a layer never vanishes.
    """
    rows = weight.shape[0]
    removed = min(round(amount * rows), rows - 1)
    if removed == 0:
        return torch.arange(rows)
    mask = prune.LnStructured(removed, n=1, dim=0).compute_mask(weight.detach(), torch.ones_like(weight))
    return torch.nonzero(mask.flatten(1).any(dim=1)).flatten()


def prune_structured(
    model: nn.Module, config: ModelConfig, spec: InputSpec, output_dim: int, amount: float
) -> tuple[nn.Module, ModelConfig]:
    """A narrower copy of ``model`` without the ``amount`` weakest neurons/channels of each hidden layer.

    Returns the new model and the model config that rebuilds it (the bundle stores that config).
    The task head keeps all its outputs; inputs of a following layer are sliced to match.
    """
    check_structured(config)
    if isinstance(config, MLPConfig):
        return _prune_mlp(model, config, spec, output_dim, amount)
    assert isinstance(config, CNNConfig)
    return _prune_cnn(model, config, spec, output_dim, amount)


def check_structured(config: ModelConfig) -> None:
    """Structured pruning needs widths a model config records: refuse other models with the fix."""
    if config.type in STRUCTURED_MODELS:
        return
    raise ConfigError(
        f"--prune-method structured shrinks model.type {' and '.join(STRUCTURED_MODELS)}; this run's model is "
        f"{config.type!r}. Use --prune-method global (or layer) for unstructured pruning of any model.",
        key="--prune-method",
    )


def _prune_mlp(
    model: nn.Module, config: MLPConfig, spec: InputSpec, output_dim: int, amount: float
) -> tuple[nn.Module, ModelConfig]:
    state = model.state_dict()
    linears = [f"layers.{index}" for index, layer in enumerate(model.layers) if isinstance(layer, nn.Linear)]
    new_state = dict(state)
    previous: torch.Tensor | None = None  # kept outputs of the layer before (None: all inputs kept)
    hidden = []
    # with submodels the heads follow the layers (SubmodelHeads): every linear in layers is hidden
    last_hidden = len(linears) if model.heads is not None else len(linears) - 1
    for position, name in enumerate(linears):
        weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]  # (out, in), (out,)
        if previous is not None:
            weight = weight[:, previous]
        keep = kept_rows(weight, amount) if position < last_hidden else torch.arange(len(weight))
        new_state[f"{name}.weight"], new_state[f"{name}.bias"] = weight[keep], bias[keep]
        if position < last_hidden:
            hidden.append(len(keep))
        previous = keep
    if model.heads is not None and previous is not None:
        # (K, W, D): each submodel's head reads the kept units of the last hidden layer
        new_state["heads.weight"] = state["heads.weight"][:, previous]
    new_config = config.model_copy(update={"hidden": hidden})
    return _rebuilt(new_config, spec, output_dim, new_state), new_config


def _prune_cnn(
    model: nn.Module, config: CNNConfig, spec: InputSpec, output_dim: int, amount: float
) -> tuple[nn.Module, ModelConfig]:
    state = model.state_dict()
    new_state = dict(state)
    convolutions = [
        f"features.{index}" for index, layer in enumerate(model.features) if isinstance(layer, nn.Conv2d)
    ]
    previous: torch.Tensor | None = None
    channels = []
    for name in convolutions:
        weight = state[f"{name}.weight"]  # (out, in, k, k)
        if previous is not None:
            weight = weight[:, previous]
        keep = kept_rows(weight, amount)
        new_state[f"{name}.weight"], new_state[f"{name}.bias"] = weight[keep], state[f"{name}.bias"][keep]
        channels.append(len(keep))
        previous = keep
    dense, head = [f"head.{index}" for index, layer in enumerate(model.head) if isinstance(layer, nn.Linear)]
    weight = state[f"{dense}.weight"]  # (dense, C*H*W), flattened channel-major
    assert previous is not None and weight.shape[1] % config.channels[-1] == 0
    area = weight.shape[1] // config.channels[-1]
    columns = (previous[:, None] * area + torch.arange(area)).flatten()  # the kept channels' pixels
    weight = weight[:, columns]
    keep = kept_rows(weight, amount)
    new_state[f"{dense}.weight"], new_state[f"{dense}.bias"] = weight[keep], state[f"{dense}.bias"][keep]
    new_state[f"{head}.weight"] = state[f"{head}.weight"][:, keep]
    new_config = config.model_copy(update={"channels": channels, "dense": len(keep)})
    return _rebuilt(new_config, spec, output_dim, new_state), new_config


def _rebuilt(
    config: ModelConfig, spec: InputSpec, output_dim: int, state: dict[str, torch.Tensor]
) -> nn.Module:
    model = build_model(config, spec, output_dim)
    model.load_state_dict({name: tensor.clone().contiguous() for name, tensor in state.items()}, strict=True)
    return model.eval()
