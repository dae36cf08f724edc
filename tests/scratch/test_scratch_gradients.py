"""Backprop in scratch/ against finite differences and PyTorch autograd on random small networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scratch_helpers import random_network, relative_error, torch_gradients, torch_model

from forgeml.scratch import NeuralNetwork, Softmax, get_activation

LOSSES = ["half_sse", "mse", "bce", "cce"]
CASES = [(seed, LOSSES[seed % 4]) for seed in range(16)]


def scratch_gradients(network: NeuralNetwork, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    output = network.forward(x)
    network.backward(x, y, output)
    return [g.copy() for g in network.gradients()]


def finite_difference(
    network: NeuralNetwork, x: np.ndarray, y: np.ndarray, h: float = 1e-6
) -> list[np.ndarray]:
    """Central differences (L(p + h) - L(p - h)) / 2h, one parameter element at a time."""
    grads = []
    for parameter in network.parameters():
        grad = np.zeros_like(parameter)
        for index in np.ndindex(parameter.shape):
            original = parameter[index]
            parameter[index] = original + h
            plus = network.compute_loss(network.forward(x), y)
            parameter[index] = original - h
            minus = network.compute_loss(network.forward(x), y)
            parameter[index] = original
            grad[index] = (plus - minus) / (2 * h)
        grads.append(grad)
    return grads


@pytest.mark.parametrize(("seed", "loss"), CASES)
def test_gradients_match_finite_differences(seed: int, loss: str) -> None:
    network, x, y = random_network(seed, loss)
    analytic = scratch_gradients(network, x, y)
    numeric = finite_difference(network, x, y)
    for a, n in zip(analytic, numeric, strict=True):
        assert relative_error(a, n) <= 1e-6


@pytest.mark.parametrize(("seed", "loss"), CASES)
def test_gradients_match_torch_autograd(seed: int, loss: str) -> None:
    network, x, y = random_network(seed, loss)
    analytic = scratch_gradients(network, x, y)
    reference = torch_gradients(network, x, y)
    for a, r in zip(analytic, reference, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_forward_matches_torch(seed: int) -> None:
    network, x, _ = random_network(seed, "mse")
    expected = torch_model(network)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_backward_matches_torch(name: str) -> None:
    rng = np.random.default_rng(1)
    z, upstream = rng.normal(size=(3, 4)) * 5, rng.normal(size=(3, 4))
    z_torch = torch.tensor(z, requires_grad=True)
    out = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}.get(
        name, lambda t: t.softmax(-1)
    )(z_torch)
    out.backward(torch.from_numpy(upstream))
    activation = get_activation(name)
    np.testing.assert_allclose(activation.forward(z), out.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(activation.backward(z, upstream), z_torch.grad.numpy(), rtol=1e-9, atol=1e-14)


def test_sigmoid_is_stable_for_large_inputs() -> None:
    values = get_activation("sigmoid").forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(values, [0.0, 0.5, 1.0])
    assert np.isfinite(Softmax().forward(np.array([[1000.0, 0.0]]))).all()
