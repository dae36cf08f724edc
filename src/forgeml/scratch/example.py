"""The small network ``forgeml explain`` walks through: the document's 4.3 example unless told otherwise.

``example_network(...)`` is where the options of ``forgeml explain`` become one checked, immutable
``ExampleNetwork``; the walkthrough and the optimizer trace both start from it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forgeml.errors import ConfigError
from forgeml.scratch.activations import get_activation
from forgeml.scratch.inputs import (
    DOCUMENT_WEIGHTS,
    LayerWeights,
    Vector,
    check_shapes,
    load_weights,
    parse_names,
    parse_numbers,
)
from forgeml.scratch.layers import Dense
from forgeml.scratch.losses import get_loss
from forgeml.scratch.network import NeuralNetwork

DOCUMENT_INPUT: Vector = (1.0, 0.0, 1.0)
DOCUMENT_TARGET: Vector = (1.0,)
DOCUMENT_ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "sigmoid")
DOCUMENT_LOSS = "half_sse"
DOCUMENT_LEARNING_RATE = 0.1


def layer_names(count: int) -> tuple[str, ...]:
    """Name layers the way the document does: ``in``, ``hid``, ``out`` (``hid1``, ``hid2``... when deeper)."""
    if count == 1:
        return ("out",)
    hidden = ("hid",) if count == 3 else tuple(f"hid{i}" for i in range(1, count - 1))
    return ("in", *hidden, "out")


@dataclass(frozen=True)
class ExampleNetwork:
    """A checked network plus the one sample it is explained on."""

    inputs: Vector
    target: Vector
    activations: tuple[str, ...]
    loss: str
    weights: tuple[LayerWeights, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Layer names for display: ``in``, ``hid``, ``out`` for the document's three layers."""
        return layer_names(len(self.weights))

    def build(self) -> NeuralNetwork:
        """Return a fresh scratch ``NeuralNetwork`` holding copies of these weights."""
        layers = [
            Dense(np.array(layer.weight), np.array(layer.bias), get_activation(name))
            for layer, name in zip(self.weights, self.activations, strict=True)
        ]
        return NeuralNetwork(layers, self.loss)

    def is_document_example(self) -> bool:
        """True when this is exactly the document's 4.3 example (with W_out corrected to 1x2)."""
        return (self.inputs, self.target, self.activations, self.loss, self.weights) == (
            DOCUMENT_INPUT,
            DOCUMENT_TARGET,
            DOCUMENT_ACTIVATIONS,
            DOCUMENT_LOSS,
            DOCUMENT_WEIGHTS,
        )


def example_network(
    *,
    inputs: str | Sequence[float] = DOCUMENT_INPUT,
    target: str | Sequence[float] = DOCUMENT_TARGET,
    activations: str | Sequence[str] = DOCUMENT_ACTIVATIONS,
    loss: str = DOCUMENT_LOSS,
    weights: str | os.PathLike[str] | Sequence[LayerWeights] | None = None,
) -> ExampleNetwork:
    """Check every option and return the network; bad input raises ``ConfigError`` naming the option.

    Strings are accepted where the CLI passes text (``"1,0,1"``), so the CLI and the Python API share
    one set of checks and one wording of every error.
    """
    x = parse_numbers(inputs, key="--input", example="1,0,1")
    y = parse_numbers(target, key="--target", example="1")
    names = parse_names(activations, key="--activations")
    for name in names:
        get_activation(name, key="--activations")
    get_loss(loss, key="--loss")
    if weights is None:
        layers, source = DOCUMENT_WEIGHTS, "the document's weights"
    elif isinstance(weights, (str, os.PathLike)):
        layers, source = load_weights(weights), os.fspath(weights)
    else:
        layers, source = tuple(weights), "weights"
    check_shapes(x, y, names, layers, source)
    _check_loss_fits(loss.strip().lower(), names[-1], y)
    return ExampleNetwork(x, y, names, loss.strip().lower(), layers)


def _check_loss_fits(loss: str, last_activation: str, target: Vector) -> None:
    """Cross-entropy needs probabilities out and labels in [0, 1]; say so instead of printing NaN."""
    if loss != "bce":
        return
    if last_activation not in ("sigmoid", "softmax"):
        raise ConfigError(
            f"--activations: --loss bce needs probabilities, but the last activation is {last_activation}; "
            "end --activations with sigmoid.",
            key="--activations",
        )
    if any(not 0.0 <= value <= 1.0 for value in target):
        raise ConfigError(f"--target: bce needs targets in [0, 1], got {list(target)}.", key="--target")
