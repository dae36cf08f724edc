"""The document's section 3.2 pseudo-code made real: ``NeuralNetwork`` and ``train_model``.

The method names and the epoch line are the document's, so a reader can hold the two side by side.
Everything is full-batch and float64: this engine exists to explain the math and to check the real
PyTorch engine, not to be fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from forgeml.scratch.activations import get_activation
from forgeml.scratch.layers import Dense
from forgeml.scratch.losses import get_loss
from forgeml.scratch.optimizers import GradientDescent, Optimizer


def as_batch(values: np.ndarray | Sequence[float], width: int) -> np.ndarray:
    """Return ``values`` as a float64 (N, width) batch; a single sample or a flat label vector is lifted."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        # A 1-D array is one sample when its length is the width, else N single-column labels.
        array = array.reshape(1, width) if array.shape[0] == width else array.reshape(-1, 1)
    return array


class NeuralNetwork:
    """A stack of ``Dense`` layers and a loss, with the document's forward/backward/update_params."""

    def __init__(self, layers: Sequence[Dense], loss: str = "half_sse") -> None:
        self.layers = list(layers)
        self.loss = get_loss(loss)

    @classmethod
    def from_sizes(
        cls, sizes: Sequence[int], activations: Sequence[str], *, loss: str = "half_sse", seed: int = 0
    ) -> NeuralNetwork:
        """Build layers ``sizes[0] -> sizes[1] -> ...`` with one activation name per layer."""
        assert len(activations) == len(sizes) - 1, "one activation per layer"
        rng = np.random.default_rng(seed)
        layers = [
            Dense.initialized(n_in, n_out, get_activation(name), rng)
            for n_in, n_out, name in zip(sizes[:-1], sizes[1:], activations, strict=True)
        ]
        return cls(layers, loss)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Pass a batch (N, inputs) through every layer; return the output (N, outputs)."""
        output = as_batch(x, self.layers[0].weight.shape[1])
        for layer in self.layers:
            output = layer.forward(output)
        return output

    def compute_loss(self, output: np.ndarray, y: np.ndarray) -> float:
        """Return the loss of ``output`` against targets ``y``."""
        return self.loss.value(output, as_batch(y, output.shape[1]))

    def backward(self, x: np.ndarray, y: np.ndarray, output: np.ndarray) -> None:
        """Backpropagate from dL/dŷ down to the first layer; each layer keeps its gradients.

        ``x`` is unused (the layers cached their inputs in ``forward``) but kept so the signature
        is the document's ``backward(self, x, y, output)``.
        """
        grad = self.loss.gradient(output, as_batch(y, output.shape[1]))
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def parameters(self) -> list[np.ndarray]:
        """Return every weight and bias, first layer first."""
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        """Return the gradients in the same order as ``parameters()``."""
        return [g for layer in self.layers for g in layer.gradients()]

    def update_params(self, learning_rate: float) -> None:
        """Take one gradient-descent step, ``W ← W - α ∇W``: subtract, so the loss goes down."""
        GradientDescent(learning_rate).step(self.parameters(), self.gradients())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return the network's output for ``x`` (an alias of ``forward`` that reads better in tests)."""
        return self.forward(x)


@dataclass(frozen=True)
class TrainingHistory:
    """The per-epoch training and validation losses ``train_model`` printed."""

    losses: tuple[float, ...]
    val_losses: tuple[float, ...]


def train_model(
    nn: NeuralNetwork,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    learning_rate: float,
    epochs: int,
    *,
    optimizer: Optimizer | None = None,
    print_fn: Callable[[str], None] = print,
) -> TrainingHistory:
    """Train full-batch for ``epochs`` and print the document's line ``Epoch e/E, Loss: .., Val Loss: ..``.

    Without ``optimizer`` each epoch calls ``nn.update_params(learning_rate)`` (plain gradient
    descent) exactly as the pseudo-code does; pass an ``Optimizer`` for momentum or Adam. The loss is
    measured before the update and the validation loss after it, the order the document uses.
    """
    losses, val_losses = [], []
    for epoch in range(epochs):
        output = nn.forward(x_train)
        loss = nn.compute_loss(output, y_train)
        nn.backward(x_train, y_train, output)
        if optimizer is None:
            nn.update_params(learning_rate)
        else:
            optimizer.step(nn.parameters(), nn.gradients())
        val_loss = nn.compute_loss(nn.forward(x_val), y_val)
        print_fn(f"Epoch {epoch + 1}/{epochs}, Loss: {loss}, Val Loss: {val_loss}")
        losses.append(loss)
        val_losses.append(val_loss)
    return TrainingHistory(tuple(losses), tuple(val_losses))
