"""The catalogue of data checks: one row per check id, with its severity and the fix it suggests.

Ids are stable: they appear in ``data_report.json``, in ``check.allow`` lists of users' configs and
in fix logs, so a check is never renamed, only added. Severities:

* ``error`` blocks training (the gate raises DataQualityError) unless the id is in ``check.allow``;
* ``warning`` is logged and recorded, training goes on;
* ``info`` is recorded only.

Errors are the problems that make training wrong or impossible rather than merely worse: a label
that is missing or contradicts itself, rows the reader drops, a target with one class or a class
too rare to appear in both splits, test rows that are also training rows, and infinite values
(the scaler turns one ``inf`` into NaN for the whole column, so the loss becomes NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class CheckSpec:
    """One check: what it finds and what to do about it."""

    id: str
    severity: Severity
    title: str
    fix: str


_ROWS: list[tuple[str, Severity, str, str]] = [
    # id, severity, what it finds, how to fix it
    (
        "unparseable_rows",
        "error",
        "rows the CSV reader cannot parse (wrong field count, unbalanced quote, invalid UTF-8)",
        "repair those lines, or `forgeml check DATA --fix -o CLEAN` drops them and lists them in the fix log",
    ),
    (
        "missing_target",
        "error",
        "rows whose target value is missing",
        "fill in the labels, or `--fix` drops those rows",
    ),
    (
        "conflicting_labels",
        "error",
        "rows with identical features but different targets",
        "correct the labels, or `--fix` keeps each group's most frequent label and drops the others",
    ),
    (
        "single_class_target",
        "error",
        "the target has only one class",
        "a classifier needs at least two classes: add rows of another class or choose another target",
    ),
    (
        "class_too_rare",
        "error",
        "a class with fewer than 2 rows, so it cannot be in both train and test",
        "add rows of that class, or `--fix` drops them",
    ),
    (
        "train_test_overlap",
        "error",
        "rows that appear in both the training and the test file",
        "remove the shared rows from one of the files, or the test score overstates the model",
    ),
    (
        "infinite_values",
        "error",
        "infinite numbers (inf, -inf) in a feature",
        "replace them, or `--fix` turns them into missing values (imputed at training time)",
    ),
    (
        "non_finite_pixels",
        "error",
        "NaN or infinite values in image arrays",
        "re-export the images; NaN pixels make the loss NaN",
    ),
    (
        "missing_values",
        "warning",
        "a column with 5% or more missing values",
        "training imputes them (features.numeric.impute); consider whether missingness carries signal",
    ),
    (
        "some_missing_values",
        "info",
        "a column with a few (under 5%) missing values",
        "training imputes them (features.numeric.impute)",
    ),
    ("empty_column", "warning", "a column whose every value is missing", "`--fix` drops the column"),
    (
        "missing_markers",
        "warning",
        "missing values spelled in ways forgeml's reader does not treat as missing",
        "`--fix` writes them as empty cells so every reader sees a missing value",
    ),
    (
        "numeric_strings",
        "info",
        "a text-typed column whose values are all numbers",
        "`--fix` stores the column as numbers",
    ),
    (
        "mixed_types",
        "warning",
        "a mostly numeric column that also holds non-numeric values",
        "correct those values, or `--fix` turns them into missing values",
    ),
    (
        "unparseable_dates",
        "warning",
        "a date column with values that are not ISO-8601 dates",
        "write dates as YYYY-MM-DD (optionally with a time)",
    ),
    ("duplicate_rows", "warning", "rows that are exact copies of an earlier row", "`--fix` drops the copies"),
    (
        "constant_column",
        "warning",
        "a column with a single value, which carries no information",
        "`--fix` drops the column",
    ),
    (
        "near_constant_column",
        "warning",
        "a column where one value covers 99% or more of the rows",
        "consider dropping it (features.exclude)",
    ),
    (
        "identifier_column",
        "warning",
        "a column of (nearly) unique ids, which a model memorises instead of learning",
        "`--fix` drops the column; or list it in features.exclude",
    ),
    (
        "category_variants",
        "warning",
        "category spellings that differ only in case or surrounding spaces",
        "`--fix` merges each group into its most frequent spelling",
    ),
    (
        "outliers",
        "warning",
        "numeric values far outside the column's bulk (beyond 3 IQR of the quartiles)",
        "check them for unit or typing errors; training keeps them",
    ),
    (
        "class_imbalance",
        "warning",
        "the smallest class has under a tenth of the largest class's rows",
        "watch per-class metrics (balanced accuracy); collect more rows of the small classes",
    ),
    (
        "rare_class",
        "warning",
        "a class with fewer than 10 rows: too few to learn or to measure",
        "collect more rows of that class",
    ),
    (
        "target_leakage",
        "warning",
        "a single feature predicts the target almost perfectly",
        "check the feature is known at prediction time; if not, list it in features.exclude",
    ),
    (
        "personal_data",
        "warning",
        "e-mail addresses, phone numbers or payment card numbers in a text column",
        "remove or pseudonymise personal data before training (privacy)",
    ),
    ("very_long_text", "warning", "text values longer than 10,000 characters", "truncate or summarise them"),
    ("too_few_rows", "warning", "fewer than 50 rows: metrics will be noisy", "collect more data"),
]

CHECKS: dict[str, CheckSpec] = {row[0]: CheckSpec(*row) for row in _ROWS}

# Thresholds, named so the documentation and the code agree.
MISSING_WARNING_RATE = 0.05
NEAR_CONSTANT_SHARE = 0.99
IDENTIFIER_DISTINCT_RATIO = 0.95
IDENTIFIER_MIN_ROWS = 20
NUMERIC_PARSE_RATE = 0.95  # share of present values that must parse for a column to count as numeric
MIXED_PARSE_RATE = 0.5  # at or above this (and below 1) a column is "mixed": mostly numbers, some not
OUTLIER_IQR_FACTOR = 3.0  # Tukey's "far out" fence
IMBALANCE_RATIO = 0.1
RARE_CLASS_ROWS = 10
LEAKAGE_SCORE = 0.95  # predictive power score (0 = no better than a constant, 1 = perfect)
LEAKAGE_BINS = 10
LONG_TEXT_CHARS = 10_000
FEW_ROWS = 50
TEXT_SAMPLE = 10_000  # text-pattern checks (personal data) look at this many values per column
SAMPLE_ROWS = 100_000  # rows used for quartiles, the most common value and leakage scores
EXAMPLE_ROWS = 5  # row numbers listed per finding


def spec(check_id: str) -> CheckSpec:
    """The catalogue entry for ``check_id`` (a KeyError here is a bug in forgeml)."""
    return CHECKS[check_id]
