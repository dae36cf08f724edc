"""The one CSV/TSV reader: training, ``forgeml check`` and batch prediction all read through :func:`read_csv`.

A quirk handled here is handled for all three. Each caller picks what it needs:

* training: the whole file, types inferred, missing markers (:data:`MISSING_MARKERS`) as missing,
  the first unreadable row an error naming its line;
* checking (``raw=True``): every cell as written (only plain numbers typed, no marker turned
  missing), rows that cannot be read (a wrong field count, bytes that are not UTF-8) set aside
  with their row numbers instead of stopping the read;
* prediction (``block_bytes=N``): record batches of about N bytes each, so files larger than memory
  stream in bounded memory.

pyarrow parses several times faster than pandas' parser, multi-threaded for whole reads. A quoted
value may span lines. pyarrow's ``newlines_in_values`` reads those wherever they fall, but slows the
threaded reader (a 1-million-row, 4-column file: 0.105 s against 0.068 s, best of 40, on 2 cores),
so whole reads first go without it and read again with it only when rows look ragged: a value
spanning lines that straddles two blocks is what makes them look so. Streaming always sets it (it
cost 8% there: 0.090 s against 0.083 s). Where pyarrow fails, the file is re-scanned with Python's
csv module only to name the line.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from forgeml.data.dialect import Dialect, sniff
from forgeml.data.numbers import mostly_numbers
from forgeml.errors import DataError

logger = logging.getLogger(__name__)

# Spellings of "no value" that become missing when a table is read (TFDV and pandas use similar lists).
MISSING_MARKERS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?"]
HEAD_BYTES = 65536  # looked at for NUL bytes and a UTF-16 byte-order mark; the header may run longer
MAX_HEADER_BYTES = 64 << 20
_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")


@dataclass(frozen=True)
class BadRow:
    """A CSV record the reader set aside: its 1-based data row (line - 1 without quoted newlines) and why."""

    row: int
    reason: str


@dataclass(frozen=True)
class CsvTable:
    """A whole CSV file as read: its columns, plus (``raw=True`` only) the rows set aside.

    ``row_numbers[i]`` is the 1-based data row of table row ``i``; None when no row was set aside,
    so the mapping is ``i + 1``. ``dialect`` is what :func:`sniff` decided about the file.
    """

    table: pa.Table
    bad_rows: tuple[BadRow, ...] = ()
    row_numbers: np.ndarray | None = None
    dialect: Dialect = Dialect()


@overload
def read_csv(
    path: Path, *, raw: bool = False, column_types: Mapping[str, pa.DataType] | None = None
) -> CsvTable: ...


@overload
def read_csv(
    path: Path, *, column_types: Mapping[str, pa.DataType] | None = None, block_bytes: int
) -> Iterator[pa.RecordBatch]: ...


def read_csv(
    path: Path,
    *,
    raw: bool = False,
    column_types: Mapping[str, pa.DataType] | None = None,
    block_bytes: int | None = None,
) -> CsvTable | Iterator[pa.RecordBatch]:
    """Read the CSV (``.tsv``: tab-separated) at ``path``; raise DataError naming the file and line.

    ``column_types`` fixes the type of the named columns (prediction reads its inputs as text so the
    feature code can name a bad value's column and row); the rest are inferred. ``raw`` reads for
    checking (see the module docstring); ``block_bytes`` streams record batches instead of
    returning the whole table (not with ``raw``).
    """
    require_content(path)
    dialect = sniff(path)
    names = header(path, dialect)
    if not dialect.default:
        logger.info("%s: %s", path, dialect.describe())
    if block_bytes is not None:
        if raw:
            raise ValueError("raw reads are whole-file reads: pass raw or block_bytes, not both")
        # pyarrow takes the number of columns from the first block: it must hold the whole header.
        block_bytes = max(block_bytes, 2 * len(dialect.delimiter.join(names).encode(dialect.encoding)))
        convert = _convert(dict(column_types or {}), raw=False, decimal=dialect.decimal)
        return _stream(path, dialect, _parse(dialect.delimiter), convert, block_bytes)
    return _read_whole(path, names, dialect, dict(column_types or {}), raw)


def require_content(path: Path) -> None:
    """Refuse a missing or 0-byte file with one line naming it (shared by every table reader)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check data.source in the config or the path you passed.", path=str(path)
        )
    if path.stat().st_size == 0:
        raise DataError(
            f"{path}: the file is empty (0 bytes). Point to a file with a header and rows.", path=str(path)
        )


