"""The dense layer of the document's section 4.2: ``f(x) = σ(W · x + b)``.

Shapes follow PyTorch's ``nn.Linear`` so that weights copy across unchanged: ``weight`` is
(out_features, in_features), ``bias`` is (out_features,), and a batch ``x`` is (N, in_features).
For one sample the document's column-vector form ``W · x`` is the same numbers as ``x @ Wᵀ``.
"""

from __future__ import annotations

import numpy as np

from forgeml.scratch.activations import Activation


class Dense:
    """One fully connected layer with its activation; ``forward`` caches what ``backward`` needs.

    After ``forward`` the layer holds ``inputs`` (N, in), ``pre_activation`` z (N, out) and
    ``output`` a (N, out). After ``backward`` it holds ``delta`` = dL/dz (N, out), ``grad_weight``
    (out, in) and ``grad_bias`` (out,), the numbers ``forgeml explain`` prints.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, activation: Activation) -> None:
        self.weight = np.array(weight, dtype=np.float64)
        self.bias = np.array(bias, dtype=np.float64)
        self.activation = activation
        assert self.weight.ndim == 2 and self.bias.shape == (self.weight.shape[0],), "weight/bias shapes"
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = np.zeros_like(self.bias)

    @classmethod
    def initialized(
        cls, in_features: int, out_features: int, activation: Activation, rng: np.random.Generator
    ) -> Dense:
        """Create a layer with PyTorch's default init: uniform in ±1/√in_features for weight and bias."""
        bound = 1.0 / np.sqrt(in_features)
        weight = rng.uniform(-bound, bound, size=(out_features, in_features))
        bias = rng.uniform(-bound, bound, size=out_features)
        return cls(weight, bias, activation)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Return ``σ(x Wᵀ + b)`` for a batch x of shape (N, in_features)."""
        self.inputs = inputs
        self.pre_activation = inputs @ self.weight.T + self.bias  # (N, out)
        self.output = self.activation.forward(self.pre_activation)  # (N, out)
        return self.output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Take dL/da (N, out), store the parameter gradients, return dL/dx (N, in) for the layer below."""
        self.delta = self.activation.backward(self.pre_activation, grad_output)  # dL/dz, (N, out)
        self.grad_weight = self.delta.T @ self.inputs  # Σ_n δ_n x_nᵀ, (out, in)
        self.grad_bias = self.delta.sum(axis=0)  # (out,)
        return self.delta @ self.weight  # Wᵀ δ per sample, (N, in)

    def parameters(self) -> list[np.ndarray]:
        """Return ``[weight, bias]``; optimizers update these arrays in place."""
        return [self.weight, self.bias]

    def gradients(self) -> list[np.ndarray]:
        """Return ``[grad_weight, grad_bias]`` in the same order as ``parameters()``."""
        return [self.grad_weight, self.grad_bias]
