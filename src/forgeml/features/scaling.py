"""How each numeric column is scaled for a network, and the quantile map's knots.

Networks train best on inputs of similar spread with no far outliers (RealMLP, Holzmüller et al.
2024; Gorishniy et al. 2022 quantile-transform every column). Trees do not care (gbm uses ``none``).
``features.numeric.scale: auto`` decides per column from its training values:

1. at most :data:`DISCRETE_VALUES` distinct values (flags, counts, ratings): ``standard``;
2. a heavy right tail on a column with no negative value (skewness >= :data:`HEAVY_SKEW`) that
   ``log1p`` tames (the logged column neither heavy-tailed nor outlier-heavy): ``log1p`` then ``standard``;
3. far outliers that standard scaling would squash the rest of the column under (the middle half of the
   values spans less than :data:`SQUASHED` standard deviations, e.g. a 999999 placeholder in 2% of
   rows): ``quantile``;
4. otherwise ``standard``, heavy tails included.

Rule 4 used to send heavy-tailed and outlier-heavy columns (skewness >= 2, or over 1% of values beyond
3 interquartile ranges) to the quantile map, as Gorishniy et al. do for every column. With standard
scaling the table MLP rose on 6 of the 9 tuning tables that had such columns (3 seeds, test accuracy or
R², quantile -> standard): forbes_value 0.7669 -> 0.8325, medicaid 0.9176 -> 0.9225, kakadu_answer
0.7058 -> 0.7104, flchain_death 0.8112 -> 0.8150, mortgage_denial 0.9043 -> 0.9078, vietnam_insurance
+0.0002; movie_rating held; wine_red 0.6375 -> 0.6271 and wife_hours 0.2057 -> 0.2040 fell
(docs/tables.md, with auto's figures). Those columns' middle halves span nothing (counts
mostly 0) or at least 0.18 standard deviations, so rule 3 leaves them standard.

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
SQUASHED = 0.01  # interquartile range / standard deviation below this: far outliers (rule 3)
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
    low, high = np.percentile(present, [25, 75])
    deviation = float(present.std())
    if high > low and (high - low) < SQUASHED * deviation:
        return Scaling(
            "quantile",
            reason=f"quantile: the middle half spans {(high - low) / deviation:.0e} standard deviations "
            "(far outliers)",
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