def header(path: Path, dialect: Dialect) -> list[str]:
    """The column names; DataError for a binary file, a header that does not decode, or duplicate names.

    The header is the first non-blank line (pyarrow skips blank lines too), read to its end however
    long it is: a 20,000-column header is longer than any fixed-size peek.
    """
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        if b"\x00" in head and dialect.encoding != "utf-16":
            raise DataError(
                f"{path}: this looks like a binary file, not a text CSV (it contains NUL bytes).",
                path=str(path),
            )
        # errors="replace": only the header line must decode; a bad byte further down is a bad row
        decoder = codecs.getincrementaldecoder(dialect.encoding)(errors="replace")
        text = decoder.decode(head).removeprefix("\ufeff")
        while not re.search(r"[^\r\n][\r\n]", text) and len(head) < MAX_HEADER_BYTES:
            more = handle.read(HEAD_BYTES)
            if not more:
                break
            head += more
            text += decoder.decode(more)
    lines = text.lstrip("\r\n").splitlines()
    if lines and "\ufffd" in lines[0] and dialect.encoding == "utf-8":
        raise DataError(
            f"{path}: the header is not valid UTF-8 text. Re-save the file as UTF-8.", path=str(path)
        )
    first_line = lines[0] if lines else ""
    names = next(csv.reader([first_line], delimiter=dialect.delimiter), [])
    if not names or names == [""]:
        raise DataError(
            f"{path}: the first line (the header) is empty. Put the column names there.", path=str(path)
        )
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})
    if duplicates:
        raise DataError(
            f"{path}: duplicate column names in the header: {', '.join(duplicates)}. Rename them so each is unique.",
            path=str(path),
        )
    return names


def _parse(
    delimiter: str, on_bad_row: Callable[[pa_csv.InvalidRow], str] | None = None, *, newlines: bool = True
) -> pa_csv.ParseOptions:
    return pa_csv.ParseOptions(
        delimiter=delimiter, newlines_in_values=newlines, invalid_row_handler=on_bad_row
    )


def _convert(column_types: dict[str, pa.DataType], *, raw: bool, decimal: str = ".") -> pa_csv.ConvertOptions:
    if not raw:
        return pa_csv.ConvertOptions(
            column_types=column_types,
            null_values=MISSING_MARKERS,
            strings_can_be_null=True,
            decimal_point=decimal,
        )
    # Only plain numbers get a type; "NA", "true" or a date stay the text that was written.
    return pa_csv.ConvertOptions(
        column_types=column_types,
        decimal_point=decimal,
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        true_values=[],
        false_values=[],
        timestamp_parsers=[],
    )


def _read_whole(
    path: Path, names: list[str], dialect: Dialect, column_types: dict[str, pa.DataType], raw: bool
) -> CsvTable:
    delimiter = dialect.delimiter
    bad: list[tuple[int | None, str]] = []

    def set_aside(row: pa_csv.InvalidRow) -> str:
        bad.append((row.number, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    newlines = False  # the fast path; see the module docstring

    def read(threads: bool) -> pa.Table:
        bad.clear()
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=threads, encoding=dialect.encoding),
            parse_options=_parse(delimiter, set_aside if raw else None, newlines=newlines),
            convert_options=_convert(column_types, raw=raw, decimal=dialect.decimal),
        )

    # pyarrow infers each column's type; a later value that breaks the type fixed for a column
    # ("abc" among integers, bytes that are not UTF-8 in a text column) fails the read, naming the
    # column: read that column as text (or bytes, decoded below) and try again. Each retry moves one
    # column one step along inferred -> text -> bytes, or turns newlines_in_values on, so it ends.
    while True:
        try:
            table = read(threads=True)
        except UnicodeDecodeError as exc:
            raise _transcoding_error(path, dialect, exc) from None
        except pa.ArrowInvalid as exc:
            retyped = _retype(exc, names, column_types)
            if retyped is None and newlines:
                raise _csv_error(path, dialect, exc) from None
            column_types, newlines = retyped or column_types, retyped is None or newlines
            continue
        if bad and not newlines:  # ragged rows, or values spanning lines across a block boundary?
            newlines = True
            continue
        break
    if any(number is None for number, _ in bad):  # the threaded reader does not know row numbers
        table = read(threads=False)
    if not raw:
        return CsvTable(mostly_numbers(_decoded(path, table), column_types, dialect.decimal), dialect=dialect)
    bad_rows = [BadRow(int(number) - 1, reason) for number, reason in bad if number is not None]
    row_numbers = _row_numbers(table.num_rows, [b.row for b in bad_rows])
    table = pa.table(
        {name: _plain_type(values) for name, values in zip(table.column_names, table.columns, strict=True)}
    )
    if any(pa.types.is_binary(values.type) for values in table.columns):
        table, row_numbers, encoding_bad = _decode_set_aside(table, row_numbers)
        bad_rows += encoding_bad
    return CsvTable(table, tuple(sorted(bad_rows, key=lambda b: b.row)), row_numbers, dialect)


def _retype(
    exc: pa.ArrowInvalid, names: list[str], column_types: dict[str, pa.DataType]
) -> dict[str, pa.DataType] | None:
    """Column types with the column that failed as text (bytes if it is not UTF-8); None if no column is named."""
    found = _COLUMN_ERROR.search(str(exc))
    if found is None or int(found.group(1)) >= len(names):
        return None
    name = names[int(found.group(1))]
    wanted = pa.binary() if "utf8" in str(exc).lower() else pa.string()
    if column_types.get(name) in (wanted, pa.binary()):
        return None
    return {**column_types, name: wanted}


