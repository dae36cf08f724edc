"""Activation functions of the document's section 4.2, each with the derivative backprop needs.

Every activation maps a pre-activation ``z`` of shape (N, units) to ``a`` of the same shape and turns
the gradient with respect to ``a`` into the gradient with respect to ``z`` (``backward``). The
element-wise ones also expose ``derivative(z)`` so ``forgeml explain`` can print ``σ'(z)`` itself.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from forgeml.errors import ConfigError


class Activation:
    """Base class: ``forward`` computes ``a = σ(z)``, ``backward`` applies the chain rule through it."""

    name: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    derivative_formula: ClassVar[str] = ""
    elementwise: ClassVar[bool] = True

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``σ(z)``, same shape as ``z``."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Return ``σ'(z)`` element by element (only for element-wise activations)."""
        raise NotImplementedError

    def backward(self, z: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dz given dL/da; for an element-wise σ that is ``dL/da ⊙ σ'(z)``."""
        return grad_output * self.derivative(z)


class ReLU(Activation):
    """``max(0, z)``: the derivative is 1 where z > 0, else 0 (0 at the kink, as PyTorch takes it)."""

    name = "relu"
    formula = "max(0, z)"
    derivative_formula = "1 if z > 0 else 0"

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``max(0, z)`` element by element."""
        return np.maximum(z, 0.0)

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Return 1.0 where z > 0, else 0.0."""
        return (z > 0).astype(z.dtype)


class Sigmoid(Activation):
    """``1 / (1 + e^-z)``; its derivative ``σ(z)(1 - σ(z))`` never exceeds 0.25."""

    name = "sigmoid"
    formula = "1 / (1 + e^-z)"
    derivative_formula = "σ(z) (1 - σ(z))"

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``1 / (1 + e^-z)``, computed without overflow for large |z|."""
        # Split by sign so that exp never overflows for large |z|.
        out = np.empty_like(z, dtype=np.result_type(z, np.float64))
        positive = z >= 0
        out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
        exp_z = np.exp(z[~positive])
        out[~positive] = exp_z / (1.0 + exp_z)
        return out

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Return ``σ(z)(1 - σ(z))``."""
        s = self.forward(z)
        return s * (1.0 - s)


class Tanh(Activation):
    """``(e^z - e^-z) / (e^z + e^-z)``; its derivative is ``1 - tanh(z)^2``."""

    name = "tanh"
    formula = "(e^z - e^-z) / (e^z + e^-z)"
    derivative_formula = "1 - tanh(z)²"

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``tanh(z)``."""
        return np.tanh(z)

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Return ``1 - tanh(z)²``."""
        return 1.0 - np.tanh(z) ** 2


class Softmax(Activation):
    """``e^z_i / Σ_j e^z_j`` over each row; not element-wise, so ``backward`` uses the Jacobian.

    The Jacobian of softmax is ``diag(s) - s sᵀ``; multiplying it by the incoming gradient ``g`` gives
    ``s ⊙ (g - (g · s))``, which avoids building the (units x units) matrix.
    """

    name = "softmax"
    formula = "e^z_i / Σ_j e^z_j"
    derivative_formula = "diag(s) - s sᵀ (a Jacobian)"
    elementwise = False

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return ``e^z / Σ e^z`` per row (shifted by the row max, which leaves it unchanged)."""
        shifted = z - z.max(axis=-1, keepdims=True)  # subtracting the max keeps exp from overflowing
        exp_z = np.exp(shifted)
        return exp_z / exp_z.sum(axis=-1, keepdims=True)

    def backward(self, z: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
        """Return ``J(z)ᵀ g = s ⊙ (g - g · s)`` per row, the Jacobian-vector product."""
        s = self.forward(z)
        return s * (grad_output - (grad_output * s).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, type[Activation]] = {cls.name: cls for cls in (ReLU, Sigmoid, Tanh, Softmax)}


def get_activation(name: str, *, key: str = "activation") -> Activation:
    """Return a new activation looked up by name, like Keras's ``activations.get("relu")``.

    Raises ``ConfigError`` naming ``key`` when the name is unknown, so a typo says how to fix it.
    """
    cls = ACTIVATIONS.get(name.strip().lower())
    if cls is None:
        known = ", ".join(ACTIVATIONS)
        raise ConfigError(
            f"{key}: unknown activation {name!r}. Use one of {known}, e.g. relu,sigmoid,sigmoid.", key=key
        )
    return cls()
