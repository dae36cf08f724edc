"""Scratch optimizers against torch.optim on the same parameters and gradients, in float64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from forgeml.errors import ConfigError
from forgeml.scratch import Adam, GradientDescent, Momentum, Optimizer, get_optimizer

MakeOptimizer = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


def _problem(seed: int = 0) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Two parameters and three steps' worth of gradients."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    grads = [[rng.normal(size=p.shape) * 10.0**-k for k, p in enumerate(params)] for _ in range(3)]
    return params, grads


def _run_scratch(
    optimizer: Optimizer, params: list[np.ndarray], grads: list[list[np.ndarray]], steps: int
) -> list[np.ndarray]:
    params = [p.copy() for p in params]
    for g in grads[:steps]:
        optimizer.step(params, g)
    return params


def _run_torch(
    make: MakeOptimizer, params: list[np.ndarray], grads: list[list[np.ndarray]], steps: int
) -> tuple[list[np.ndarray], torch.optim.Optimizer]:
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = make(tensors)
    for g in grads[:steps]:
        for tensor, grad in zip(tensors, g, strict=True):
            tensor.grad = torch.from_numpy(grad.copy())
        optimizer.step()
    return [t.detach().numpy() for t in tensors], optimizer


def test_one_adam_step_matches_torch_to_1e_12() -> None:
    params, grads = _problem()
    ours = _run_scratch(Adam(0.01), params, grads, 1)
    theirs, _ = _run_torch(lambda ts: torch.optim.Adam(ts, lr=0.01), params, grads, 1)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_adam_state_matches_torch_over_three_steps() -> None:
    params, grads = _problem(1)
    adam = Adam(0.05, beta1=0.8, beta2=0.99, eps=1e-6)
    ours = _run_scratch(adam, params, grads, 3)
    theirs, optimizer = _run_torch(
        lambda ts: torch.optim.Adam(ts, lr=0.05, betas=(0.8, 0.99), eps=1e-6), params, grads, 3
    )
    for index, tensor in enumerate(optimizer.param_groups[0]["params"]):
        state = optimizer.state[tensor]
        np.testing.assert_allclose(adam.m[index], state["exp_avg"].numpy(), rtol=0, atol=1e-15)
        np.testing.assert_allclose(adam.v[index], state["exp_avg_sq"].numpy(), rtol=0, atol=1e-15)
        np.testing.assert_allclose(ours[index], theirs[index], rtol=0, atol=1e-12)


def test_momentum_and_gradient_descent_match_torch_sgd() -> None:
    params, grads = _problem(2)
    for ours_opt, make in [
        (Momentum(0.1, 0.9), lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9)),
        (GradientDescent(0.1), lambda ts: torch.optim.SGD(ts, lr=0.1)),
    ]:
        ours = _run_scratch(ours_opt, params, grads, 3)
        theirs, _ = _run_torch(make, params, grads, 3)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_uncorrected_adam_is_the_document_formula_and_starts_larger() -> None:
    """Without bias correction the first step is (1 - β1) / √(1 - β2) ≈ 3.16 times larger than α."""
    gradient = np.array([0.5, -2.0])
    corrected, uncorrected = np.zeros(2), np.zeros(2)
    Adam(0.1, eps=0.0).step([corrected], [gradient])
    document = get_optimizer("adam_uncorrected", learning_rate=0.1, eps=0.0)
    document.step([uncorrected], [gradient])
    np.testing.assert_allclose(corrected, -0.1 * np.sign(gradient))
    np.testing.assert_allclose(uncorrected / corrected, (1 - 0.9) / np.sqrt(1 - 0.999))
    assert "NO bias correction" in document.label


def test_gradient_descent_subtracts() -> None:
    weight = np.array([1.0])
    GradientDescent(0.1).step([weight], [np.array([2.0])])
    assert weight[0] == pytest.approx(0.8)


def test_unknown_optimizer_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown optimizer 'adamw'. Use one of sgd, momentum, adam"):
        get_optimizer("adamw", learning_rate=0.1)