def _stream(
    path: Path, dialect: Dialect, parse: pa_csv.ParseOptions, convert: pa_csv.ConvertOptions, block_bytes: int
) -> Iterator[pa.RecordBatch]:
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=block_bytes, encoding=dialect.encoding),
            parse_options=parse,
            convert_options=convert,
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise _csv_error(path, dialect, exc) from None
    except UnicodeDecodeError as exc:
        raise _transcoding_error(path, dialect, exc) from None
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _transcoding_error(path, dialect, exc) from None
        except pa.ArrowInvalid as exc:  # a ragged row, bytes that are not UTF-8, a value that breaks a type
            raise _csv_error(path, dialect, exc) from None
        yield batch


def _decoded(path: Path, table: pa.Table) -> pa.Table:
    """Columns pyarrow kept as bytes, as text: all must be valid UTF-8, or the first bad row is named."""
    for index, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            _require_utf8(path, field.name, table.column(index).to_pylist())
            table = table.set_column(index, field.name, pc.cast(table.column(index), pa.string()))
    return table


def _require_utf8(path: Path, column: str, values: list[bytes | None]) -> None:
    for index, value in enumerate(values):
        if value is None:
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: column {column!r}, row {index + 1} holds bytes that are not valid UTF-8 "
                f"({value[max(0, exc.start - 10) : exc.end + 10]!r}). Re-save the file as UTF-8 or fix that value.",
                path=str(path),
                column=column,
                row=index + 1,
            ) from None


def _csv_error(path: Path, dialect: Dialect, exc: Exception) -> DataError:
    """Turn pyarrow's parse error into one that names the line, found by re-scanning with csv."""
    message = str(exc)
    if "utf8" in message.lower():
        line = _first_undecodable_line(path)
        where = f", line {line}" if line else ""
        return DataError(
            f"{path}{where}: the file is not valid UTF-8 text (undecodable bytes). "
            f"Re-save it as UTF-8 (or check it is really a CSV).",
            path=str(path),
            row=None if line is None else line - 1,
        )
    encoding = "utf-8-sig" if dialect.encoding == "utf-8" else dialect.encoding
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=dialect.delimiter)
        names = next(reader, [])
        for record in reader:
            if record and len(record) != len(names):
                line = reader.line_num
                return DataError(
                    f"{path}, line {line}: expected {len(names)} fields (as in the header), found {len(record)}. "
                    f"Fix or remove that row (a stray delimiter or an unquoted comma is the usual cause).",
                    path=str(path),
                    row=line - 1,
                )
    return DataError(f"{path}: cannot parse as CSV ({message.splitlines()[0]}).", path=str(path))


def _transcoding_error(path: Path, dialect: Dialect, exc: UnicodeDecodeError) -> DataError:
    """pyarrow turns a file that is not UTF-8 into UTF-8 with Python's strict codec, whose error
    (e.g. a UTF-16 file with an odd number of bytes) would otherwise reach the user as a traceback."""
    return DataError(
        f"{path}: the file does not decode ({dialect.describe()}: {exc.reason}). "
        "Re-save it as UTF-8 (or check it is really a CSV).",
        path=str(path),
    )


def _first_undecodable_line(path: Path) -> int | None:
    """The 1-based line number of the first line that is not UTF-8 (data row = line - 1), or None."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _plain_type(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Raw reads keep numbers, text and bytes; anything else pyarrow inferred goes back to its text."""
    kind = values.type
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_binary(kind)
    ):
        return values
    return pc.cast(values, pa.string())


def _row_numbers(kept: int, skipped: list[int]) -> np.ndarray | None:
    """1-based source data rows of the ``kept`` rows, given the 1-based rows that were skipped."""
    if not skipped:
        return None
    everything = np.arange(1, kept + len(skipped) + 1, dtype=np.int64)
    return np.setdiff1d(everything, np.asarray(skipped, dtype=np.int64), assume_unique=True)[:kept]


def _decode_set_aside(
    table: pa.Table, row_numbers: np.ndarray | None
) -> tuple[pa.Table, np.ndarray, list[BadRow]]:
    """Raw reads: decode byte columns as UTF-8; rows with any undecodable cell are set aside and reported."""
    invalid = np.zeros(table.num_rows, dtype=bool)
    decoded: dict[str, pa.ChunkedArray] = {}
    for name, values in zip(table.column_names, table.columns, strict=True):
        if not pa.types.is_binary(values.type):
            decoded[name] = values
            continue
        try:
            decoded[name] = pc.cast(values, pa.string())
        except pa.ArrowInvalid:
            text = pd.Series(values.to_pandas()).str.decode("utf-8", errors="replace")
            invalid |= text.str.contains("\ufffd", regex=False).to_numpy()
            decoded[name] = pa.chunked_array([pa.array(text.to_numpy(dtype=object), type=pa.string())])
    numbers = np.arange(1, table.num_rows + 1) if row_numbers is None else row_numbers
    bad = [BadRow(int(r), "not valid UTF-8 text (wrong encoding?)") for r in numbers[invalid]]
    return pa.table(decoded).filter(pa.array(~invalid)), numbers[~invalid], bad
