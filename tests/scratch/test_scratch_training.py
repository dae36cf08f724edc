"""The scratch MLP and an equal PyTorch MLP trained side by side on scikit-learn's breast-cancer set."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scratch_helpers import torch_model
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from forgeml.scratch import Adam, NeuralNetwork, train_model

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+), Loss: [0-9.e+-]+, Val Loss: [0-9.e+-]+$")


@pytest.fixture(scope="module")
def breast_cancer() -> Split:
    """Standardized with statistics of the training split only."""
    features, labels = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels.astype(float), test_size=0.25, random_state=0, stratify=labels
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train[:, None], y_test[:, None]


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probabilities > 0.5) == (labels > 0.5)))


def _train_torch(network: NeuralNetwork, data: Split, optimizer_name: str, lr: float, epochs: int) -> float:
    x_train, x_test, y_train, y_test = (torch.from_numpy(a) for a in data)
    model = torch_model(network)  # copies the scratch network's initial weights
    make = torch.optim.Adam if optimizer_name == "adam" else torch.optim.SGD
    optimizer = make(model.parameters(), lr=lr)
    for _ in range(epochs):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy(model(x_train), y_train).backward()
        optimizer.step()
    with torch.no_grad():
        return _accuracy(model(x_test).numpy(), y_test.numpy())


@pytest.mark.parametrize(("optimizer_name", "lr", "epochs"), [("sgd", 0.5, 60), ("adam", 0.01, 30)])
def test_scratch_mlp_matches_torch_accuracy(
    breast_cancer: Split, optimizer_name: str, lr: float, epochs: int
) -> None:
    x_train, x_test, y_train, y_test = breast_cancer
    network = NeuralNetwork.from_sizes([30, 16, 1], ["relu", "sigmoid"], loss="bce", seed=3)
    torch_accuracy = _train_torch(network, breast_cancer, optimizer_name, lr, epochs)
    lines: list[str] = []
    optimizer = Adam(lr) if optimizer_name == "adam" else None
    history = train_model(
        network, x_train, y_train, x_test, y_test, lr, epochs, optimizer=optimizer, print_fn=lines.append
    )
    scratch_accuracy = _accuracy(network.forward(x_test), y_test)
    assert abs(scratch_accuracy - torch_accuracy) <= 0.01
    assert scratch_accuracy >= 0.9
    assert history.losses[-1] < history.losses[0]
    assert len(lines) == epochs and all(EPOCH_LINE.match(line) for line in lines)


def test_train_model_prints_the_documents_epoch_line_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    network = NeuralNetwork.from_sizes([2, 3, 1], ["tanh", "sigmoid"], loss="mse", seed=0)
    x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0], [0.0]])
    history = train_model(network, x, y, x, y, learning_rate=0.5, epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert [EPOCH_LINE.match(line).groups() for line in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert lines[0] == f"Epoch 1/3, Loss: {history.losses[0]}, Val Loss: {history.val_losses[0]}"


def test_update_params_is_gradient_descent_and_lowers_the_loss() -> None:
    network = NeuralNetwork.from_sizes([3, 4, 1], ["relu", "sigmoid"], seed=1)
    x, y = np.array([[1.0, 0.0, 1.0]]), np.array([[1.0]])
    before = network.compute_loss(network.forward(x), y)
    network.backward(x, y, network.forward(x))
    network.update_params(0.1)
    assert network.compute_loss(network.forward(x), y) < before
