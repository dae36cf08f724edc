"""Integer codes: a whole-number column that networks also read as a category, beside its number.

Tables code people, places and products as integers (a person ``id``, a ``commune``, a US ``state``).
A tree splits such a column as finely as it needs; a network reads one number and draws a smooth
curve through the codes, although code 17 is no closer to code 18 than to 140. So
``features.numeric.integer_codes: auto`` gives a network one indicator per value (seen in at least
:data:`MIN_ROWS` training rows), appended after the scaled numbers, for each whole-number column
that reads as a code on the training rows:

1. :data:`MIN_VALUES` to :data:`MAX_VALUES` distinct values;
2. the target's mean moves with the value: its spread between values is at least :data:`MIN_SIGNAL`
   times what sampling noise alone would give (a one-way analysis of variance);
3. it moves unevenly: after noise, neighbouring values' means differ by at least
   :data:`MIN_ROUGHNESS` of what unrelated means would (0 is a smooth curve, such as income over
   age, which the number already gives; 1 is codes in no order), each pair of neighbours weighed by
   its rows.

The column stays one number everywhere else (the request schema, the server, the explanations, which
add a code's indicators to its column); a value not kept (rare, unseen, missing) sets no indicator.
Trees never get them (gbm's rules set ``none``; auto's boosters read the number).

Measured on the tuning tables (benchmarks/tabular_quality.py, 3 seeds, the table MLP, test accuracy
or R², codes off -> on; docs/tables.md). Every whole-number column with 3-1000 values as a code
(rules 2 and 3 off) won on verbal_aggression (0.5687 -> 0.6658, person ``id``, 316 values; LightGBM
0.6407), vietnam_spending (0.5904 -> 0.6602, ``commune``) and computers (+0.015 R²) but lost on 12 of
21 tables, by up to 2.3 points (train_choice, wife_hours, political_info: prices, incomes and ages).
Rules 2 and 3 kept the wins and most losses away, but 3-19-valued columns (Likert answers, small
counts) still lost: kakadu_answer -3.7 points, car_choice -0.9, medicaid -0.7. From 20 values
(rule 1) the codes chosen on the 34 tuning tables are ``id``, ``Anger``, ``commune`` (twice),
``state``, ``hd``, ``ads``, ``exp76`` and ``TA``, and the MLP moved: verbal_aggression +9.7 points,
vietnam_spending +0.080 R², computers +0.020 R², benefits +0.4 points, schooling and
mood_neuroticism unchanged; the other tables have no code and do not move.

Rule 3 first averaged the neighbour pairs unweighted. On census_wage (sixth reporting group, then
tuning) that made years of experience (47 values, wages rising then falling smoothly) a code: its
last three values have 7-14 rows each and jump by 0.3-0.5, and those three pairs outweighed the 43
smooth ones of 100-600 rows. With the pairs weighed by their rows (3 seeds, the table MLP): census_wage
0.1079 -> 0.1135 R² (LightGBM 0.1127; experience is no longer a code), credit_status 0.7969 -> 0.7935
(``Assets``, an amount, is no longer a code), baseball_runs 0.9738 -> 0.9734, mood_neuroticism
0.1943 -> 0.1945; ames_price, personality_education and health_insurance, where the rule's choice
changed on one seed, did not move. The codes listed above are still chosen, but for ``TA``
(mood_neuroticism), and ``hbp`` (baseball_runs' hit-by-pitch count) joins them on two seeds.
"""

from __future__ import annotations

import numpy as np

MIN_VALUES = 20  # fewer: a rating or small count, which lost as a code (above)
MAX_VALUES = 1000  # more: an amount, not a code
MIN_ROWS = 5  # an indicator of fewer rows learns nothing (features.categorical.min_frequency's default)
MIN_SIGNAL = 3.0
MIN_ROUGHNESS = 0.25


def code_values(column: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The values of a float64 training column (NaN = missing) that get an indicator, ascending; None
    when the column is not a code: fractions, too few or too many values, or a target that follows a
    smooth curve through the values (or does not move with them) -- there the number is enough.

    ``target`` is the encoded training target (TargetEncoder.encode): class indices (integers),
    judged as one 0/1 column per class, or values (floats: a regression target, a binary 0/1)."""
    present = ~np.isnan(column)
    values, target = column[present], target[present]
    if not len(values) or not np.array_equal(values, np.round(values)):
        return None
    distinct, position, counts = np.unique(values, return_inverse=True, return_counts=True)
    if not MIN_VALUES <= len(distinct) <= MAX_VALUES:
        return None
    kept = counts >= MIN_ROWS
    if kept.sum() < MIN_VALUES:
        return None
    return distinct[kept] if _jagged(*_sums(position, len(distinct), target), counts, kept) else None


def _sums(position: np.ndarray, size: int, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value (``size`` of them), the sums of the target and of its squares, ``(size, T)``. Classes
    are counted by value and class, never expanded to a one-hot matrix (rows x classes floats)."""
    if np.issubdtype(target.dtype, np.integer):
        classes = int(target.max()) + 1
        counted = np.bincount(position * classes + target, minlength=size * classes)
        sums = counted.reshape(size, classes).astype(np.float64)
        return sums, sums  # a 0/1 indicator squared is itself
    values = target.astype(np.float64)
    return np.bincount(position, weights=values)[:, None], np.bincount(position, weights=values**2)[:, None]


def _jagged(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray, kept: np.ndarray) -> bool:
    """Does the target's mean move with the value (its spread between values at least MIN_SIGNAL times
    what sampling noise alone gives) in a way a smooth curve misses (neighbouring values' means differ
    by at least MIN_ROUGHNESS of what unrelated means would, after noise)?"""
    sums, squares = sums[kept], squares[kept]
    rows = counts[kept][:, None].astype(np.float64)
    means = sums / rows
    noise = np.maximum(squares / rows - means**2, 0.0) / (rows - 1)  # the variance of each mean
    weights = rows / rows.sum()
    between = (weights * (means - (weights * means).sum(axis=0)) ** 2).sum(axis=0)
    sampling = (weights * noise).sum(axis=0)
    signal = np.maximum(between - sampling, 0.0).sum()
    if between.sum() < MIN_SIGNAL * sampling.sum() or signal <= 0:
        return False
    # each neighbour pair weighs as many rows as it has (their harmonic mean), as the signal weighs each
    # value by its rows: a thin tail of a few rows a value otherwise decides it (census_wage, below)
    pairs = 2.0 / (1.0 / rows[1:] + 1.0 / rows[:-1])
    differences = np.diff(means, axis=0) ** 2 - (noise[1:] + noise[:-1])
    neighbours = ((differences * pairs).sum(axis=0) / pairs.sum()).sum()
    return bool(neighbours >= MIN_ROUGHNESS * 2 * signal)


def indicators(numbers: np.ndarray, codes: dict[int, np.ndarray]) -> np.ndarray:
    """``(N, sum of kept values)`` float32: for each code column in index order, 1 where the raw number
    equals a kept value. ``numbers`` holds the raw values (before imputation: a missing value sets none)."""
    blocks = [(numbers[:, index, None] == codes[index]).astype(np.float32) for index in sorted(codes)]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(numbers), 0), dtype=np.float32)
