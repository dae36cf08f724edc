"""The models stage: a name -> class registry and ``build_model``.

Every model takes ``(config, spec, output_dim)`` and its ``forward`` takes the inputs named by
``spec.names`` in that order, so the loop, the bundle and ONNX export treat all models alike.
Text models (``bag_of_embeddings``, ``text_cnn``, ``transformer``, ``pretrained``) also read any
numeric and categorical columns of the same table (see :mod:`forgeml.models.text`).

``gbm`` (LightGBM) is the one model that is not built empty: training grows it from the data
(:mod:`forgeml.models.gbm`), and it then takes the same ``model(*inputs)`` call.

Before saving weights for serving, pass the model through :func:`exportable` (LoRA adapters are
merged into plain weights); rebuild it for loading with ``build_model(..., pretrained_weights=False)``.
"""

from __future__ import annotations

import torch
from torch import nn

from forgeml.config import ModelConfig
from forgeml.features import InputSpec
from forgeml.features.image import batch_rows, scale_pixels
from forgeml.models.cnn import CNN
from forgeml.models.gbm import GradientBoostedTrees
from forgeml.models.mlp import MLP
from forgeml.models.pretrained import PretrainedModel
from forgeml.models.pretrained_image import PretrainedImageModel
from forgeml.models.text import BagOfEmbeddings, TextCNN, TextModel, TransformerEncoderModel

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn": CNN,
    "bag_of_embeddings": BagOfEmbeddings,
    "text_cnn": TextCNN,
    "transformer": TransformerEncoderModel,
    "pretrained": PretrainedModel,
}

__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "BagOfEmbeddings",
    "GradientBoostedTrees",
    "PretrainedImageModel",
    "PretrainedModel",
    "TextCNN",
    "TextModel",
    "TransformerEncoderModel",
    "build_model",
    "count_parameters",
    "exportable",
    "predict_outputs",
]


def build_model(
    config: ModelConfig, spec: InputSpec, output_dim: int, *, pretrained_weights: bool = True
) -> nn.Module:
    """A freshly initialised model of ``config.type`` (seed torch first for repeatable weights).

    ``pretrained_weights=False`` builds the serving architecture of a ``pretrained`` model from the
    config in ``spec`` alone: no download, no LoRA adapters; load :func:`exportable` weights into it.
    """
    if config.type in (
        "gbm",
        "auto",
    ):  # grown by training from the data (trees; auto's candidates), not built empty
        raise TypeError(
            f"model.type {config.type} has no untrained form; forgeml.training.train_model trains it."
        )
    if config.type == "pretrained":  # a vision backbone for images, else a text encoder
        backbone = PretrainedImageModel if spec.image_shape is not None else PretrainedModel
        return backbone(config, spec, output_dim, pretrained_weights=pretrained_weights)
    return MODELS[config.type](config, spec, output_dim)  # type: ignore[call-arg]


def exportable(model: nn.Module) -> nn.Module:
    """The model as it should be saved for serving: LoRA adapters merged (the model itself otherwise)."""
    hook = getattr(model, "merged_for_export", None)
    return hook() if callable(hook) else model


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
        step = batch_rows(inputs, batch_size)  # fewer rows when rows are large (images)
        outputs = [
            model(*(scale_pixels(tensor[start : start + step]) for tensor in inputs))
            for start in range(0, total, step)
        ]
        return torch.cat(outputs) if outputs else torch.empty(0)
    finally:
        model.train(was_training)
