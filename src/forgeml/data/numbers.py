"""Numbers written as text: which cells parse, and when a column of them counts as numeric.

One rule for the reader that trains and the checks that report on the same file: a text column in
which at least :data:`NUMERIC_SHARE` of the present values are numbers is a numeric column whose
other values are typing slips (``abc``, ``12x5``), read as missing and named by row.

Why 95%: below it the "slips" are too many to be slips (one value in 20 or more is text by
design, as in a column of sizes ``1, 2, ..., XL``), and a categorical reading loses little; above
it, reading the column as categories turns every distinct number into its own category (a column
of 100 prices with two typos trained as 100 categories, and the served model then wanted strings).
The same share decides a column's kind in ``forgeml check`` (``checks.catalogue.NUMERIC_PARSE_RATE``).
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)

NUMERIC_SHARE = 0.95
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|(?i:inf|infinity))$"
SHOWN = 5  # (row, value) pairs named per column


def number_pattern(decimal: str = ".") -> str:
    """NUMBER_PATTERN for a decimal mark ("." or ",")."""
    return NUMBER_PATTERN if decimal == "." else NUMBER_PATTERN.replace(r"\.", ",")


def mostly_numbers(table: pa.Table, fixed: dict[str, pa.DataType], decimal: str = ".") -> pa.Table:
    """Text columns that are at least NUMERIC_SHARE numbers, as float64 (the rest missing, each logged).

    Columns whose type the caller fixed (``fixed``) are left as they are.
    """
    for index, field in enumerate(table.schema):
        if field.name in fixed or not pa.types.is_string(field.type):
            continue
        converted = numeric_column(table.column(index), decimal)
        if converted is None:
            continue
        numbers, slips = converted
        shown = ", ".join(f"row {row} {value!r}" for row, value in slips[:SHOWN])
        logger.warning(
            "column %r: %d values are not numbers in a numeric column and are read as missing: %s",
            field.name,
            len(slips),
            shown,
        )
        table = table.set_column(index, field.name, numbers)
    return table


def numeric_column(
    values: pa.ChunkedArray, decimal: str = "."
) -> tuple[pa.ChunkedArray, list[tuple[int, str]]] | None:
    """(float64 values, [(1-based row, text) of the non-numbers]) when the column is mostly numbers.

    None when every present value is a number (the reader typed those already) or fewer than
    NUMERIC_SHARE of them are.
    """
    trimmed = pc.utf8_trim_whitespace(values)
    present = pc.not_equal(trimmed, "").fill_null(False)
    is_number = pc.and_(present, pc.match_substring_regex(trimmed, number_pattern(decimal)).fill_null(False))
    count_present = pc.sum(present).as_py() or 0
    count_numbers = pc.sum(is_number).as_py() or 0
    if count_numbers == count_present or count_numbers < NUMERIC_SHARE * count_present:
        return None
    text = pc.replace_substring(trimmed, ",", ".") if decimal == "," else trimmed
    numbers = pc.cast(pc.if_else(is_number, text, pa.scalar(None, pa.string())), pa.float64())
    slips_at = np.flatnonzero(np.asarray(pc.and_(present, pc.invert(is_number))))
    slips = [(int(i) + 1, values[int(i)].as_py()) for i in slips_at]
    return numbers, slips
