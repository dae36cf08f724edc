"""Losses of the document's section 4.2, each paired with its gradient with respect to the prediction.

``prediction`` and ``target`` have shape (N, outputs). Every loss is averaged over the N samples
except ``half_sse``, the document's ``½ Σ (y - ŷ)²``, which sums, exactly as written there. The
gradient functions return dL/dŷ with the same reduction, so backprop needs no extra scaling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forgeml.errors import ConfigError

# Probabilities are clipped this far from 0 and 1 so that log() stays finite.
_EPSILON = 1e-12


def half_sum_squared_error(prediction: np.ndarray, target: np.ndarray) -> float:
    """The document's "MSE": ``½ Σ_i (y_i - ŷ_i)²``, a sum, not a mean; the ½ cancels the derivative's 2."""
    return 0.5 * float(np.sum((target - prediction) ** 2))


def half_sum_squared_error_gradient(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ of ``½ Σ (y - ŷ)²`` is ``ŷ - y``."""
    return prediction - target


def mean_squared_error(prediction: np.ndarray, target: np.ndarray) -> float:
    """``mean((y - ŷ)²)`` over every element, what PyTorch's ``nn.MSELoss()`` computes."""
    return float(np.mean((target - prediction) ** 2))


def mean_squared_error_gradient(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ of the mean form is ``2 (ŷ - y) / size``."""
    return 2.0 * (prediction - target) / prediction.size


def binary_cross_entropy(prediction: np.ndarray, target: np.ndarray) -> float:
    """``-mean(y log ŷ + (1 - y) log(1 - ŷ))``; the document omits the second term, which 0-labels need."""
    p = np.clip(prediction, _EPSILON, 1.0 - _EPSILON)
    return float(-np.mean(target * np.log(p) + (1.0 - target) * np.log(1.0 - p)))


def binary_cross_entropy_gradient(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ is ``(ŷ - y) / (ŷ (1 - ŷ)) / size``; after a sigmoid this collapses to ``ŷ - y`` per sample."""
    p = np.clip(prediction, _EPSILON, 1.0 - _EPSILON)
    return (p - target) / (p * (1.0 - p)) / prediction.size


def categorical_cross_entropy(prediction: np.ndarray, target: np.ndarray) -> float:
    """``-mean_n Σ_i y_i log ŷ_i`` for one-hot ``y``: the document's cross-entropy, averaged over samples."""
    p = np.clip(prediction, _EPSILON, 1.0)
    return float(-np.sum(target * np.log(p)) / prediction.shape[0])


def categorical_cross_entropy_gradient(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ is ``-y / ŷ / N``; after a softmax this collapses to ``(ŷ - y) / N``."""
    p = np.clip(prediction, _EPSILON, 1.0)
    return -target / p / prediction.shape[0]


@dataclass(frozen=True)
class Loss:
    """A loss looked up by name: its value, its gradient dL/dŷ, and the formula ``forgeml explain`` prints."""

    name: str
    formula: str
    gradient_formula: str
    value: Callable[[np.ndarray, np.ndarray], float]
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("half_sse", "½ Σ (y - ŷ)²", "ŷ - y", half_sum_squared_error, half_sum_squared_error_gradient),
        Loss("mse", "mean((y - ŷ)²)", "2 (ŷ - y) / n", mean_squared_error, mean_squared_error_gradient),
        Loss(
            "bce",
            "-mean(y log ŷ + (1 - y) log(1 - ŷ))",
            "(ŷ - y) / (ŷ (1 - ŷ)) / n",
            binary_cross_entropy,
            binary_cross_entropy_gradient,
        ),
        Loss(
            "cce",
            "-Σ y log ŷ / N",
            "-y / ŷ / N",
            categorical_cross_entropy,
            categorical_cross_entropy_gradient,
        ),
    )
}


def get_loss(name: str, *, key: str = "loss") -> Loss:
    """Return the loss called ``name``; an unknown name raises ``ConfigError`` listing the known ones."""
    loss = LOSSES.get(name.strip().lower())
    if loss is None:
        raise ConfigError(f"{key}: unknown loss {name!r}. Use one of {', '.join(LOSSES)}.", key=key)
    return loss
