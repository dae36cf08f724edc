"""Text models: each text column is encoded to a vector, joined with the table's other columns, then a head.

Mixed tables work through :class:`TextModel`: every text column goes through the same encoder
(``encode(ids, mask) -> (B, H)``), numeric columns are taken as they are and categorical ids are
embedded as in the MLP; the pieces are concatenated and a small MLP head predicts. So one model
type covers "text only" and "text + numeric + categorical".

Inputs are ``text`` ``(N, C, L)`` token ids and ``text_mask`` ``(N, C, L)`` (1 = token, 0 = padding),
C text columns of L tokens. Every encoder ignores padding, so its output does not depend on how
much padding there is; that lets ``forward`` trim a batch to its longest text.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from forgeml.config import BagOfEmbeddingsConfig, TextCNNConfig, TransformerConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec


def make_head(width: int, hidden: list[int], dropout: float, output_dim: int) -> nn.Sequential:
    """Dense ReLU layers (dropout before each) ending in ``output_dim`` outputs."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(width, size), nn.ReLU()]
        width = size
    layers += [nn.Dropout(dropout), nn.Linear(width, output_dim)]
    return nn.Sequential(*(layer for layer in layers if not (isinstance(layer, nn.Dropout) and dropout == 0)))


class TextModel(nn.Module):
    """Base of the text models: per-column text vectors + numeric + categorical embeddings -> head."""

    min_length = 1  # the fewest tokens a batch is trimmed to (a CNN needs its widest kernel)

    def __init__(
        self, spec: InputSpec, text_width: int, hidden: list[int], dropout: float, output_dim: int
    ) -> None:
        super().__init__()
        if spec.text_columns == 0 or spec.image_shape is not None:
            raise ConfigError(
                "model.type: text models need text columns (list them in features.text_columns) and no images.",
                key="model.type",
            )
        self.spec = spec
        self.embeddings = nn.ModuleList(
            nn.Embedding(size, spec.embedding_dim) for size in spec.categorical_cardinalities
        )
        width = spec.text_columns * text_width + spec.numeric_dim
        width += spec.embedding_dim * len(spec.categorical_cardinalities)
        self.head = make_head(width, hidden, dropout, output_dim)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` ids and mask -> ``(B, H)`` text vectors."""
        raise NotImplementedError

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in ``spec.names`` order -> ``(N, output_dim)`` logits or values."""
        named = dict(zip(self.spec.names, inputs, strict=True))
        ids, mask = named["text"], named["text_mask"]  # (N, C, L) each
        rows, columns, length = ids.shape
        ids, mask = trim_padding(
            ids.reshape(rows * columns, length), mask.reshape(rows * columns, length), self.min_length
        )
        parts = [self.encode(ids, mask).reshape(rows, -1)]  # (N, C * H)
        if "numeric" in named:
            parts.append(named["numeric"])
        if "categorical" in named:
            codes = named["categorical"]
            parts += [embedding(codes[:, index]) for index, embedding in enumerate(self.embeddings)]
        return self.head(torch.cat(parts, dim=1))


def trim_padding(ids: torch.Tensor, mask: torch.Tensor, min_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop padding columns no row of the batch needs; the first token always counts (empty texts).

    Skipped while tracing or exporting, where a data-dependent shape would be baked in.
    """
    mask = mask.clone()
    mask[:, 0] = 1  # a row with no token at all would make attention and mean pooling undefined
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return ids, mask
    longest = max(int(mask.sum(dim=1).max()), min_length)
    return ids[:, :longest], mask[:, :longest]


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, L, H)`` states averaged over the positions where ``mask`` is 1 -> ``(B, H)``."""
    weights = mask.unsqueeze(-1).to(states.dtype)  # (B, L, 1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class BagOfEmbeddings(TextModel):
    """The mean (or max) of the token embeddings: a fast baseline that ignores word order."""

    def __init__(self, config: BagOfEmbeddingsConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__(spec, config.embedding_dim, config.hidden, config.dropout, output_dim)
        self.pooling = config.pooling
        self.tokens = nn.Embedding(max(spec.vocab_size, 1), config.embedding_dim)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        vectors = self.tokens(ids)  # (B, L, E)
        if self.pooling == "max":
            return vectors.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values
        return masked_mean(vectors, mask)


class TextCNN(TextModel):
    """Convolutions of several widths over the embeddings, each max-pooled over the positions of real tokens."""

    def __init__(self, config: TextCNNConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__(
            spec, config.channels * len(config.kernel_sizes), config.hidden, config.dropout, output_dim
        )
        self.tokens = nn.Embedding(max(spec.vocab_size, 1), config.embedding_dim)
        self.kernel_sizes = list(config.kernel_sizes)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.channels, size) for size in config.kernel_sizes
        )

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Padding embeddings are zeroed and k-1 zeros appended, so window t covers tokens t..t+k-1
        # however much padding the batch has; windows starting on padding are ignored by the max.
        vectors = (self.tokens(ids) * mask.unsqueeze(-1)).transpose(1, 2)  # (B, E, L)
        pooled = []
        for size, convolution in zip(self.kernel_sizes, self.convolutions, strict=True):
            maps = F.relu(convolution(F.pad(vectors, (0, size - 1))))  # (B, channels, L)
            pooled.append(maps.masked_fill(mask.unsqueeze(1) == 0, float("-inf")).max(dim=2).values)
        return torch.cat(pooled, dim=1)  # (B, channels * kernels)


class TransformerEncoderModel(TextModel):
    """Token + position embeddings, a pre-norm ``nn.TransformerEncoder`` with a padding mask, pooled."""

    def __init__(self, config: TransformerConfig, spec: InputSpec, output_dim: int) -> None:
        super().__init__(spec, config.width, config.hidden, config.dropout, output_dim)
        self.pooling = config.pooling
        self.tokens = nn.Embedding(max(spec.vocab_size, 1), config.width)
        if config.positional == "learned":
            self.positions: nn.Embedding | None = nn.Embedding(spec.text_length, config.width)
        else:
            self.positions = None
            self.register_buffer("sinusoids", sinusoids(spec.text_length, config.width), persistent=False)
        layer = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            config.feedforward or 4 * config.width,
            config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)
        self.dropout = nn.Dropout(config.dropout)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        if self.positions is not None:
            where = self.positions(torch.arange(length, device=ids.device))  # (L, W)
        else:
            where = self.sinusoids[:length]
        states = self.dropout(self.tokens(ids) + where)  # (B, L, W)
        states = self.norm(self.encoder(states, src_key_padding_mask=mask == 0))
        return states[:, 0] if self.pooling == "cls" else masked_mean(states, mask)


def sinusoids(length: int, width: int) -> torch.Tensor:
    """The fixed sine/cosine position table of "Attention Is All You Need": ``(length, width)``."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table
