"""The in-graph preprocessing as a module: raw inputs -> a model's inputs -> its raw outputs.

:class:`InferenceModule` is what ONNX export traces and what the PyTorch engine runs; the ensemble
of ``model.type: auto`` reuses it for each network member (:class:`NetworkMember`), so a member
preprocesses the shared raw inputs exactly as its own pipeline did in training.
"""

from __future__ import annotations

import torch
from torch import nn

from forgeml.bundle.encode import graph_input_names
from forgeml.config import ModelConfig
from forgeml.features import FeaturePipeline
from forgeml.features.numeric_graph import NumericGraph


class InferenceModule(nn.Module):
    """Raw inputs (``graph_input_names`` order) -> the model's raw outputs ``(N, output_dim)`` float32."""

    def __init__(self, model: nn.Module, pipeline: FeaturePipeline) -> None:
        super().__init__()
        self.model = model
        self.input_names = graph_input_names(pipeline)
        self.model_input_names = pipeline.input_spec.names
        self.numeric_graph = NumericGraph(pipeline.numeric_)  # impute, log, scale, quantile map
        self.one_hot = pipeline.categorical_.encoding == "onehot"
        cardinalities = pipeline.categorical_.cardinalities if pipeline.categorical_.columns else []
        for index, size in enumerate(cardinalities):  # one arange per column, compared with its ids
            self.register_buffer(f"positions_{index}", torch.arange(size))
        self.categories = len(cardinalities)
        self.image_scale = None if pipeline.image_ is None else float(pipeline.image_.scale_)

    def forward(
        self,
        numeric: torch.Tensor | None = None,
        categorical: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        model_inputs: dict[str, torch.Tensor] = {}
        blocks = []
        if numeric is not None:  # (N, F) float64, NaN = missing
            blocks.append(self.numeric_graph(numeric).to(torch.float32))
        if categorical is not None:  # (N, K) int64 ids
            if self.one_hot:
                blocks += [
                    (categorical[:, index : index + 1] == getattr(self, f"positions_{index}")).to(
                        torch.float32
                    )  # (N, size)
                    for index in range(self.categories)
                ]
            else:
                model_inputs["categorical"] = categorical
        if blocks:
            model_inputs["numeric"] = torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]
        if image is not None:  # (N, C, H, W) raw pixels: uint8 (image files) or float32 (arrays)
            model_inputs["image"] = image.to(torch.float32) / self.image_scale
        if text is not None and text_mask is not None:  # (N, C, L) int64 token ids and mask, as tokenized
            model_inputs["text"], model_inputs["text_mask"] = text, text_mask
        return self.model(*(model_inputs[name] for name in self.model_input_names))


class NetworkMember(nn.Module):
    """A network of an ensemble, behind its own pipeline's in-graph preprocessing.

    It takes the ensemble's model inputs (the tree inputs: ``numeric`` float32 raw values with NaN,
    ``categorical`` int64 ids, positional in ``spec.names`` order) and runs them through
    :class:`InferenceModule` of the network's own fitted pipeline (imputation, scaling, one-hot):
    both pipelines are fitted on the same rows and columns, so the raw values and ids mean the same.
    """

    def __init__(
        self, network: nn.Module, pipeline: FeaturePipeline, input_names: tuple[str, ...], config: ModelConfig
    ) -> None:
        super().__init__()
        self.inference = InferenceModule(network, pipeline)
        self.input_names = input_names
        self.pipeline = pipeline  # the network's own fitted features (the bundle stores them)
        self.config = config  # its architecture, as the bundle stores it

    @property
    def network(self) -> nn.Module:
        return self.inference.model

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = dict(zip(self.input_names, inputs, strict=True))
        if "numeric" in given:  # raw float32 values -> float64, as the inference graph takes them
            given["numeric"] = given["numeric"].to(torch.float64)
        return self.inference(**given)
