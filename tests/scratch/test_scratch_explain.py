"""The explain walkthrough: its numbers recomputed with PyTorch autograd, and its checks of bad input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from forgeml.errors import ConfigError
from forgeml.scratch import DOCUMENT_WEIGHTS, LayerWeights, explain
from forgeml.scratch.inputs import Vector

EXAMPLE_WEIGHTS = Path(__file__).resolve().parents[2] / "examples" / "explain_weights.yaml"
TORCH_ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def _torch_walkthrough(
    inputs: Vector,
    target: Vector,
    activations: Sequence[str],
    loss: str,
    lr: float,
    weights: Sequence[LayerWeights],
) -> dict[str, object]:
    """Every walkthrough value, keyed like the Explanation's steps, computed by PyTorch autograd."""
    params = []
    for layer in weights:
        params += [
            torch.tensor(layer.weight, dtype=torch.float64, requires_grad=True),
            torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True),
        ]
    x, y = torch.tensor(inputs, dtype=torch.float64), torch.tensor(target, dtype=torch.float64)

    def forward(ps: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        values, a = {}, x
        for index, name in enumerate(activations, start=1):
            z = ps[2 * index - 2] @ a + ps[2 * index - 1]
            if z.requires_grad:
                z.retain_grad()
            a = TORCH_ACTIVATIONS[name](z)
            values[f"z{index}"], values[f"a{index}"] = z, a
        return values, a

    def loss_of(prediction: torch.Tensor) -> torch.Tensor:
        if loss == "half_sse":
            return 0.5 * ((y - prediction) ** 2).sum()
        if loss == "mse":
            return ((y - prediction) ** 2).mean()
        return torch.nn.functional.binary_cross_entropy(prediction, y)

    values, prediction = forward(params)
    total = loss_of(prediction)
    total.backward()
    out = {key: value.detach().numpy() for key, value in values.items()}
    out["loss"] = total.item()
    for index in range(1, len(activations) + 1):
        out[f"delta{index}"] = values[f"z{index}"].grad.numpy()
        weight, bias = params[2 * index - 2], params[2 * index - 1]
        out[f"grad_W{index}"], out[f"grad_b{index}"] = weight.grad.numpy(), bias.grad.numpy()
        out[f"new_W{index}"] = (weight - lr * weight.grad).detach().numpy()
        out[f"new_b{index}"] = (bias - lr * bias.grad).detach().numpy()
    with torch.no_grad():
        updated = [p - lr * p.grad for p in params]
        out["loss_after"] = loss_of(forward(updated)[1]).item()
    return out


CASES = [
    ((1.0, 0.0, 1.0), (1.0,), ("relu", "sigmoid", "sigmoid"), "half_sse", 0.1, DOCUMENT_WEIGHTS),
    ((0.5, -1.0, 2.0), (0.0,), ("tanh", "relu", "sigmoid"), "bce", 0.5, DOCUMENT_WEIGHTS),
    ((-1.0, 2.0, 0.3), (0.2,), ("sigmoid", "tanh", "tanh"), "mse", 0.05, DOCUMENT_WEIGHTS),
    (
        (2.0, -1.0),
        (0.3, 0.9),
        ("tanh", "sigmoid"),
        "half_sse",
        1.0,
        (
            LayerWeights(((0.5, -0.2), (0.1, 0.7), (-0.3, 0.4)), (0.0, 0.1, -0.1)),
            LayerWeights(((0.2, -0.5, 0.3), (0.6, 0.1, -0.4)), (0.05, -0.05)),
        ),
    ),
]


@pytest.mark.parametrize(("inputs", "target", "activations", "loss", "lr", "weights"), CASES)
def test_walkthrough_matches_torch_autograd(
    inputs: Vector,
    target: Vector,
    activations: Sequence[str],
    loss: str,
    lr: float,
    weights: Sequence[LayerWeights],
) -> None:
    result = explain(
        inputs=inputs, target=target, activations=activations, loss=loss, learning_rate=lr, weights=weights
    )
    reference = _torch_walkthrough(inputs, target, activations, loss, lr, weights)
    for key, expected in reference.items():
        np.testing.assert_allclose(
            np.asarray(result.value(key)), expected, rtol=1e-9, atol=1e-12, err_msg=key
        )


def test_document_example_numbers() -> None:
    """The corrected 4.3 walkthrough, checked by hand: W_in x + b_in = [0.5, 1.2], and so on."""
    result = explain()
    assert result.value("z1") == pytest.approx((0.5, 1.2))
    assert result.value("z2") == pytest.approx((0.39, 0.83))
    assert result.value("a3") == pytest.approx((0.557066,), abs=1e-6)
    assert result.value("loss") == pytest.approx(0.098095, abs=1e-6)
    assert result.value("delta3") == pytest.approx((-0.109291,), abs=1e-6)
    assert result.value("dact1") == (1.0, 1.0)
    assert result.value("new_W3")[0] == pytest.approx((0.106517, 0.107611), abs=1e-6)
    assert result.value("loss_after") < result.value("loss")


def test_weights_file_gives_the_same_walkthrough() -> None:
    assert explain(weights=EXAMPLE_WEIGHTS).steps == explain().steps
    assert explain(weights=str(EXAMPLE_WEIGHTS)).network.is_document_example()


def test_explanation_serializes_to_json() -> None:
    payload = json.loads(json.dumps(explain().to_dict()))
    keys = [step["key"] for step in payload["steps"]]
    assert keys[:4] == ["x", "y", "W1", "b1"] and keys[-1] == "loss_after"
    assert payload["learning_rate"] == 0.1
    assert next(step for step in payload["steps"] if step["key"] == "z1")["value"] == [0.5, 1.2]


def test_text_options_are_parsed() -> None:
    result = explain(inputs="1, 0, 1", target="1", activations="ReLU,sigmoid,Sigmoid", learning_rate="0.1")
    assert result.steps == explain().steps


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "weights.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("kwargs", "key", "message"),
    [
        ({"inputs": "1,a,1"}, "--input", "'a' is not a number"),
        ({"target": "yes"}, "--target", "is not a number"),
        ({"inputs": "1,nan,1"}, "--input", "is not finite"),
        ({"learning_rate": "fast"}, "--lr", "'fast' is not a number"),
        ({"learning_rate": 0}, "--lr", "must be > 0"),
        ({"activations": "relu,sigmod,sigmoid"}, "--activations", "unknown activation 'sigmod'"),
        ({"activations": "relu,sigmoid"}, "--activations", "2 given but the document's weights has 3 layers"),
        ({"loss": "hinge"}, "--loss", "unknown loss 'hinge'"),
        ({"inputs": "1,0"}, "--input", "pass 3 values"),
        ({"target": "1,0"}, "--target", "the network has 1 output"),
        (
            {"loss": "bce", "activations": "relu,sigmoid,tanh"},
            "--activations",
            "end --activations with sigmoid",
        ),
        ({"loss": "bce", "target": "2"}, "--target", "targets in \\[0, 1\\]"),
        ({"weights": "/no/such/weights.yaml"}, "--weights", "cannot read"),
    ],
)
def test_bad_options_raise_one_line_config_errors(kwargs: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        explain(**kwargs)
    assert caught.value.key == key
    assert "\n" not in str(caught.value) and str(caught.value).startswith(key)


BASE = "layers:\n  - weight: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]\n    bias: [0.1, 0.2]\n"
HIDDEN = "  - weight: [[0.1, 0.2], [0.3, 0.4]]\n    bias: [0.1, 0.2]\n"
OUT = "  - weight: [[0.1, 0.2]]\n    bias: [0.1]\n"
TWO, THREE = "relu,sigmoid", "relu,sigmoid,sigmoid"


@pytest.mark.parametrize(
    ("text", "activations", "key", "message"),
    [
        pytest.param(
            BASE + HIDDEN + "  - weight: [[0.1]]\n    bias: [0.1]\n",
            THREE,
            "layers[2].weight",
            r"layers\[2\]\.weight is 1x1 but layers\[1\] outputs 2 values, so it must be 1x2",
            id="document-W_out-1x1",
        ),
        pytest.param(
            BASE + OUT.replace("[0.1]\n", "[0.1, 0.2]\n"), TWO, "layers[1].bias", "has 2 values", id="bias"
        ),
        pytest.param(
            BASE.replace("0.5", "abc") + OUT,
            TWO,
            "layers[0].weight[1][1]",
            r"layers\[0\]\.weight\[1\]\[1\]: 'abc' is not a number",
            id="non-numeric",
        ),
        pytest.param(
            BASE.replace("0.5", "yes") + OUT, TWO, "layers[0].weight[1][1]", "True is not a", id="bool"
        ),
        pytest.param(
            BASE.replace("[0.4, 0.5, 0.6]", "[0.4, 0.5]"),
            "relu",
            "layers[0].weight",
            r"lengths \[3, 2\]",
            id="ragged",
        ),
        pytest.param(
            BASE + OUT.replace("weight", "weights"), TWO, "layers[1]", "the keys bias and weight", id="key"
        ),
        pytest.param("W_in: [[0.1]]\n", TWO, "layers", "exactly one top-level key 'layers'", id="top-level"),
        pytest.param("layers: [\n", TWO, "--weights", "is not valid YAML at line 2", id="syntax"),
        pytest.param(
            "!!python/object/apply:os.system ['echo unsafe']\n",
            TWO,
            "--weights",
            "could not determine a constructor",
            id="unsafe-tag",
        ),
    ],
)
def test_bad_weights_files_raise_config_errors(
    tmp_path: Path, text: str, activations: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        explain(weights=_write(tmp_path, text), activations=activations)
    assert caught.value.key == key
    assert "\n" not in str(caught.value)
