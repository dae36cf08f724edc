"""The numeric scaling as torch operations, for the inference graph that ONNX export traces.

:class:`NumericGraph` runs :class:`~forgeml.features.numeric.NumericFeatures`'s transform on raw
float64 columns (NaN = missing) with ops the dynamo ONNX exporter writes as plain ONNX: ``Where``,
``Log1p`` as ``Log(1 + x)``, ``Gather``, ``Min``/``Max``. It lives beside the numpy transform so the
two are changed together; tests/features/test_numeric_scaling.py holds them equal, through ONNX Runtime.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from forgeml.features.numeric import NumericFeatures


class NumericGraph(nn.Module):
    """``(N, F)`` float64 raw numbers -> ``(N, numeric.width)`` float64 scaled, then the integer codes'
    indicators (``Equal`` against each kept value), exactly as ``NumericFeatures.transform``.

    The quantile map is ``np.interp`` through each quantile column's knots. ONNX has no searchsorted,
    so the segment is found by a binary search of ``log2(K)`` gather-and-compare steps over knots
    padded with +inf to a power of two: memory O(N x columns), where comparing every value with
    every knot would take O(N x columns x knots) (8 GB for 100,000 rows of 10 columns and 1000 knots).
    """

    def __init__(self, numeric: NumericFeatures) -> None:
        super().__init__()
        self.register_buffer("fill", torch.from_numpy(np.asarray(numeric.fill_values_, dtype=np.float64)))
        self.register_buffer("mean", torch.from_numpy(np.asarray(numeric.means_, dtype=np.float64)))
        self.register_buffer("std", torch.from_numpy(np.asarray(numeric.stds_, dtype=np.float64)))
        log = np.asarray(getattr(numeric, "log_", np.zeros(len(numeric.columns), dtype=bool)), dtype=bool)
        self.register_buffer("log_mask", torch.from_numpy(log))
        self.any_log = bool(log.any())
        quantiles = getattr(numeric, "quantiles_", {})
        self.quantile_count = len(quantiles)
        if quantiles:
            self._register_knots(quantiles)
        codes = numeric.codes_
        self.code_columns = sorted(codes)
        for index in self.code_columns:  # one buffer a column: its kept values, compared with its raw number
            self.register_buffer(
                f"code_values_{index}", torch.from_numpy(np.asarray(codes[index], dtype=np.float64))
            )

    def _register_knots(self, quantiles: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        columns = sorted(quantiles)
        size = 2 ** max(1, math.ceil(math.log2(max(len(quantiles[c][0]) for c in columns))))
        knots = np.full((len(columns), size), np.inf)
        starts, slopes = np.zeros_like(knots), np.zeros_like(knots)
        for row, column in enumerate(columns):
            xs, ys = quantiles[column]
            knots[row, : len(xs)], starts[row, : len(xs)] = xs, ys
            slopes[row, : len(xs) - 1] = np.diff(ys) / np.diff(xs)  # the last knot's slope stays 0
        self.steps = [size >> shift for shift in range(1, int(math.log2(size)) + 1)]  # size/2, ..., 1
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.int64))
        self.register_buffer("offsets", torch.arange(len(columns), dtype=torch.int64) * size)  # (Q,)
        self.register_buffer("low", torch.from_numpy(np.array([quantiles[c][0][0] for c in columns])))
        self.register_buffer("high", torch.from_numpy(np.array([quantiles[c][0][-1] for c in columns])))
        for name, table in (("knots", knots), ("starts", starts), ("slopes", slopes)):
            self.register_buffer(name, torch.from_numpy(table.reshape(-1)))  # (Q * size,) flat

    def forward(self, numeric: torch.Tensor) -> torch.Tensor:
        scaled = self._scaled(numeric)
        if not self.code_columns:
            return scaled
        codes = [
            (numeric[:, index : index + 1] == getattr(self, f"code_values_{index}")).to(scaled.dtype)
            for index in self.code_columns
        ]  # (N, kept values) each; NaN equals nothing
        return torch.cat([scaled, *codes], dim=1)

    def _scaled(self, numeric: torch.Tensor) -> torch.Tensor:
        values = torch.where(torch.isnan(numeric), self.fill, numeric)  # (N, F)
        if self.any_log:
            values = torch.where(self.log_mask, torch.log1p(torch.clamp(values, min=0.0)), values)
        values = (values - self.mean) / self.std
        if not self.quantile_count:
            return values
        x = torch.minimum(torch.maximum(values[:, self.columns], self.low), self.high)  # (N, Q)
        segment = torch.zeros_like(x, dtype=torch.int64) + self.offsets  # (N, Q) flat index of a knot
        for step in self.steps:  # the last knot <= x (x >= the first knot after clamping)
            candidate = segment + step
            segment = torch.where(self.knots[candidate] <= x, candidate, segment)
        mapped = self.starts[segment] + (x - self.knots[segment]) * self.slopes[segment]  # (N, Q)
        return values.index_copy(1, self.columns, mapped)
