"""The ``forgeml explain`` walkthrough: one forward pass, backward pass and update, every number named.

The numbers come from the scratch engine itself (``Dense`` caches z, a, δ and the gradients), so
what is printed is what the engine computes; ``tests/scratch`` checks them against PyTorch autograd.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from forgeml.scratch.example import (
    DOCUMENT_ACTIVATIONS,
    DOCUMENT_INPUT,
    DOCUMENT_LEARNING_RATE,
    DOCUMENT_LOSS,
    DOCUMENT_TARGET,
    ExampleNetwork,
    example_network,
)
from forgeml.scratch.inputs import LayerWeights, Matrix, Vector, positive_number
from forgeml.scratch.layers import Dense
from forgeml.scratch.optimizers import GradientDescent

Numbers = float | Vector | Matrix


@dataclass(frozen=True)
class Step:
    """One named intermediate value: ``symbol = formula = value``.

    ``key`` is a stable ASCII id (``z1``, ``delta3``, ``grad_W2``, ``new_b1``) that programs and the
    document comparison look values up by; ``phase`` is given, forward, loss, backward or update.
    """

    key: str
    phase: str
    symbol: str
    formula: str
    value: Numbers


@dataclass(frozen=True)
class Explanation:
    """Every value of one training step on one sample, in the order they are computed."""

    network: ExampleNetwork
    learning_rate: float
    steps: tuple[Step, ...]
    loss: float  # before the update
    loss_after: float  # after one gradient-descent step: lower, unless the learning rate is too large

    def value(self, key: str) -> Numbers:
        """Return the value of the step with this ``key`` (``KeyError`` if there is none)."""
        for step in self.steps:
            if step.key == key:
                return step.value
        raise KeyError(key)

    def to_dict(self) -> dict[str, object]:
        """Return plain lists, floats and strings, ready for ``json.dumps``."""
        return asdict(self)


def explain(
    *,
    inputs: str | Sequence[float] = DOCUMENT_INPUT,
    target: str | Sequence[float] = DOCUMENT_TARGET,
    activations: str | Sequence[str] = DOCUMENT_ACTIVATIONS,
    loss: str = DOCUMENT_LOSS,
    learning_rate: float | str = DOCUMENT_LEARNING_RATE,
    weights: str | os.PathLike[str] | Sequence[LayerWeights] | None = None,
) -> Explanation:
    """Run one forward pass, backward pass and gradient-descent step and record every intermediate value.

    The defaults are the document's section 4.3 example, with its mistakes fixed: W_out is 1x2 and
    the update subtracts. Bad input raises ``ConfigError`` naming the option or weights key.
    """
    network = example_network(
        inputs=inputs, target=target, activations=activations, loss=loss, weights=weights
    )
    rate = positive_number(learning_rate, key="--lr", example="0.1")
    model = network.build()
    x, y = np.array([network.inputs]), np.array([network.target])  # a batch of one: (1, n)
    steps = _given_steps(network)
    output = model.forward(x)
    steps += _forward_steps(model.layers, network.names)
    loss = model.compute_loss(output, y)
    steps.append(Step("loss", "loss", "L", model.loss.formula, loss))
    model.backward(x, y, output)
    grad_output = _vector(model.loss.gradient(output, y))
    steps.append(Step("dL_dyhat", "backward", "dL/dŷ", model.loss.gradient_formula, grad_output))
    steps += _backward_steps(model.layers, network.names)
    GradientDescent(rate).step(model.parameters(), model.gradients())
    steps += _update_steps(model.layers, network.names, rate)
    after = model.compute_loss(model.forward(x), y)
    steps.append(Step("loss_after", "update", "L after", f"{model.loss.formula} with the new weights", after))
    return Explanation(network, rate, tuple(steps), loss, after)


def _given_steps(network: ExampleNetwork) -> list[Step]:
    steps = [
        Step("x", "given", "x", "input (--input)", network.inputs),
        Step("y", "given", "y", "target (--target)", network.target),
    ]
    for index, (layer, name) in enumerate(zip(network.weights, network.names, strict=True), start=1):
        shape = f"{len(layer.weight)}x{len(layer.weight[0])}"
        steps.append(Step(f"W{index}", "given", f"W_{name}", f"layer {index} weight, {shape}", layer.weight))
        steps.append(Step(f"b{index}", "given", f"b_{name}", f"layer {index} bias", layer.bias))
    return steps


def _forward_steps(layers: Sequence[Dense], names: Sequence[str]) -> list[Step]:
    steps = []
    for index, (layer, name) in enumerate(zip(layers, names, strict=True), start=1):
        below = "x" if index == 1 else f"a[{index - 1}]"
        act = layer.activation
        symbol = f"a[{index}] = ŷ" if index == len(layers) else f"a[{index}]"
        z_formula = f"W_{name} · {below} + b_{name}"
        a_formula = f"{act.name}(z[{index}]) = {act.formula}"
        steps.append(Step(f"z{index}", "forward", f"z[{index}]", z_formula, _vector(layer.pre_activation)))
        steps.append(Step(f"a{index}", "forward", symbol, a_formula, _vector(layer.output)))
    return steps


def _backward_steps(layers: Sequence[Dense], names: Sequence[str]) -> list[Step]:
    """Output layer first: δ[l] = (W[l+1]ᵀ δ[l+1]) ⊙ σ'(z[l]), then ∇W = δ[l] a[l-1]ᵀ and ∇b = δ[l]."""
    steps: list[Step] = []
    for index in range(len(layers), 0, -1):
        layer, name, act = layers[index - 1], names[index - 1], layers[index - 1].activation
        incoming = "dL/dŷ" if index == len(layers) else f"(W_{names[index]}ᵀ · δ[{index + 1}])"
        if act.elementwise:
            derivative = _vector(act.derivative(layer.pre_activation))
            formula = f"{act.name}': {act.derivative_formula}"
            steps.append(Step(f"dact{index}", "backward", f"σ'(z[{index}])", formula, derivative))
            delta_formula = f"{incoming} ⊙ σ'(z[{index}])"
        else:
            delta_formula = f"J_{act.name}(z[{index}])ᵀ · {incoming}"
        below = "x" if index == 1 else f"a[{index - 1}]"
        grad_weight, grad_bias = _matrix(layer.grad_weight), _vector(layer.grad_bias)
        steps += [
            Step(f"delta{index}", "backward", f"δ[{index}]", delta_formula, _vector(layer.delta)),
            Step(f"grad_W{index}", "backward", f"∇W_{name}", f"δ[{index}] · {below}ᵀ", grad_weight),
            Step(f"grad_b{index}", "backward", f"∇b_{name}", f"δ[{index}]", grad_bias),
        ]
    return steps


def _update_steps(layers: Sequence[Dense], names: Sequence[str], rate: float) -> list[Step]:
    steps = []
    for index, (layer, name) in enumerate(zip(layers, names, strict=True), start=1):
        for kind, values in (("W", _matrix(layer.weight)), ("b", _vector(layer.bias))):
            param = f"{kind}_{name}"
            formula = f"{param} - α ∇{param}  (α = {rate:g})"
            steps.append(Step(f"new_{kind}{index}", "update", f"new {param}", formula, values))
    return steps


def _vector(array: np.ndarray) -> Vector:
    """Turn a batch of one (1, n) or a flat (n,) array into a tuple of Python floats."""
    return tuple(float(v) for v in np.asarray(array).reshape(-1))


def _matrix(array: np.ndarray) -> Matrix:
    """A 2-D array as a tuple of row tuples of Python floats (immutable, JSON-ready)."""
    return tuple(tuple(float(v) for v in row) for row in np.asarray(array))
