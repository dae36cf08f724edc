"""Optimizers of the document's section 4.2: gradient descent, momentum and Adam.

Each ``step(parameters, gradients)`` updates the arrays in place and returns one ``ParameterStep``
per parameter with the gradient, the update it subtracted and its internal state (velocity, m, v,
bias-corrected m̂ and v̂), so ``forgeml explain --optimizer`` can show how the state evolves.
Every optimizer *subtracts* its update: the document's ``W + α ΔW`` climbs the loss instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from forgeml.errors import ConfigError


@dataclass(frozen=True)
class ParameterStep:
    """What one optimizer step did to one parameter: ``new = old - update``."""

    gradient: np.ndarray
    update: np.ndarray
    state: Mapping[str, np.ndarray] = field(default_factory=dict)


class Optimizer:
    """Base class: holds the learning rate and per-parameter state keyed by position."""

    name = ""
    label = ""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.steps_taken = 0

    def step(self, parameters: Sequence[np.ndarray], gradients: Sequence[np.ndarray]) -> list[ParameterStep]:
        """Update every parameter in place from its gradient; return what was done to each."""
        self.steps_taken += 1
        records = []
        for index, (parameter, gradient) in enumerate(zip(parameters, gradients, strict=True)):
            record = self._update(index, gradient)
            parameter -= record.update
            records.append(record)
        return records

    def _update(self, index: int, gradient: np.ndarray) -> ParameterStep:
        raise NotImplementedError


class GradientDescent(Optimizer):
    """``W ← W - α ∇W``: the update the document's 4.2 writes and its 4.3 then gets wrong."""

    name = "sgd"
    label = "gradient descent: W ← W - α g"

    def _update(self, index: int, gradient: np.ndarray) -> ParameterStep:
        return ParameterStep(gradient.copy(), self.learning_rate * gradient)


class Momentum(Optimizer):
    """``u ← μ u + g; W ← W - α u``, PyTorch's ``SGD(momentum=μ)`` form (no dampening)."""

    name = "momentum"
    label = "momentum: u ← μ u + g, W ← W - α u"

    def __init__(self, learning_rate: float, momentum: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.momentum = momentum
        self.velocity: dict[int, np.ndarray] = {}

    def _update(self, index: int, gradient: np.ndarray) -> ParameterStep:
        velocity = self.velocity.get(index)
        # PyTorch starts the buffer at the first gradient, which equals μ·0 + g.
        velocity = gradient.copy() if velocity is None else self.momentum * velocity + gradient
        self.velocity[index] = velocity
        return ParameterStep(gradient.copy(), self.learning_rate * velocity, {"velocity": velocity.copy()})


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, matching ``torch.optim.Adam``.

    ``m`` and ``v`` start at zero, so early on they are biased towards zero; dividing by
    ``1 - β^t`` undoes that. ``bias_correction=False`` gives the formula as the document prints it
    (``W - α m / (√v + ε)``). Because v starts further below its true size than m does, that
    formula's first step is ``(1 - β1)/√(1 - β2)`` ≈ 3.16 times *larger* than Adam's (default betas),
    so α no longer bounds the early steps.
    """

    name = "adam"
    label = "Adam (with bias correction): W ← W - α m̂ / (√v̂ + ε)"

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        *,
        bias_correction: bool = True,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.bias_correction = bias_correction
        if not bias_correction:
            self.name = "adam_uncorrected"
            self.label = "Adam as printed in the document (NO bias correction): W ← W - α m / (√v + ε)"
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}

    def _update(self, index: int, gradient: np.ndarray) -> ParameterStep:
        m = self.beta1 * self.m.get(index, 0.0) + (1.0 - self.beta1) * gradient
        v = self.beta2 * self.v.get(index, 0.0) + (1.0 - self.beta2) * gradient**2
        self.m[index], self.v[index] = m, v
        state = {"m": m.copy(), "v": v.copy()}
        if self.bias_correction:
            # m and v start at zero; dividing by 1 - β^t removes that pull towards zero.
            m, v = m / (1.0 - self.beta1**self.steps_taken), v / (1.0 - self.beta2**self.steps_taken)
            state.update(m_hat=m.copy(), v_hat=v.copy())
        update = self.learning_rate * m / (np.sqrt(v) + self.eps)
        return ParameterStep(gradient.copy(), update, state)


OPTIMIZER_NAMES = ("sgd", "momentum", "adam", "adam_uncorrected")


def get_optimizer(
    name: str,
    *,
    learning_rate: float,
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    key: str = "optimizer",
) -> Optimizer:
    """Build the optimizer called ``name`` (one of ``OPTIMIZER_NAMES``); others raise ``ConfigError``."""
    normalized = name.strip().lower()
    if normalized == "sgd":
        return GradientDescent(learning_rate)
    if normalized == "momentum":
        return Momentum(learning_rate, momentum)
    if normalized in ("adam", "adam_uncorrected"):
        return Adam(learning_rate, beta1, beta2, eps, bias_correction=normalized == "adam")
    raise ConfigError(f"{key}: unknown optimizer {name!r}. Use one of {', '.join(OPTIMIZER_NAMES)}.", key=key)
