"""``forgeml explain --optimizer``: several optimizer steps on the example network, state and all.

For Adam this shows the moments m and v, the bias-correction factors ``1 - β^t`` and the corrected
m̂ and v̂. m and v start at zero and v (β2 = 0.999) forgets that start far more slowly than m, so
the document's uncorrected formula takes first steps about 3 times larger than α; compare
``--optimizer adam`` with ``--optimizer adam_uncorrected``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from forgeml.errors import ConfigError
from forgeml.scratch.example import (
    DOCUMENT_ACTIVATIONS,
    DOCUMENT_INPUT,
    DOCUMENT_LEARNING_RATE,
    DOCUMENT_LOSS,
    DOCUMENT_TARGET,
    example_network,
)
from forgeml.scratch.inputs import LayerWeights, positive_number, to_number
from forgeml.scratch.optimizers import Adam, ParameterStep, get_optimizer

# The update rules printed above the table, one line per formula.
FORMULAS: dict[str, tuple[str, ...]] = {
    "sgd": ("step = α g", "W ← W - step"),
    "momentum": ("u ← μ u + g   (u starts as the first g)", "step = α u", "W ← W - step"),
    "adam": (
        "m ← β1 m + (1 - β1) g",
        "v ← β2 v + (1 - β2) g²",
        "m̂ = m / (1 - β1^t),  v̂ = v / (1 - β2^t)   (undo the pull towards the zero start)",
        "step = α m̂ / (√v̂ + ε)",
        "W ← W - step",
    ),
    "adam_uncorrected": (
        "m ← β1 m + (1 - β1) g",
        "v ← β2 v + (1 - β2) g²",
        "step = α m / (√v + ε)   (the document's 4.2 formula: no bias correction)",
        "W ← W - step",
    ),
}


@dataclass(frozen=True)
class ParameterTrace:
    """One parameter in one step, flattened to a list of scalars (row-major), named like ``W_out``."""

    name: str
    shape: tuple[int, ...]
    before: tuple[float, ...]
    gradient: tuple[float, ...]
    state: dict[str, tuple[float, ...]]
    update: tuple[float, ...]
    after: tuple[float, ...]


@dataclass(frozen=True)
class OptimizerStep:
    """Step ``t``: the loss it started from, the bias-correction factors (Adam) and every parameter."""

    t: int
    loss: float
    bias_corrections: dict[str, float]
    parameters: tuple[ParameterTrace, ...]


@dataclass(frozen=True)
class OptimizerTrace:
    """Every step of ``optimizer`` on the example network, and the loss at the end."""

    optimizer: str
    label: str
    formulas: tuple[str, ...]
    hyperparameters: dict[str, float]
    steps: tuple[OptimizerStep, ...]
    final_loss: float

    def to_dict(self) -> dict[str, object]:
        """Return plain lists, floats and strings, ready for ``json.dumps``."""
        return asdict(self)


def trace_optimizer(
    optimizer: str = "adam",
    *,
    steps: int | str = 3,
    learning_rate: float | str = DOCUMENT_LEARNING_RATE,
    momentum: float | str = 0.9,
    beta1: float | str = 0.9,
    beta2: float | str = 0.999,
    eps: float | str = 1e-8,
    inputs: str | Sequence[float] = DOCUMENT_INPUT,
    target: str | Sequence[float] = DOCUMENT_TARGET,
    activations: str | Sequence[str] = DOCUMENT_ACTIVATIONS,
    loss: str = DOCUMENT_LOSS,
    weights: str | os.PathLike[str] | Sequence[LayerWeights] | None = None,
) -> OptimizerTrace:
    """Run ``steps`` optimizer steps on one sample and record the optimizer's state after each."""
    network = example_network(
        inputs=inputs, target=target, activations=activations, loss=loss, weights=weights
    )
    count = _step_count(steps)
    hyper = {
        "learning_rate": positive_number(learning_rate, key="--lr", example="0.1"),
        "momentum": _fraction(momentum, "--momentum", "0.9"),
        "beta1": _fraction(beta1, "--beta1", "0.9"),
        "beta2": _fraction(beta2, "--beta2", "0.999"),
        "eps": positive_number(eps, key="--eps", example="1e-8"),
    }
    opt = get_optimizer(optimizer, key="--optimizer", **hyper)
    model = network.build()
    names = [f"{kind}_{name}" for name in network.names for kind in ("W", "b")]
    x, y = np.array([network.inputs]), np.array([network.target])
    records = []
    for t in range(1, count + 1):
        output = model.forward(x)
        loss_value = model.compute_loss(output, y)
        model.backward(x, y, output)
        before = [p.copy() for p in model.parameters()]
        done = opt.step(model.parameters(), model.gradients())
        params = tuple(
            _parameter_trace(name, old, new, record)
            for name, old, new, record in zip(names, before, model.parameters(), done, strict=True)
        )
        records.append(OptimizerStep(t, loss_value, _bias_corrections(opt, t), params))
    final = model.compute_loss(model.forward(x), y)
    used = _used_hyperparameters(opt.name, hyper)
    return OptimizerTrace(opt.name, opt.label, FORMULAS[opt.name], used, tuple(records), final)


def _parameter_trace(
    name: str, before: np.ndarray, after: np.ndarray, record: ParameterStep
) -> ParameterTrace:
    state = {key: _flat(value) for key, value in record.state.items()}
    return ParameterTrace(
        name, before.shape, _flat(before), _flat(record.gradient), state, _flat(record.update), _flat(after)
    )


def _flat(array: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(array).reshape(-1))


def _bias_corrections(optimizer: object, t: int) -> dict[str, float]:
    if not isinstance(optimizer, Adam) or not optimizer.bias_correction:
        return {}
    return {"1 - β1^t": 1.0 - optimizer.beta1**t, "1 - β2^t": 1.0 - optimizer.beta2**t}


def _used_hyperparameters(name: str, hyper: dict[str, float]) -> dict[str, float]:
    used = {"sgd": ("learning_rate",), "momentum": ("learning_rate", "momentum")}.get(
        name, ("learning_rate", "beta1", "beta2", "eps")
    )
    return {key: hyper[key] for key in used}


def _step_count(steps: int | str) -> int:
    number = to_number(steps, key="--steps", example="--steps 3")
    if number != int(number) or not 1 <= number <= 1000:
        raise ConfigError(f"--steps must be a whole number from 1 to 1000, got {steps!r}.", key="--steps")
    return int(number)


def _fraction(value: float | str, key: str, example: str) -> float:
    """β1, β2 and momentum must lie in [0, 1): at 1 the average never forgets and 1 - β^t is 0."""
    number = to_number(value, key=key, example=f"{key} {example}")
    if not 0.0 <= number < 1.0:
        raise ConfigError(f"{key} must be in [0, 1), got {number!r}. Pass e.g. {key} {example}.", key=key)
    return number
