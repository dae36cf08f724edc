"""Schema inference: each column's kind, with the evidence (parse rate, distinct count, examples).

Everything is vectorised with pyarrow compute kernels on the whole column; no per-row Python. A
column is profiled once into a :class:`Profile` holding what the checks need (missing mask, parsed
numbers, trimmed strings), then dropped, so memory stays near one column's worth beyond the table.

Kinds, in the order they are decided:

* ``constant``: at most one distinct present value;
* ``boolean``: exactly two values, both spellings of true/false (1/0, yes/no, t/f, ...);
* ``identifier``: present values (nearly) all distinct, and either integers in a dense or
  increasing run (1, 2, 3, ...), or 100+ distinct integers of one width of 5+ digits in any order
  (``708082083``), or short strings without spaces (``C-1042``, UUIDs);
* ``numeric``: at least 95% of present values parse as numbers;
* ``datetime``: at least 95% of present values start with a date (ISO-8601 or d/m/y; those not ISO are
  reported as unparseable, never guessed: guessing day-first vs month-first is how silent errors
  start);
* ``text``: long values (mean 30+ characters) or mostly-unique values with spaces;
* ``categorical``: everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.checks.catalogue import (
    ID_DIGITS,
    ID_MIN_ROWS,
    IDENTIFIER_DISTINCT_RATIO,
    IDENTIFIER_MIN_ROWS,
    MIXED_PARSE_RATE,
    NUMERIC_PARSE_RATE,
    SAMPLE_ROWS,
)
from forgeml.checks.report import ColumnKind, ColumnSchema
from forgeml.data.numbers import NUMBER_PATTERN

# Spellings read as "no value" (compared after trimming surrounding spaces, so "  " counts as "").
MISSING_SPELLINGS = ["", "NA", "N/A", "n/a", "na", "NaN", "nan", "NAN", "null", "NULL", "Null", "None", "none",
                     "?", "-", "--"]  # fmt: skip
# a date at the start of a value, in any common layout: enough of these make the column a date column
DATE_LIKE = r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4})\b"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
BOOLEAN_WORDS = {"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1", "0.0", "1.0"}
CATEGORY_CARDINALITY = 10_000  # spellings of columns with more distinct values are not compared


@dataclass(frozen=True)
class Coded:
    """A string column as distinct trimmed present values plus one code per row.

    ``words`` are in order of first appearance (the order ``pc.unique`` and ``pc.value_counts``
    report), ``codes`` index them with -1 for a missing value. Checks work on the (usually small)
    words and map results back with ``per_word[codes]``; an array with one extra trailing entry
    turns code -1 into that entry, the value for "missing".
    """

    words: pa.Array
    codes: np.ndarray  # (N,) int32

    def expand(self) -> pa.ChunkedArray:
        """The trimmed values row by row, null where missing."""
        indices = pa.array(self.codes, mask=self.codes < 0)
        return pa.chunked_array([self.words.take(indices)], type=pa.string())

    def rows(self, positions: np.ndarray) -> list[str | None]:
        """The trimmed values at some row positions (None where missing)."""
        codes = self.codes[positions]
        return self.words.take(pa.array(codes, mask=codes < 0)).to_pylist()


@dataclass
class Profile:
    """What the checks need to know about one column; ``schema`` is the part that is reported."""

    name: str
    kind: ColumnKind
    missing: np.ndarray  # (N,) bool
    numbers: np.ndarray | None  # (N,) float64, NaN where missing or not a number; None if not numeric-ish
    not_numbers: np.ndarray | None  # (N,) bool: present but not a number, when numbers is not None
    stored_strings: pa.ChunkedArray | None  # trimmed values, null where missing (or built from coded)
    raw: pa.ChunkedArray  # the values as read
    spellings: dict[str, int]  # raw spelling -> count, for low-cardinality string columns
    markers: dict[str, int]  # missing-value spelling -> count
    schema: ColumnSchema
    coded: Coded | None = None  # string columns: the same values dictionary-encoded

    @property
    def present(self) -> int:
        return int(len(self.missing) - self.missing.sum())

    @property
    def textual(self) -> bool:
        """The column has string values (None for typed numeric columns)."""
        return self.stored_strings is not None or self.coded is not None

    @property
    def strings(self) -> pa.ChunkedArray | None:
        """Trimmed values, null where missing; built on first use for dictionary-coded columns."""
        if self.stored_strings is None and self.coded is not None:
            self.stored_strings = self.coded.expand()
        return self.stored_strings


def profile_column(name: str, values: pa.ChunkedArray) -> Profile:
    """Profile one column: missing values, numbers, distinct values and the inferred kind."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return _profile_strings(name, values)
    numbers = _as_float(values)
    missing = np.isnan(numbers)
    present = numbers[~missing] if missing.any() else numbers
    distinct = distinct_numbers(present)
    kind = _numeric_kind(present, distinct)
    examples = tuple(_example(v) for v in pc.unique(pa.array(present[:1000])).to_pylist()[:3])
    schema = ColumnSchema(name, kind, str(values.type), int(missing.sum()), distinct, 1.0, examples)
    not_numbers = np.zeros(len(numbers), dtype=bool)
    return Profile(name, kind, missing, numbers, not_numbers, None, values, {}, {}, schema)


