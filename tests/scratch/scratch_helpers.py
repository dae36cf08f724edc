"""Shared helpers for the scratch tests: random networks and their PyTorch twins (float64, same weights)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from forgeml.scratch import NeuralNetwork

TORCH_ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softmax": lambda: nn.Softmax(dim=-1),
}


def random_network(seed: int, loss: str) -> tuple[NeuralNetwork, np.ndarray, np.ndarray]:
    """A random 1-3 layer network with a batch of 4 samples and targets that suit ``loss``."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    sizes = [int(s) for s in rng.integers(2, 6, size=depth + 1)]
    hidden = [str(rng.choice(["relu", "sigmoid", "tanh"])) for _ in range(depth - 1)]
    output = {"bce": "sigmoid", "cce": "softmax"}.get(loss, str(rng.choice(["sigmoid", "tanh", "softmax"])))
    network = NeuralNetwork.from_sizes(sizes, [*hidden, output], loss=loss, seed=seed)
    x = rng.normal(size=(4, sizes[0]))
    if loss == "cce":
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=4)]
    elif loss == "bce":
        y = rng.integers(0, 2, size=(4, sizes[-1])).astype(float)
    else:
        y = rng.uniform(-1, 1, size=(4, sizes[-1]))
    return network, x, y


def torch_model(network: NeuralNetwork) -> nn.Sequential:
    """An ``nn.Sequential`` of Linear + activation layers holding the scratch weights, in float64."""
    modules: list[nn.Module] = []
    for layer in network.layers:
        linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight))
            linear.bias.copy_(torch.from_numpy(layer.bias))
        modules += [linear, TORCH_ACTIVATIONS[layer.activation.name]()]
    return nn.Sequential(*modules)


def torch_loss(name: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The PyTorch form of each scratch loss, with the same reduction."""
    if name == "half_sse":
        return 0.5 * ((target - prediction) ** 2).sum()
    if name == "mse":
        return nn.functional.mse_loss(prediction, target)
    if name == "bce":
        return nn.functional.binary_cross_entropy(prediction, target)
    return -(target * torch.log(prediction)).sum() / prediction.shape[0]


def torch_gradients(network: NeuralNetwork, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """dL/dparameter for every scratch parameter, computed by PyTorch autograd."""
    model = torch_model(network)
    loss = torch_loss(network.loss.name, model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    return [p.grad.numpy() for p in model.parameters()]


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a - b‖ / max(‖a‖, ‖b‖), with a floor so two all-zero gradients (a dead ReLU) count as equal."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-8))
