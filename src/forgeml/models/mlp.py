"""A multi-layer perceptron over numeric, embedded categorical and flattened image inputs.

Tables get three choices from the literature on MLPs for tabular data: 256-unit layers
(``hidden: auto``, :data:`AUTO_WIDTH`), periodic numeric embeddings (Gorishniy et al., 2022: each
number becomes ``ReLU(Linear([cos 2pi c x, sin 2pi c x]))`` with learnt frequencies ``c``, their
"PLR" variant) and, on small tables, submodels (TabM-mini, Gorishniy et al., 2025: several networks
sharing their hidden layers, see :data:`SMALL_TABLE_ROWS`). Both are written here rather than taken
from ``rtdl-num-embeddings`` or ``tabm`` so the model stays plain ``nn.Linear``/``sin``/``cos`` and
one ``einsum``, which the dynamo ONNX exporter, pruning and quantization already handle.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from forgeml.config import MLPConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
# hidden: auto is two layers of AUTO_WIDTH units (RealMLP and TabM use 256-512 too). It was sized to the
# inputs (4 units per input, 64 to 256, halved under 1,000 training rows); 256 everywhere did as well or
# better on the narrow tuning tables (3 seeds, test accuracy / R^2, sized -> 256): fishing_mode 0.5120 ->
# 0.5345, wine_red 0.6094 -> 0.6146, computers 0.9160 -> 0.9171, slid_wages 0.3582 -> 0.3555 (docs/tables.md);
# the wider tables had 256 already.
AUTO_WIDTH = 256
# Periodic embedding (Gorishniy et al. 2022, PLR): frequencies per column, output units per column,
# and the spread of the initial frequencies (their tuned range is 0.01-100; 0.1 suits scaled inputs).
FREQUENCIES, EMBEDDING_UNITS, FREQUENCY_SCALE = 16, 16, 0.1
# numeric_embedding: auto turns the periodic embedding on from this many training rows. On the tuning
# tables (benchmarks/tabular_quality.py, 3 seeds, the engine's training defaults, test accuracy / R^2,
# none -> periodic; training rows in brackets) it helped the larger tables and hurt the smaller ones:
# bank_churn (6,900) 0.9414 -> 0.9707, computers (4,260) 0.8914 -> 0.8986, benefits (3,300) 0.6988 ->
# 0.6960, car_choice (3,160) 0.4014 -> 0.3989, schooling (2,050) -0.013 (seed 0), wine_red (1,090)
# 0.5979 -> 0.5958.
PERIODIC_MIN_ROWS = 4000
# submodels: auto. Below SMALL_TABLE_ROWS training rows a table's MLP is SMALL_TABLE_SUBMODELS
# submodels (TabM-mini). On the 17 tuning tables under 4,000 training rows (3 seeds, the table defaults,
# test accuracy / R^2, 1 -> 4 submodels) it rose on 14: aids_survival 0.7698 -> 0.7844, wine_red 0.6271
# -> 0.6344, mexico_vote 0.7500 -> 0.7573, forbes_value 0.8325 -> 0.8501, schooling 0.3003 -> 0.3112;
# it fell on kakadu_answer 0.7104 -> 0.6994, ames_price 0.9084 -> 0.9039 and mortgage_denial 0.9078 ->
# 0.9064 (mean +0.35 points of accuracy, +0.005 R^2), for 1-3x the fit seconds. Larger tables keep one
# network: their MLP already takes 45-150 s (docs/tables.md). Eight submodels did no better than four on
# those tables and five more (up on 12 of 22, down on 9, +0.15 points on average) for twice the seconds.
SMALL_TABLE_ROWS, SMALL_TABLE_SUBMODELS = 4000, 4


def resolved_hidden(config: MLPConfig) -> list[int]:
    """The hidden widths an MLP of ``config`` has (``auto``: two layers of :data:`AUTO_WIDTH`)."""
    return [AUTO_WIDTH, AUTO_WIDTH] if config.hidden == "auto" else list(config.hidden)


def resolved_embedding(config: MLPConfig, spec: InputSpec) -> str:
    """The numeric embedding an MLP of ``config`` has for ``spec`` (``auto`` resolved: see PERIODIC_MIN_ROWS)."""
    if config.numeric_embedding != "auto":
        return config.numeric_embedding
    return "periodic" if spec.train_rows >= PERIODIC_MIN_ROWS and spec.continuous_dim > 0 else "none"


def resolved_submodels(config: MLPConfig, spec: InputSpec) -> int:
    """How many submodels an MLP of ``config`` has for ``spec`` (``auto``: see SMALL_TABLE_ROWS).
    A spec of 0 training rows is a bundle written before they were recorded: one network."""
    if config.submodels != "auto":
        return config.submodels
    return SMALL_TABLE_SUBMODELS if is_small_table(spec) else 1


def is_small_table(spec: InputSpec) -> bool:
    """Whether ``spec`` is a table (no image, no text column) of fewer than SMALL_TABLE_ROWS training rows:
    the one rule for a small table's submodels and its training recipe (forgeml.training.recipe). A bundle
    written before the rows were recorded has 0: it counts as large, as it trained."""
    return spec.is_table and 0 < spec.train_rows < SMALL_TABLE_ROWS


def _input_width(spec: InputSpec, numeric_embedding: str = "none") -> int:
    width = spec.numeric_dim + spec.embedding_dim * len(spec.categorical_cardinalities)
    if numeric_embedding == "periodic":
        width += (EMBEDDING_UNITS - 1) * spec.continuous_dim
    if spec.image_shape is not None:
        width += math.prod(spec.image_shape)
    return width


class PeriodicEmbedding(nn.Module):
    """``(N, F)`` numbers -> ``(N, F * units)``: per column ``ReLU(W [cos(2 pi c x), sin(2 pi c x)] + b)``."""

    def __init__(self, columns: int, frequencies: int = FREQUENCIES, units: int = EMBEDDING_UNITS) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(columns, frequencies) * FREQUENCY_SCALE)  # (F, K)
        self.weight = nn.Parameter(torch.empty(columns, 2 * frequencies, units))  # (F, 2K, U)
        self.bias = nn.Parameter(torch.zeros(columns, units))  # (F, U)
        bound = 1 / math.sqrt(2 * frequencies)  # nn.Linear's initialisation, one linear per column
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * self.frequencies * numbers.unsqueeze(-1)  # (N, F, K)
        features = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (N, F, 2K)
        embedded = torch.einsum("nfk,fku->nfu", features, self.weight) + self.bias  # (N, F, U)
        return torch.relu(embedded).flatten(1)  # (N, F * U)


class SubmodelHeads(nn.Module):
    """``(N, K, W)`` -> ``(N, K, D)``: submodel ``k``'s own task head, a linear layer on its slice."""

    def __init__(self, submodels: int, width: int, output_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(width)  # nn.Linear's initialisation, one per submodel
        self.weight = nn.Parameter(torch.empty(submodels, width, output_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(submodels, output_dim).uniform_(-bound, bound))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nkw,kwd->nkd", hidden, self.weight) + self.bias


class MLP(nn.Module):
    """Dense layers ``f(x) = s(Wx + b)`` (the document's section 4.1) ending in a task head of ``output_dim``
    (with submodels, one head each after the shared layers)."""

    def __init__(self, config: MLPConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__()
        if spec.text_columns:
            raise ConfigError(
                "model.type: mlp cannot read text columns. Use bag_of_embeddings, text_cnn, transformer or "
                "pretrained: they read the text and the table's numeric and categorical columns together.",
                key="model.type",
            )
        self.spec = spec
        self.embeddings = nn.ModuleList(
            nn.Embedding(size, spec.embedding_dim) for size in spec.categorical_cardinalities
        )
        embed = resolved_embedding(config, spec) == "periodic" and spec.continuous_dim > 0
        self.continuous = spec.continuous_dim if embed else 0
        self.numeric_embedding = PeriodicEmbedding(self.continuous) if embed else None
        width = _input_width(spec, "periodic" if embed else "none")
        submodels = resolved_submodels(config, spec)
        if submodels > 1:
            # TabM-mini: each submodel scales the inputs by its own vector, random signs at the start
            signs = torch.randint(0, 2, (submodels, width)).float() * 2 - 1
            self.submodel_scales = nn.Parameter(signs)
        layers: list[nn.Module] = []
        for hidden in resolved_hidden(config):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        if submodels == 1:
            layers.append(nn.Linear(width, output_dim))
        self.layers = nn.Sequential(*layers)  # hidden layers, then the head (one submodel)
        self.heads = SubmodelHeads(submodels, width, output_dim) if submodels > 1 else None

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in ``spec.names`` order -> ``(N, output_dim)`` logits or values. With submodels, in
        training ``(N, submodels, output_dim)``: the loss counts each submodel's (forgeml.training.losses),
        so they learn as separate networks would; in eval their mean."""
        parts = []
        for name, tensor in zip(self.spec.names, inputs, strict=True):
            if name == "categorical":  # (N, K) ids -> K embeddings of (N, E)
                parts += [embedding(tensor[:, index]) for index, embedding in enumerate(self.embeddings)]
            elif name == "numeric" and self.numeric_embedding is not None:  # (N, F + one-hot)
                parts += [self.numeric_embedding(tensor[:, : self.continuous]), tensor[:, self.continuous :]]
            else:
                parts.append(tensor.flatten(1))  # images (N, C, H, W) -> (N, C*H*W)
        joined = torch.cat(parts, dim=1)
        if self.heads is None:
            return self.layers(joined)
        # (N, K, F) -> (N*K, F) through the shared layers: 2-D inputs export as Gemm on the layers' own
        # weights, which fp16 and int8 compression find by name (3-D ones became MatMul on a copy)
        scaled = (joined.unsqueeze(1) * self.submodel_scales).flatten(0, 1)
        hidden = self.layers(scaled)
        outputs = self.heads(hidden.reshape(-1, self.submodel_scales.shape[0], hidden.shape[-1]))  # (N, K, D)
        return outputs if self.training else outputs.mean(dim=1)
