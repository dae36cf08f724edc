"""The document's math in NumPy: a small reference engine and ``forgeml explain``.

This package exists to explain the design document's formulas (sections 3.2 and 4) and to check
the real PyTorch engine against them; it is never used to train real models. It imports only
NumPy and PyYAML, never torch.

    from forgeml.scratch import explain, compare_document
    result = explain()                      # the document's 4.3 example, corrected
    result.value("delta3")                  # (-0.109291...,)
    compare_document(result).wrong          # every step where the document is wrong
"""

from forgeml.scratch.activations import ACTIVATIONS, Activation, ReLU, Sigmoid, Softmax, Tanh, get_activation
from forgeml.scratch.document import ComparisonRow, DocumentComparison, compare_document
from forgeml.scratch.example import ExampleNetwork, example_network
from forgeml.scratch.inputs import DOCUMENT_WEIGHTS, LayerWeights, load_weights
from forgeml.scratch.layers import Dense
from forgeml.scratch.losses import (
    LOSSES,
    Loss,
    binary_cross_entropy,
    categorical_cross_entropy,
    get_loss,
    half_sum_squared_error,
    mean_squared_error,
)
from forgeml.scratch.network import NeuralNetwork, TrainingHistory, train_model
from forgeml.scratch.optimizers import (
    Adam,
    GradientDescent,
    Momentum,
    Optimizer,
    ParameterStep,
    get_optimizer,
)
from forgeml.scratch.trace import OptimizerTrace, trace_optimizer
from forgeml.scratch.walkthrough import Explanation, Step, explain

__all__ = [
    "ACTIVATIONS",
    "DOCUMENT_WEIGHTS",
    "LOSSES",
    "Activation",
    "Adam",
    "ComparisonRow",
    "Dense",
    "DocumentComparison",
    "ExampleNetwork",
    "Explanation",
    "GradientDescent",
    "LayerWeights",
    "Loss",
    "Momentum",
    "NeuralNetwork",
    "Optimizer",
    "OptimizerTrace",
    "ParameterStep",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Step",
    "Tanh",
    "TrainingHistory",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "compare_document",
    "example_network",
    "explain",
    "get_activation",
    "get_loss",
    "get_optimizer",
    "half_sum_squared_error",
    "load_weights",
    "mean_squared_error",
    "train_model",
    "trace_optimizer",
]
