"""Text explanations: token attributions through the embedding layer, and the most confidently wrong texts.

Token ids are integers, so plain integrated gradients has nothing to differentiate. Captum's
``LayerIntegratedGradients`` integrates along the path from a baseline *embedding* to the text's
embedding instead: the baseline keeps ``[CLS]``/``[SEP]`` and puts the padding token everywhere
else (Captum's BERT tutorial does the same), and the attribution of each token is its embedding's
attribution summed over the embedding dimension. Every text model has one embedding layer the
ids go through (``tokens`` for the models trained from scratch, the backbone's input embeddings
for ``pretrained``), so one function explains them all.

The card shows the texts as HTML (the browser renders any script, and a reader can select and copy
them), each token's span of the original text highlighted by its attribution; the spans come from
the tokenizer's character offsets, so a Chinese character, an English word piece and the text cut
off by ``max_length`` all land where they are in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from forgeml.data import RawData, TaskInfo
from forgeml.features import FeaturePipeline
from forgeml.features.text import texts_of
from forgeml.models import predict_outputs

TEXT_EXAMPLES = 8  # test texts shown with their token attributions
WRONG_TEXTS = 16  # most confidently wrong texts listed
SHOWN_CHARACTERS = 400  # a longer text is cut in the card (the whole row is in the test split)
TEXT_IG_STEPS = 32

Piece = tuple[str, float | None]  # a span of the text and its token's attribution (None: not a token)


@dataclass(frozen=True)
class TextAttribution:
    """One test text split into spans, each token's span with its signed attribution."""

    row: int  # 0-based position in the test rows
    column: str
    said: str
    pieces: tuple[Piece, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "row": self.row,
            "column": self.column,
            "said": self.said,
            "pieces": [[text, None if weight is None else round(weight, 6)] for text, weight in self.pieces],
        }


@dataclass(frozen=True)
class WrongText:
    """A test text the model got wrong, with the confidence of its wrong answer."""

    row: int  # 0-based position in the test rows
    truth: str
    said: str
    confidence: float
    text: str


def token_layer(model: nn.Module) -> nn.Module | None:
    """The embedding layer every token id goes through, or None for a model that reads no text."""
    backbone = getattr(model, "backbone", None)
    if backbone is not None and hasattr(backbone, "get_input_embeddings"):
        try:
            return backbone.get_input_embeddings()
        except NotImplementedError:  # a vision backbone (ConvNeXt) has no token embeddings
            return None
    tokens = getattr(model, "tokens", None)
    return tokens if isinstance(tokens, nn.Embedding) else None


def text_method() -> str:
    return (
        f"captum.attr.LayerIntegratedGradients (captum {version('captum')}) through the token embeddings, "
        f"{TEXT_IG_STEPS} steps, padding-token baseline"
    )


def text_attributions(
    attr: Any, model: nn.Module, layer: nn.Module, pipeline: FeaturePipeline, rows: RawData
) -> tuple[TextAttribution, ...]:
    """Token attributions of the first test texts, signed towards the predicted class (or value).

    ``attr`` is ``captum.attr``. One text at a time: with several text columns the embedding layer
    sees rows x columns sequences, which Captum's internal batching cannot split, and one text keeps
    a pretrained encoder's n_steps interpolated copies small.
    """
    count = min(len(rows), TEXT_EXAMPLES)
    if count == 0:
        return ()
    subset = rows.take(np.arange(count))
    tensors = pipeline.transform(subset).tensors
    names = pipeline.input_spec.names
    features = pipeline.text_
    pad_id = int((features.tokenizer_.padding or {}).get("pad_id", 0))
    said = _said(model, pipeline, tuple(tensors[name] for name in names))
    explainer = attr.LayerIntegratedGradients(_forward_with_text_first(model, names), layer)
    found: list[TextAttribution] = []
    was_training = model.training
    model.eval()
    try:
        for column_index, column in enumerate(features.columns):
            texts = texts_of(subset.table[column], column)
            encodings = features.tokenizer_.encode_batch(texts)
            for row, encoding in enumerate(encodings):
                ids = tensors["text"][row : row + 1]  # (1, C, L)
                special = torch.tensor(encoding.special_tokens_mask, dtype=torch.bool)  # (L,)
                baseline = ids.clone()
                baseline[0, column_index] = torch.where(special, ids[0, column_index], pad_id)
                others = tuple(tensors[name][row : row + 1] for name in names if name != "text")
                target, sign = said[1][row : row + 1], float(said[2][row])
                values = explainer.attribute(
                    ids,
                    baselines=baseline,
                    target=target,
                    additional_forward_args=others,
                    n_steps=TEXT_IG_STEPS,
                )  # (C, L', E): the layer's output for this row's C texts
                per_token = values.detach().sum(dim=-1)[column_index].numpy() * sign  # (L',)
                pieces = _pieces(texts[row], encoding, per_token)
                found.append(TextAttribution(row, column, said[0][row], pieces))
    finally:
        model.train(was_training)
    return tuple(sorted(found, key=lambda item: (item.row, features.columns.index(item.column))))