def _profile_strings(name: str, values: pa.ChunkedArray) -> Profile:
    """Every step runs on the distinct spellings (dictionary-encoded once), then maps back by code."""
    if values.null_count == 0:
        try:  # the fast path: a complete column of plain numbers needs no trimming or marker search
            numbers = _as_float(pc.cast(values, pa.float64()))
        except pa.ArrowInvalid:
            pass
        else:
            return _profile_plain_numbers(name, values, numbers)
    encoded = pc.dictionary_encode(values.combine_chunks() if values.num_chunks != 1 else values.chunk(0))
    spelled = encoded.dictionary  # (D,) raw spellings in order of first appearance
    raw_codes = encoded.indices.fill_null(len(spelled)).to_numpy(zero_copy_only=False)  # D = null
    trimmed = pc.utf8_trim_whitespace(spelled)
    is_marker = np.append(pc.is_in(trimmed, value_set=pa.array(MISSING_SPELLINGS)).to_numpy(False), True)
    missing = is_marker[raw_codes]
    counts = np.bincount(raw_codes, minlength=len(spelled) + 1)
    markers = {spelled[i].as_py(): int(counts[i]) for i in np.flatnonzero(is_marker[:-1])}
    kept = np.flatnonzero(~is_marker)  # spellings of present values
    words_encoded = pc.dictionary_encode(trimmed.take(pa.array(kept)))
    word_of = np.full(len(spelled) + 1, -1, dtype=np.int32)
    word_of[kept] = words_encoded.indices.to_numpy(zero_copy_only=False)
    coded = Coded(words_encoded.dictionary, word_of[raw_codes])
    present_at = np.flatnonzero(~missing)
    present = len(present_at)
    numbers, not_numbers, parsed = _parse_numbers(coded, missing, present_at)
    if numbers is not None and parsed == present:
        distinct = distinct_numbers(numbers[present_at])  # hashing 8-byte numbers beats hashing text
    else:
        distinct = len(coded.words)
    examples = tuple(coded.words.take(pa.array(first_seen(coded.codes[present_at[:1000]])[:3])).to_pylist())
    parse_rate = parsed / present if present else 0.0
    kind = _string_kind(coded, numbers, present_at, distinct, parse_rate)
    spellings = {spelled[i].as_py(): int(counts[i]) for i in kept} if distinct <= CATEGORY_CARDINALITY else {}
    if kind == "numeric" or (numbers is not None and parse_rate < 1.0):
        pass  # numbers kept: numeric columns and mixed columns (mostly numbers) are checked as numbers
    elif kind != "boolean":
        numbers, not_numbers = None, None
    schema = ColumnSchema(
        name, kind, str(values.type), len(missing) - present, distinct, parse_rate, examples,
        tuple(sorted(markers, key=lambda spelling: -markers[spelling])),
    )  # fmt: skip
    return Profile(name, kind, missing, numbers, not_numbers, None, values, spellings, markers, schema, coded)


def first_seen(codes: np.ndarray) -> np.ndarray:
    """Distinct codes in order of first appearance."""
    _, first_at = np.unique(codes, return_index=True)
    return codes[np.sort(first_at)]


def _profile_plain_numbers(name: str, values: pa.ChunkedArray, numbers: np.ndarray) -> Profile:
    missing = np.zeros(len(numbers), dtype=bool)
    distinct = distinct_numbers(numbers)
    kind = _numeric_kind(numbers, distinct)
    examples = tuple(pc.unique(values.slice(0, 1000)).to_pylist()[:3])
    schema = ColumnSchema(name, kind, str(values.type), 0, distinct, 1.0, examples)
    return Profile(name, kind, missing, numbers, missing.copy(), values, values, {}, {}, schema)


