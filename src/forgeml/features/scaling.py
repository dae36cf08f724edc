"""How each numeric column is scaled for a network, and the quantile map's knots.

Networks train best on inputs of similar spread with no far outliers (RealMLP, Holzmüller et al.
2024; Gorishniy et al. 2022 quantile-transform every column). Trees do not care (gbm uses ``none``).
``features.numeric.scale: auto`` decides per column from its training values:

1. at most :data:`DISCRETE_VALUES` distinct values (flags, counts, ratings): ``standard``;
2. a heavy right tail on a column with no negative value (skewness >= :data:`HEAVY_SKEW`): ``log1p``
   first; if the logged column is still heavy-tailed or outlier-heavy, ``quantile`` (the log then adds
   nothing: a quantile map ignores any increasing transform);
3. heavy-tailed either way (|skewness| >= :data:`HEAVY_SKEW`) or outlier-heavy (more than
   :data:`OUTLIER_SHARE` of values beyond 3 interquartile ranges from the quartiles): ``quantile``;
4. otherwise ``standard``.

The quantile map sends each column to standard-normal scores through knots fitted by
scikit-learn's ``QuantileTransformer`` (``n_quantiles`` = rows / 30, between 10 and 1000, as
Gorishniy et al.), linear between knots and flat beyond the ends, so a value far outside the
training range lands at the last knot's score instead of hundreds of units away. Tied knots (a
value held by many rows) become one knot at their middle quantile, which keeps the map continuous
and one ``np.interp`` (or a binary search in the ONNX graph) exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, skew
from sklearn.preprocessing import QuantileTransformer

DISCRETE_VALUES = 10
HEAVY_SKEW = 2.0
OUTLIER_SHARE = 0.01
OUTLIER_IQRS = 3.0
MAX_QUANTILES = 1000


@dataclass(frozen=True)
class Scaling:
    """One column's choice: ``name`` (standard, robust, quantile, none), a log first, and why (auto only)."""

    name: str
    log: bool = False
    reason: str = ""


def choose_scaling(values: np.ndarray, scale: str) -> Scaling:
    """The scaling of one column ``values`` (N,) float64 with NaN for missing, under ``scale``."""
    if scale != "auto":
        return Scaling(scale)
    present = values[~np.isnan(values)]
    distinct = len(np.unique(present[:100_000]))
    if distinct <= DISCRETE_VALUES:
        return Scaling("standard")
    skewness = _skewness(present)
    if skewness >= HEAVY_SKEW and present.min() >= 0:
        logged = np.log1p(present)
        if abs(_skewness(logged)) < HEAVY_SKEW and _outlier_share(logged) <= OUTLIER_SHARE:
            return Scaling(
                "standard",
                log=True,
                reason=f"log1p then standard: skewness {skewness:.1f}, no negative value",
            )
        return Scaling(
            "quantile", reason=f"quantile: skewness {skewness:.1f}, still heavy-tailed after log1p"
        )
    outliers = _outlier_share(present)
    if abs(skewness) >= HEAVY_SKEW or outliers > OUTLIER_SHARE:
        return Scaling(
            "quantile", reason=f"quantile: skewness {skewness:.1f}, {outliers:.1%} of values beyond 3 IQR"
        )
    return Scaling("standard")


def quantile_knots(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing knots (K,) and their standard-normal scores (K,) for one column (no NaN)."""
    rows = len(values)
    n_quantiles = int(np.clip(rows // 30, 10, MAX_QUANTILES))
    fitted = QuantileTransformer(n_quantiles=min(n_quantiles, rows), subsample=100_000, random_state=0)
    fitted.fit(values[:, None])
    knots, shares = fitted.quantiles_[:, 0], fitted.references_
    unique, first, counts = np.unique(knots, return_index=True, return_counts=True)
    middle = (shares[first] + shares[first + counts - 1]) / 2  # tied knots -> their middle share
    edge = 0.5 / len(knots)  # the end knots' scores stay finite: about +-3.1 for 1000 knots
    return unique, norm.ppf(np.clip(middle, edge, 1 - edge))


def _skewness(values: np.ndarray) -> float:
    result = float(skew(values[:100_000])) if len(values) > 2 else 0.0
    return result if np.isfinite(result) else 0.0


def _outlier_share(values: np.ndarray) -> float:
    low, high = np.percentile(values, [25, 75])
    spread = high - low
    if spread <= 0:
        return 0.0
    beyond = (values < low - OUTLIER_IQRS * spread) | (values > high + OUTLIER_IQRS * spread)
    return float(beyond.mean())
