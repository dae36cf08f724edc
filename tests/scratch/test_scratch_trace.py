"""explain --optimizer: the traced optimizer state against torch.optim on the same network."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from forgeml.errors import ConfigError
from forgeml.scratch import explain, trace_optimizer
from forgeml.scratch.example import example_network


def _torch_run(
    make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], steps: int
) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """The document network in torch, ``steps`` optimizer steps; returns the optimizer and parameters."""
    network = example_network()
    params = []
    for layer in network.weights:
        params += [torch.tensor(layer.weight, dtype=torch.float64, requires_grad=True)]
        params += [torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True)]
    optimizer = make(params)
    x = torch.tensor(network.inputs, dtype=torch.float64)
    for _ in range(steps):
        optimizer.zero_grad()
        a = torch.relu(params[0] @ x + params[1])
        a = torch.sigmoid(params[2] @ a + params[3])
        y_hat = torch.sigmoid(params[4] @ a + params[5])
        (0.5 * ((1.0 - y_hat) ** 2).sum()).backward()
        optimizer.step()
    return optimizer, params


def test_adam_trace_matches_torch_adam() -> None:
    trace = trace_optimizer("adam", steps=4, learning_rate=0.1)
    optimizer, params = _torch_run(lambda ps: torch.optim.Adam(ps, lr=0.1), 4)
    for traced, tensor in zip(trace.steps[-1].parameters, params, strict=True):
        state = optimizer.state[tensor]
        np.testing.assert_allclose(traced.after, tensor.detach().numpy().reshape(-1), rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            traced.state["m"], state["exp_avg"].numpy().reshape(-1), rtol=0, atol=1e-15
        )
        np.testing.assert_allclose(
            traced.state["v"], state["exp_avg_sq"].numpy().reshape(-1), rtol=0, atol=1e-15
        )
    assert [step.bias_corrections["1 - β1^t"] for step in trace.steps] == pytest.approx(
        [0.1, 0.19, 0.271, 0.3439]
    )
    first = trace.steps[0].parameters[-1]  # b_out at t = 1: m̂ = g and v̂ = g², so the step is α·sign(g)
    assert first.state["m_hat"] == pytest.approx(first.gradient)
    assert first.update[0] == pytest.approx(-0.1, rel=1e-6)


def test_momentum_trace_matches_torch_sgd() -> None:
    trace = trace_optimizer("momentum", steps=3, learning_rate=0.1, momentum=0.9)
    _, params = _torch_run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), 3)
    for traced, tensor in zip(trace.steps[-1].parameters, params, strict=True):
        np.testing.assert_allclose(traced.after, tensor.detach().numpy().reshape(-1), rtol=0, atol=1e-12)
    assert trace.hyperparameters == {"learning_rate": 0.1, "momentum": 0.9}


def test_first_sgd_step_is_the_walkthrough_update() -> None:
    trace, walkthrough = trace_optimizer("sgd", steps=2), explain()
    assert trace.steps[0].loss == walkthrough.value("loss")
    assert trace.steps[1].loss == pytest.approx(walkthrough.value("loss_after"), abs=1e-15)
    new_w_out = trace.steps[0].parameters[4].after
    assert new_w_out == pytest.approx(walkthrough.value("new_W3")[0], abs=1e-15)


def test_uncorrected_adam_has_no_bias_correction_and_a_larger_first_step() -> None:
    document, adam = trace_optimizer("adam_uncorrected", steps=1), trace_optimizer("adam", steps=1)
    assert document.steps[0].bias_corrections == {}
    assert "m_hat" not in document.steps[0].parameters[0].state
    ratio = document.steps[0].parameters[-1].update[0] / adam.steps[0].parameters[-1].update[0]
    assert ratio == pytest.approx(0.1 / np.sqrt(0.001), rel=1e-5)  # ε shifts it slightly


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"optimizer": "rmsprop"}, "--optimizer"),
        ({"steps": "0"}, "--steps"),
        ({"steps": "2.5"}, "--steps"),
        ({"steps": "many"}, "--steps"),
        ({"beta1": "1"}, "--beta1"),
        ({"beta2": "-0.1"}, "--beta2"),
        ({"eps": "0"}, "--eps"),
        ({"momentum": "x"}, "--momentum"),
    ],
)
def test_bad_optimizer_settings_raise_config_errors(kwargs: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as caught:
        trace_optimizer(**kwargs)
    assert caught.value.key == key