def number_bits(numbers: np.ndarray) -> np.ndarray:
    """float64 values as int64 bit patterns (-0.0 folded into 0.0): arrow hashes integers far faster."""
    return (numbers + 0.0).view(np.int64)  # IEEE: -0.0 + 0.0 is +0.0


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
    coded: Coded, missing: np.ndarray, present_at: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Present values as float64 when at least half parse; also which present values do not parse."""
    present = len(present_at)
    if present == 0:
        return None, None, 0
    try:  # the fast path: every present value is a number
        per_word = _as_float(pc.cast(coded.words, pa.float64()))
        return np.append(per_word, np.nan)[coded.codes], np.zeros(len(missing), dtype=bool), present
    except pa.ArrowInvalid:
        pass
    word_is_number = np.append(pc.match_substring_regex(coded.words, NUMBER_PATTERN).to_numpy(False), False)
    sample = coded.codes[present_at[:1000]]  # the first 1,000 present values
    if word_is_number[sample].sum() < MIXED_PARSE_RATE * len(sample):
        return None, None, 0  # plainly text: skip counting over the full column
    is_number = word_is_number[coded.codes]
    parsed = int(is_number.sum())
    if parsed < MIXED_PARSE_RATE * present:
        return None, None, parsed
    number_words = pc.if_else(pa.array(word_is_number[:-1]), coded.words, pa.scalar(None, pa.string()))
    numbers = np.append(_as_float(pc.cast(number_words, pa.float64())), np.nan)[coded.codes]
    return numbers, ~is_number & ~missing, parsed


def _as_float(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """float64 numpy values, NaN for nulls."""
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _numeric_kind(present: np.ndarray, distinct: int) -> ColumnKind:
    if distinct <= 1:
        return "constant"
    if (
        distinct == 2
        and set(np.unique(present[:1000]).tolist()) <= {0.0, 1.0}
        and np.isin(present, [0.0, 1.0]).all()
    ):
        return "boolean"
    return "identifier" if _integer_identifier(present, distinct) else "numeric"


def _integer_identifier(present: np.ndarray, distinct: int) -> bool:
    """Unique whole numbers forming a dense or increasing run (row numbers), or random fixed-width ids."""
    if len(present) < IDENTIFIER_MIN_ROWS or distinct < IDENTIFIER_DISTINCT_RATIO * len(present):
        return False
    finite = present[np.isfinite(present)]
    if len(finite) != len(present) or not np.all(finite == np.round(finite)):
        return False
    dense = (finite.max() - finite.min() + 1) <= 1.5 * len(finite)
    increasing = bool(np.all(np.diff(finite) > 0))
    return dense or increasing or _fixed_width_ids(finite, distinct)


def _fixed_width_ids(whole: np.ndarray, distinct: int) -> bool:
    """Every value distinct and written with the same number of digits (ID_DIGITS or more): 708082083."""
    if len(whole) < ID_MIN_ROWS or distinct < len(whole) or whole.min() < 10 ** (ID_DIGITS - 1):
        return False
    return bool(np.floor(np.log10(whole.min())) == np.floor(np.log10(whole.max())))


def _string_kind(
    coded: Coded, numbers: np.ndarray | None, present_at: np.ndarray, distinct: int, parse_rate: float
) -> ColumnKind:
    if distinct <= 1:
        return "constant"
    if distinct == 2:
        words = {str(v).lower() for v in coded.words.to_pylist()}
        if words <= BOOLEAN_WORDS:
            return "boolean"
    if numbers is not None and parse_rate >= NUMERIC_PARSE_RATE:
        return "identifier" if _integer_identifier(numbers[~np.isnan(numbers)], distinct) else "numeric"
    # the first 20,000 present values decide; each test runs once per distinct word among them
    seen, sample = np.unique(coded.codes[present_at[:20_000]], return_inverse=True)
    words = coded.words.take(pa.array(seen))
    if _share(pc.match_substring_regex(words, DATE_LIKE), sample) >= NUMERIC_PARSE_RATE:
        return "datetime"  # those not ISO-8601 are reported as unparseable_dates
    mean_length = float(pc.utf8_length(words).to_numpy(False)[sample].mean())
    spaced = _share(pc.match_substring_regex(words, r"\s"), sample)
    unique_ratio = distinct / len(present_at)
    if mean_length >= 30 or (unique_ratio >= 0.5 and spaced >= 0.5):
        return "text"
    if len(present_at) >= IDENTIFIER_MIN_ROWS and unique_ratio >= IDENTIFIER_DISTINCT_RATIO and spaced < 0.05:
        return "identifier"
    return "categorical"


def _share(per_word: pa.BooleanArray, sample: np.ndarray) -> float:
    """The share of sample rows whose word is True."""
    return float(per_word.to_numpy(False)[sample].mean())


def _example(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
