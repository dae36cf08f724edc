"""Schema inference: each column's kind, with the evidence (parse rate, distinct count, examples).

Everything is vectorised with pyarrow compute kernels on the whole column; no per-row Python. A
column is profiled once into a :class:`Profile` holding what the checks need (missing mask, parsed
numbers, trimmed strings), then dropped, so memory stays near one column's worth beyond the table.

Kinds, in the order they are decided:

* ``constant``: at most one distinct present value;
* ``boolean``: exactly two values, both spellings of true/false (1/0, yes/no, t/f, ...);
* ``identifier``: present values (nearly) all distinct, and either integers in a dense or
  increasing run (1, 2, 3, ...) or short strings without spaces (``C-1042``, UUIDs);
* ``numeric``: at least 95% of present values parse as numbers;
* ``datetime``: at least 95% of present values are ISO-8601 dates (other date formats read as
  categorical or text: guessing day-first vs month-first is how silent errors start);
* ``text``: long values (mean 30+ characters) or mostly-unique values with spaces;
* ``categorical``: everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.checks.catalogue import (
    IDENTIFIER_DISTINCT_RATIO,
    IDENTIFIER_MIN_ROWS,
    MIXED_PARSE_RATE,
    NUMERIC_PARSE_RATE,
    SAMPLE_ROWS,
)
from forgeml.checks.report import ColumnKind, ColumnSchema

# Spellings read as "no value" (compared after trimming surrounding spaces, so "  " counts as "").
MISSING_SPELLINGS = ["", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none",
                     "?", "-", "--"]  # fmt: skip
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|(?i:inf|infinity))$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
BOOLEAN_WORDS = {"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1", "0.0", "1.0"}
CATEGORY_CARDINALITY = 10_000  # spellings of columns with more distinct values are not compared


@dataclass
class Profile:
    """What the checks need to know about one column; ``schema`` is the part that is reported."""

    name: str
    kind: ColumnKind
    missing: np.ndarray  # (N,) bool
    numbers: np.ndarray | None  # (N,) float64, NaN where missing or not a number; None if not numeric-ish
    not_numbers: np.ndarray | None  # (N,) bool: present but not a number, when numbers is not None
    strings: pa.ChunkedArray | None  # trimmed values, null where missing (None for typed numeric columns)
    raw: pa.ChunkedArray  # the values as read
    spellings: dict[str, int]  # raw spelling -> count, for low-cardinality string columns
    markers: dict[str, int]  # missing-value spelling -> count
    schema: ColumnSchema

    @property
    def present(self) -> int:
        return int(len(self.missing) - self.missing.sum())


def profile_column(name: str, values: pa.ChunkedArray) -> Profile:
    """Profile one column: missing values, numbers, distinct values and the inferred kind."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return _profile_strings(name, values)
    numbers = _as_float(values)
    missing = np.isnan(numbers)
    distinct = distinct_numbers(numbers[~missing])
    kind = _numeric_kind(numbers, missing, distinct)
    examples = tuple(_example(v) for v in pc.unique(pa.array(numbers[~missing][:1000])).to_pylist()[:3])
    schema = ColumnSchema(name, kind, str(values.type), int(missing.sum()), distinct, 1.0, examples)
    not_numbers = np.zeros(len(numbers), dtype=bool)
    return Profile(name, kind, missing, numbers, not_numbers, None, values, {}, {}, schema)


def _profile_strings(name: str, values: pa.ChunkedArray) -> Profile:
    if values.null_count == 0:
        try:  # the fast path: a complete column of plain numbers needs no trimming or marker search
            numbers = _as_float(pc.cast(values, pa.float64()))
        except pa.ArrowInvalid:
            pass
        else:
            return _profile_plain_numbers(name, values, numbers)
    trimmed = pc.utf8_trim_whitespace(values)
    is_marker = pc.is_in(trimmed, value_set=pa.array(MISSING_SPELLINGS))
    missing_mask = pc.or_kleene(is_marker, pc.is_null(values)).fill_null(True)
    missing = missing_mask.to_numpy()
    markers = _value_counts(values.filter(is_marker.fill_null(False)))
    strings = pc.if_else(missing_mask, pa.scalar(None, pa.string()), trimmed)
    present = int(len(missing) - missing.sum())
    numbers, not_numbers, parsed = _parse_numbers(strings, missing)
    if numbers is not None and parsed == present:
        distinct = distinct_numbers(numbers[~missing])  # hashing 8-byte numbers beats hashing text
    else:
        distinct = pc.count_distinct(strings).as_py() if present else 0
    examples = tuple(pc.unique(strings.drop_null().slice(0, 1000)).to_pylist()[:3])
    parse_rate = parsed / present if present else 0.0
    kind = _string_kind(strings, numbers, missing, present, distinct, parse_rate)
    spellings = (
        _value_counts(values.filter(pc.invert(missing_mask))) if distinct <= CATEGORY_CARDINALITY else {}
    )
    if kind == "numeric" or (numbers is not None and parse_rate < 1.0):
        pass  # numbers kept: numeric columns and mixed columns (mostly numbers) are checked as numbers
    elif kind != "boolean":
        numbers, not_numbers = None, None
    schema = ColumnSchema(
        name, kind, str(values.type), len(missing) - present, distinct, parse_rate, examples,
        tuple(sorted(markers, key=lambda spelling: -markers[spelling])),
    )  # fmt: skip
    return Profile(name, kind, missing, numbers, not_numbers, strings, values, spellings, markers, schema)


