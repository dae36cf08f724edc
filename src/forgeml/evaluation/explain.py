"""Explanations: which input columns the model relies on, and which pixels drove a prediction.

* Permutation importance (scikit-learn's ``permutation_importance``): shuffle one raw column of the
  test table, run the fitted pipeline and the model again, and measure how much the headline metric
  drops. It works on raw columns, so a one-hot column counts once, and it needs no gradients.
* Integrated gradients (Captum's ``IntegratedGradients``): per example, the path integral of the
  gradient from a zero baseline (the training mean of each standardized numeric column, no category,
  a black image) to the input. One-hot blocks are summed back to their raw column. Categorical
  embedding inputs are integers, which have no gradient, so they get no attribution. Captum comes
  with forgeml[explain]; without it the evaluation still runs and the card says what to install.
* Token attributions for text models (``tokens.py``): Captum's ``LayerIntegratedGradients`` through
  the token embedding layer, for every text model including ``pretrained``.
* TreeSHAP for boosted trees (``model.type: gbm``), in the same place on the card: LightGBM's own
  ``pred_contrib``, exact Shapley values of each raw column (a categorical column is one column to
  the trees), in the units of the model's raw output (log-odds, or the target's own units).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from importlib.metadata import version

import numpy as np
import torch
from torch import nn

from forgeml.data import RawData
from forgeml.evaluation.metrics import class_indices, headline_score, predicted_indices
from forgeml.evaluation.tokens import (
    TextAttribution,
    explained_outputs,
    text_attributions,
    text_method,
    token_layer,
)
from forgeml.extras import MissingExtraError, require
from forgeml.features import FeaturePipeline
from forgeml.features.image import scale_pixels
from forgeml.models import GradientBoostedTrees, predict_outputs
from forgeml.models.ensemble import WeightedEnsemble
from forgeml.models.gbm import tree_matrix

logger = logging.getLogger(__name__)
IG_STEPS = 32
IG_TABLE_ROWS = 8  # examples shown one by one in the report
IG_SUMMARY_ROWS = 256  # examples averaged for the mean |attribution| per column
SALIENCY_IMAGES = 6


@dataclass(frozen=True)
class Importance:
    """Drop of the headline metric when ``column`` is shuffled: mean and std over the repeats."""

    column: str
    mean: float
    std: float

    def to_json(self) -> dict[str, str | float]:
        return {"column": self.column, "mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class Attributions:
    """Integrated gradients: per-column attributions of a few test rows, and image saliency maps.

    ``per_example`` is (len(rows), len(columns)), signed, towards the predicted class (or value).
    ``saliency`` is (S, H, W) |attribution| summed over channels for ``saliency_rows``.
    ``not_computed`` (with everything else empty) says why there are none and what to install.
    """

    method: str
    columns: tuple[str, ...]
    rows: tuple[int, ...]
    per_example: np.ndarray
    mean_abs: np.ndarray
    saliency_rows: tuple[int, ...] = ()
    saliency: np.ndarray | None = None
    not_computed: str = ""
    texts: tuple[TextAttribution, ...] = ()  # token attributions of the first test texts
    text_method: str = ""

    @classmethod
    def missing(cls, reason: str) -> Attributions:
        """No attributions, and why: the card shows ``reason`` in their place."""
        return cls("", (), (), np.zeros((0, 0)), np.zeros(0), not_computed=reason)

    def to_json(self) -> dict[str, object]:
        if self.not_computed:
            return {"not_computed": self.not_computed}
        return {
            "method": self.method,
            "columns": list(self.columns),
            "mean_abs": [float(value) for value in self.mean_abs],
            "rows": list(self.rows),
            "per_example": self.per_example.round(6).tolist(),
            "saliency_rows": list(self.saliency_rows),
            "text_method": self.text_method,
            "texts": [text.to_json() for text in self.texts],
        }


class _ScoredPipeline:
    """What ``permutation_importance`` calls: raw table in, headline metric out (images kept aligned)."""

    def __init__(self, model: nn.Module, pipeline: FeaturePipeline, rows: RawData) -> None:
        self.model, self.pipeline, self.rows = model, pipeline, rows

    def fit(self, *_: object) -> _ScoredPipeline:  # sklearn's estimator check wants one; nothing to fit
        return self

    def score(self, table: object, truth: np.ndarray) -> float:
        rows = RawData(table, self.rows.images, None, self.rows.source)  # type: ignore[arg-type]
        inputs = self.pipeline.transform(rows).ordered(self.pipeline.input_spec.names)
        decoded = self.pipeline.target_.decode(predict_outputs(self.model, inputs).numpy())
        task = self.pipeline.task
        guess = decoded.values if task.kind == "regression" else predicted_indices(task, decoded)
        return headline_score(task.kind, truth, guess)


def permutation_importance(
    model: nn.Module, pipeline: FeaturePipeline, rows: RawData, *, repeats: int, seed: int
) -> tuple[Importance, ...]:
    """Importance of every raw input column, most important first; empty if off or no columns."""
    columns = pipeline.input_columns
    if repeats == 0 or not columns or rows.target is None:
        return ()
    from sklearn.inspection import permutation_importance as sklearn_permutation

    task = pipeline.task
    truth = (
        rows.target.to_numpy(dtype=np.float64)
        if task.kind == "regression"
        else class_indices(task, rows.target)
    )
    scorer = _ScoredPipeline(model, pipeline, rows)
    result = sklearn_permutation(
        scorer,
        rows.table[columns],
        truth,
        scoring=lambda estimator, table, target: estimator.score(table, target),
        n_repeats=repeats,
        random_state=seed,
    )
    found = [
        Importance(column, float(mean), float(std))
        for column, mean, std in zip(columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return tuple(sorted(found, key=lambda item: -item.mean))


def attributions(
    model: nn.Module, pipeline: FeaturePipeline, rows: RawData, *, seed: int
) -> Attributions | None:
    """Per-column attributions of the first test rows: TreeSHAP for boosted trees, integrated gradients otherwise."""
    if isinstance(model, GradientBoostedTrees):
        return tree_shap(model, pipeline, rows)
    if isinstance(model, WeightedEnsemble):  # no gradient through its trees; permutation importance covers it
        return None
    found = integrated_gradients(model, pipeline, rows, seed=seed)
    layer = token_layer(model)
    if layer is None or not pipeline.text_.columns or len(rows) == 0 or (found and found.not_computed):
        return found
    try:
        attr = require("captum.attr", "explain", "Explaining text predictions with token attributions")
    except MissingExtraError as exc:
        logger.info("%s", exc)
        return Attributions.missing(str(exc))
    texts = text_attributions(attr, model, layer, pipeline, rows)
    if found is None:  # text only: no table column to attribute
        found = Attributions("", (), (), np.zeros((0, 0)), np.zeros(0))
    return replace(found, texts=texts, text_method=text_method())


def tree_shap(model: GradientBoostedTrees, pipeline: FeaturePipeline, rows: RawData) -> Attributions | None:
    """LightGBM's TreeSHAP values for the first test rows, signed towards the predicted class (or value)."""
    if len(rows) == 0:
        return None
    count = min(len(rows), max(IG_SUMMARY_ROWS, IG_TABLE_ROWS))
    inputs = pipeline.transform(rows.take(np.arange(count))).ordered(pipeline.input_spec.names)
    contributions = model.contributions(tree_matrix(*(tensor.numpy() for tensor in inputs)))
    target, sign = explained_outputs(
        pipeline.task, torch.from_numpy(contributions.sum(axis=2))
    )  # sums: raw outputs
    contributions = contributions[:, :, :-1]  # the last one is the expected value, not a column
    per_column = contributions[np.arange(count), target.numpy()] * sign.numpy()[:, None]  # (N, columns)
    if pipeline.task.kind == "regression":
        per_column = per_column * pipeline.target_.std_  # from standardized units to the target's own
    shown = min(count, IG_TABLE_ROWS)
    import lightgbm

    return Attributions(
        method=f"TreeSHAP (LightGBM {lightgbm.__version__} pred_contrib), exact, in raw-output units",
        columns=tuple(pipeline.input_columns),
        rows=tuple(range(shown)),
        per_example=per_column[:shown],
        mean_abs=np.abs(per_column).mean(axis=0),
    )