def _forward_with_text_first(model: nn.Module, names: list[str]) -> Any:
    """``model`` called with the token ids first (what Captum varies), the other inputs after."""
    others = [name for name in names if name != "text"]

    def forward(text: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        given = dict(zip(others, rest, strict=True)) | {"text": text}
        return model(*(given[name] for name in names))

    return forward


def _said(
    model: nn.Module, pipeline: FeaturePipeline, inputs: tuple[torch.Tensor, ...]
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The predicted label (or value) per row, the output index to explain, and its sign."""
    outputs = predict_outputs(model, inputs)
    decoded = pipeline.target_.decode(outputs.numpy())
    target, sign = explained_outputs(pipeline.task, outputs)
    values = decoded.values
    shown = [f"{value:.4g}" if isinstance(value, float) else str(value) for value in list(values)]
    return shown, target, sign


def explained_outputs(task: TaskInfo, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Output index to explain per row, and a sign that points a binary logit at the predicted class."""
    rows = len(outputs)
    if task.kind == "classification":
        return outputs.argmax(dim=1), torch.ones(rows)
    if task.kind == "binary":
        return torch.zeros(rows, dtype=torch.long), torch.where(outputs[:, 0] >= 0, 1.0, -1.0)
    return torch.zeros(rows, dtype=torch.long), torch.ones(rows)


def _pieces(text: str, encoding: Any, per_token: np.ndarray) -> tuple[Piece, ...]:
    """``text`` cut at its tokens' character offsets; tokens sharing a span (bytes of one character) add up."""
    spans: list[list[Any]] = []  # [start, end, weight]
    for position, (start, end) in enumerate(encoding.offsets[: len(per_token)]):
        if encoding.special_tokens_mask[position] or not encoding.attention_mask[position] or end <= start:
            continue
        if spans and start < spans[-1][1]:  # overlaps the previous token: one span of the text
            spans[-1][1] = max(spans[-1][1], end)
            spans[-1][2] += float(per_token[position])
        else:
            spans.append([start, end, float(per_token[position])])
    pieces: list[Piece] = []
    cursor = 0
    for start, end, weight in spans:
        if start >= SHOWN_CHARACTERS:
            break
        if start > cursor:
            pieces.append((text[cursor:start], None))
        pieces.append((text[start:end], weight))
        cursor = end
    rest = text[cursor:]
    if rest:
        cut = max(0, SHOWN_CHARACTERS - cursor)
        pieces.append((rest[:cut] + ("…" if len(rest) > cut else ""), None))
    return tuple(pieces)


def wrong_texts(
    pipeline: FeaturePipeline, table: pd.DataFrame, truth: np.ndarray, probabilities: np.ndarray | None
) -> tuple[WrongText, ...]:
    """The test texts a classifier got wrong with the highest confidence (none for regression)."""
    columns = list(pipeline.text_.columns) if hasattr(pipeline, "text_") else []
    if probabilities is None or not columns:
        return ()
    labels = [str(label) for label in pipeline.task.labels]
    guess = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(guess != truth)
    order = wrong[np.argsort(-probabilities[wrong, guess[wrong]], kind="stable")][:WRONG_TEXTS]
    found = []
    for row in order:
        text = " | ".join(
            texts_of(table[column].iloc[[row]], column)[0] for column in columns
        )  # one line per row, columns joined
        shown = text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"
        found.append(
            WrongText(
                int(row), labels[truth[row]], labels[guess[row]], float(probabilities[row, guess[row]]), shown
            )
        )
    return tuple(found)