def _profile_plain_numbers(name: str, values: pa.ChunkedArray, numbers: np.ndarray) -> Profile:
    missing = np.zeros(len(numbers), dtype=bool)
    distinct = distinct_numbers(numbers)
    kind = _numeric_kind(numbers, missing, distinct)
    examples = tuple(pc.unique(values.slice(0, 1000)).to_pylist()[:3])
    schema = ColumnSchema(name, kind, str(values.type), 0, distinct, 1.0, examples)
    return Profile(name, kind, missing, numbers, missing.copy(), values, values, {}, {}, schema)


def number_bits(numbers: np.ndarray) -> np.ndarray:
    """float64 values as int64 bit patterns (-0.0 folded into 0.0): arrow hashes integers far faster."""
    return np.where(numbers == 0, 0.0, numbers).view(np.int64)


def distinct_numbers(numbers: np.ndarray) -> int:
    """Distinct values; above ``SAMPLE_ROWS`` values, counted on an evenly spaced sample of them.

    Hashing a million unique floats per column would cost more than reading the file; the kind
    decisions only need to know "one", "two", "few" or "nearly all unique", which a sample tells.
    """
    if not len(numbers):
        return 0
    step = max(1, len(numbers) // SAMPLE_ROWS)
    sample = numbers[::step]
    ordered = np.sort(number_bits(sample))  # sorting beats numpy's hash-based unique here
    distinct = 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))
    return (
        distinct
        if step == 1
        else round(distinct * len(numbers) / len(sample))
        if distinct > 0.5 * len(sample)
        else distinct
    )


def _parse_numbers(
    strings: pa.ChunkedArray, missing: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Present values as float64 when at least half parse; also which present values do not parse."""
    present = int(len(missing) - missing.sum())
    if present == 0:
        return None, None, 0
    try:  # the fast path: every present value is a number
        numbers = _as_float(pc.cast(strings, pa.float64()))
        return numbers, np.zeros(len(missing), dtype=bool), present
    except pa.ArrowInvalid:
        pass
    sample = strings.drop_null().slice(0, 1000)
    if pc.sum(pc.match_substring_regex(sample, NUMBER_PATTERN)).as_py() < MIXED_PARSE_RATE * len(sample):
        return None, None, 0  # plainly text: skip the full-column pattern match
    number_mask = pc.match_substring_regex(strings, NUMBER_PATTERN).fill_null(False)
    is_number = number_mask.to_numpy()
    parsed = int(is_number.sum())
    if parsed < MIXED_PARSE_RATE * present:
        return None, None, parsed
    numbers = _as_float(pc.cast(pc.if_else(number_mask, strings, pa.scalar(None, pa.string())), pa.float64()))
    return numbers, ~is_number & ~missing, parsed


def _as_float(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """float64 numpy values, NaN for nulls."""
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _numeric_kind(numbers: np.ndarray, missing: np.ndarray, distinct: int) -> ColumnKind:
    if distinct <= 1:
        return "constant"
    present = numbers[~missing]
    if (
        distinct == 2
        and set(np.unique(present[:1000]).tolist()) <= {0.0, 1.0}
        and np.isin(present, [0.0, 1.0]).all()
    ):
        return "boolean"
    return "identifier" if _integer_identifier(present, distinct) else "numeric"


def _integer_identifier(present: np.ndarray, distinct: int) -> bool:
    """Unique whole numbers forming a dense or increasing run: row numbers, customer ids."""
    if len(present) < IDENTIFIER_MIN_ROWS or distinct < IDENTIFIER_DISTINCT_RATIO * len(present):
        return False
    finite = present[np.isfinite(present)]
    if len(finite) != len(present) or not np.all(finite == np.round(finite)):
        return False
    dense = (finite.max() - finite.min() + 1) <= 1.5 * len(finite)
    increasing = bool(np.all(np.diff(finite) > 0))
    return dense or increasing


def _string_kind(
    strings: pa.ChunkedArray,
    numbers: np.ndarray | None,
    missing: np.ndarray,
    present: int,
    distinct: int,
    parse_rate: float,
) -> ColumnKind:
    if distinct <= 1:
        return "constant"
    if distinct == 2:
        words = {str(v).lower() for v in pc.unique(strings.drop_null()).to_pylist()}
        if words <= BOOLEAN_WORDS:
            return "boolean"
    if numbers is not None and parse_rate >= NUMERIC_PARSE_RATE:
        return "identifier" if _integer_identifier(numbers[~np.isnan(numbers)], distinct) else "numeric"
    sample = strings.drop_null().slice(0, 20_000)
    if (
        pc.mean(pc.cast(pc.match_substring_regex(sample, DATE_PATTERN), pa.int8())).as_py()
        >= NUMERIC_PARSE_RATE
    ):
        return "datetime"
    mean_length = pc.mean(pc.utf8_length(sample)).as_py()
    spaced = pc.mean(pc.cast(pc.match_substring_regex(sample, r"\s"), pa.int8())).as_py()
    unique_ratio = distinct / present
    if mean_length >= 30 or (unique_ratio >= 0.5 and spaced >= 0.5):
        return "text"
    if present >= IDENTIFIER_MIN_ROWS and unique_ratio >= IDENTIFIER_DISTINCT_RATIO and spaced < 0.05:
        return "identifier"
    return "categorical"


def _value_counts(values: pa.ChunkedArray) -> dict[str, int]:
    if len(values) == 0:
        return {}
    counts = pc.value_counts(values)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))


def _example(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