def integrated_gradients(
    model: nn.Module, pipeline: FeaturePipeline, rows: RawData, *, seed: int
) -> Attributions | None:
    """Attributions of the first test rows (and saliency of the first images); None with no float input.

    Without captum (forgeml[explain]) the evaluation goes on: the result says what to install.
    """
    names = pipeline.input_spec.names
    # Integer inputs (category ids, token ids and masks) have no gradient: they are held fixed.
    integer_names = [name for name in names if name in ("categorical", "text", "text_mask")]
    floats = [name for name in names if name not in integer_names]
    if not floats or len(rows) == 0:
        return None
    try:
        attr = require("captum.attr", "explain", "Explaining predictions with integrated gradients")
    except MissingExtraError as exc:
        logger.info("%s", exc)
        return Attributions.missing(str(exc))
    torch.manual_seed(seed)
    count = min(len(rows), max(IG_SUMMARY_ROWS, IG_TABLE_ROWS))
    # gradients need float inputs: 8-bit pixels are scaled here as the training step scales them
    tensors = {
        name: scale_pixels(value)
        for name, value in pipeline.transform(rows.take(np.arange(count))).tensors.items()
    }
    fixed = tuple(tensors[name] for name in integer_names)

    def forward(*inputs: torch.Tensor) -> torch.Tensor:
        given = dict(zip(floats, inputs[: len(floats)], strict=True))
        given |= dict(zip(integer_names, inputs[len(floats) :], strict=True))
        return model(*(given[name] for name in names))

    outputs = predict_outputs(model, tuple(tensors[name] for name in names))
    target, sign = explained_outputs(pipeline.task, outputs)
    was_training = model.training
    model.eval()
    try:
        attributions = attr.IntegratedGradients(forward).attribute(
            tuple(tensors[name] for name in floats),
            baselines=tuple(torch.zeros_like(tensors[name]) for name in floats),
            target=target,
            additional_forward_args=fixed or None,
            n_steps=IG_STEPS,
            internal_batch_size=1024,
        )
    finally:
        model.train(was_training)
    by_name = {
        name: (value.detach() * sign.view(-1, *[1] * (value.dim() - 1))).numpy()
        for name, value in zip(floats, attributions, strict=True)
    }
    columns, per_column = _per_raw_column(pipeline, by_name.get("numeric"))
    shown = min(count, IG_TABLE_ROWS)
    saliency_rows: tuple[int, ...] = ()
    saliency = None
    if "image" in by_name:
        saliency_rows = tuple(range(min(count, SALIENCY_IMAGES)))
        saliency = np.abs(by_name["image"][: len(saliency_rows)]).sum(axis=1)  # (S, H, W)
    return Attributions(
        method=f"captum.attr.IntegratedGradients (captum {version('captum')}), {IG_STEPS} steps, zero baseline",
        columns=columns,
        rows=tuple(range(shown)),
        per_example=per_column[:shown],
        mean_abs=np.abs(per_column).mean(axis=0) if len(columns) else np.zeros(0),
        saliency_rows=saliency_rows,
        saliency=saliency,
    )


def _per_raw_column(
    pipeline: FeaturePipeline, numeric: np.ndarray | None
) -> tuple[tuple[str, ...], np.ndarray]:
    """Map the numeric tensor's columns (numeric columns, their integer codes' indicators, then one-hot
    blocks) back to raw columns: a code column's share is its number's plus its indicators'."""
    if numeric is None:
        return (), np.zeros((0, 0))
    names = list(pipeline.numeric_.columns)
    own = numeric[:, : len(names)].copy()
    start = len(names)
    codes = pipeline.numeric_.codes_
    for index in sorted(codes):
        own[:, index] += numeric[:, start : start + len(codes[index])].sum(axis=1)
        start += len(codes[index])
    blocks = [own]
    if pipeline.categorical_.encoding == "onehot":
        for column, size in zip(
            pipeline.categorical_.columns, pipeline.categorical_.cardinalities, strict=True
        ):
            blocks.append(numeric[:, start : start + size].sum(axis=1, keepdims=True))
            names.append(column)
            start += size
    return tuple(names), np.concatenate(blocks, axis=1)
