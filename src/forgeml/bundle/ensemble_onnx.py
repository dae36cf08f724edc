"""ONNX export of an ensemble (``model.type: auto``): every member and the weighted average, one graph.

The graph takes the same raw inputs as every forgeml graph (``numeric`` float64 with NaN,
``categorical`` int64 ids) and returns the same ``output`` (see :mod:`forgeml.models.ensemble` for
what the raw output means). It is assembled from two parts that share those inputs:

* the boosters: forgeml's tree preprocessing (a cast to float32 and a concat, from
  :mod:`forgeml.bundle.trees_onnx`) once, then each member's ``TreeEnsembleRegressor`` over it, their
  raw scores concatenated into ``tree_scores`` ``(N, trees x output_dim)``;
* the head, exported from PyTorch: the run's in-graph preprocessing, each network member behind its
  own (imputation, scaling, one-hot), the boosters' scores sliced out of ``tree_scores``, and
  :meth:`~forgeml.models.ensemble.WeightedEnsemble.combine` (probabilities averaged in float64).

The parts are joined by hand rather than with :func:`onnx.compose.merge_models`, which cannot give
two graphs the same inputs; the tree converter's opset (15) is raised to the head's (the trees part
uses only ``Cast`` and ``Concat`` from the default domain, unchanged since opset 13), so the graph
imports one default-domain version. Members with weight 0 are left out of the graph.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import torch
from torch import nn

from forgeml.bundle.inference import InferenceModule
from forgeml.bundle.trees_onnx import FEATURES, _preprocessing_graph, _trees_graph
from forgeml.features import FeaturePipeline
from forgeml.models.ensemble import WeightedEnsemble
from forgeml.models.gbm import GradientBoostedTrees

TREE_SCORES = "tree_scores"
_PREFIX = "ensemble_trees_"  # the trees part's value names, kept apart from the head's


class _ModelInputs(nn.Module):
    """Returns the model inputs it is called with, so :class:`InferenceModule` yields the preprocessed inputs."""

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return inputs


class _Head(nn.Module):
    """Raw inputs and the boosters' concatenated scores -> the ensemble's raw output."""

    def __init__(self, ensemble: WeightedEnsemble, pipeline: FeaturePipeline) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.preprocess = InferenceModule(_ModelInputs(), pipeline)
        self.width = pipeline.target_.output_dim

    def forward(
        self,
        numeric: torch.Tensor | None = None,
        categorical: torch.Tensor | None = None,
        tree_scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        inputs = self.preprocess(numeric=numeric, categorical=categorical)
        outputs, tree = [], 0
        for member in self.ensemble.members:
            if isinstance(member, GradientBoostedTrees):
                assert tree_scores is not None
                outputs.append(tree_scores[:, tree * self.width : (tree + 1) * self.width])  # (N, output_dim)
                tree += 1
            else:
                outputs.append(member(*inputs))
        return self.ensemble.combine(outputs)


def ensemble_model(model: WeightedEnsemble, pipeline: FeaturePipeline, output_name: str, opset: int) -> Any:
    """The whole graph (an ``onnx.ModelProto``): raw inputs -> members -> weighted average -> raw output."""
    import onnx
    from onnx import helper

    boosters = [member for member in model.members if isinstance(member, GradientBoostedTrees)]
    head = _export_head(_Head(model, pipeline).eval(), pipeline, len(boosters), output_name, opset)
    if not boosters:
        return head
    nodes, opsets = _trees_nodes(boosters, pipeline)
    inputs = [item for item in head.graph.input if item.name != TREE_SCORES]
    graph = helper.make_graph(
        [*nodes, *head.graph.node],
        "forgeml_ensemble",
        inputs,
        list(head.graph.output),
        initializer=list(head.graph.initializer),
        value_info=list(head.graph.value_info),
    )
    domains = {entry.domain: entry.version for entry in head.opset_import}
    for domain, value in opsets.items():
        domains[domain] = max(domains.get(domain, 0), value) if domain == "" else value
    merged = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, value) for domain, value in domains.items()],
        ir_version=head.ir_version,
        functions=list(head.functions),
    )
    merged.producer_name = "forgeml"
    onnx.checker.check_model(merged, full_check=True)
    return merged


def _trees_nodes(
    boosters: list[GradientBoostedTrees], pipeline: FeaturePipeline
) -> tuple[list[Any], dict[str, int]]:
    """Preprocessing once, each booster over it, and their scores concatenated into ``tree_scores``."""
    from onnx import helper

    opsets: dict[str, int] = {}
    nodes: list[Any] = []
    scores = []
    for index, booster in enumerate(boosters):
        trees = _trees_graph(booster, f"{_PREFIX}{index}")
        opsets |= {entry.domain: entry.version for entry in trees.opset_import}
        if index == 0:
            nodes += _renamed(
                _preprocessing_graph(pipeline, trees).graph.node, keep=("numeric", "categorical")
            )
        nodes += _renamed(trees.graph.node, keep=(f"{_PREFIX}{index}",))
        scores.append(f"{_PREFIX}{index}")
    nodes.append(helper.make_node("Concat", scores, [TREE_SCORES], axis=1, name=f"{_PREFIX}concat"))
    return nodes, opsets


def _renamed(nodes: Any, *, keep: tuple[str, ...]) -> list[Any]:
    """Copies of ``nodes`` with every value name but ``keep`` prefixed (no clash with the head's names)."""
    renamed = []
    for node in nodes:
        copy = type(node)()
        copy.CopyFrom(node)
        for values in (copy.input, copy.output):
            for position, name in enumerate(values):
                if name and name not in keep:
                    values[position] = _PREFIX + name
        copy.name = _PREFIX + (copy.name or copy.output[0])
        renamed.append(copy)
    return renamed


def _export_head(head: _Head, pipeline: FeaturePipeline, boosters: int, output_name: str, opset: int) -> Any:
    """The head through ``torch.onnx.export(dynamo=True)``, as every network is exported."""
    import onnx

    from forgeml.bundle.onnx_export import dynamo_export, example_inputs

    inputs = example_inputs(pipeline)
    if boosters:
        inputs[TREE_SCORES] = torch.zeros(2, boosters * pipeline.target_.output_dim, dtype=torch.float32)
    program = dynamo_export(head, inputs, output_name, opset)
    return onnx.load_from_string(program.model_proto.SerializeToString())


def describe(description: dict[str, Any], model: WeightedEnsemble) -> dict[str, Any]:
    """bundle.json's ``onnx`` entry told what the ensemble graph does."""
    for item in description["inputs"]:
        if item["name"] == "numeric":
            item["host_steps"] = (
                "the raw values in this column order; NaN for a missing value (the trees route it; "
                "each network imputes and scales it inside the graph with its own fitted values)"
            )
    members = ", ".join(
        f"{weight:.3g} {name}" for name, weight in zip(model.names, model.weights.tolist(), strict=True)
    )
    description["exporter"] = (
        f"torch.onnx.export(dynamo=True), torch {torch.__version__} (networks and the weighted average) joined "
        f"to onnxmltools {version('onnxmltools')} trees; members: {members}"
    )
    return description


__all__ = ["FEATURES", "TREE_SCORES", "describe", "ensemble_model"]
