"""Read a source for checking: every CSV column as raw text, unparseable rows set aside, not fatal.

The training reader (``forgeml.data.tables``) converts types and turns a few spellings into missing
values as it reads; the checks need to see what was actually written ("NA", "-", " Paris"), so CSV
columns are read here as strings with no missing-value conversion. pyarrow's multi-threaded reader
does this several times faster than ``pandas.read_csv``. Rows pyarrow cannot parse (wrong field
count, an unbalanced quote) are skipped through its ``invalid_row_handler`` and reported by line;
cells that are not valid UTF-8 are decoded with replacement and their rows reported the same way.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from forgeml.data.sources import DEFAULT_TARGET, load_source
from forgeml.data.tables import TABLE_FORMATS, read_table, require_content
from forgeml.errors import ConfigError, DataError


@dataclass(frozen=True)
class BadRow:
    """A CSV record the reader could not use: its 1-based data row (line - 1) and why."""

    row: int
    reason: str


@dataclass
class RawTable:
    """The columns of a source as read for checking, plus what could not be read.

    ``columns`` maps a name to its values: strings for CSV (exactly as written), typed arrays for
    Parquet and in-memory tables. ``row_numbers[i]`` is the 1-based source data row of table row
    ``i``; it is None when no row was skipped, so the mapping is ``i + 1``.
    """

    source: str
    columns: dict[str, pa.ChunkedArray]
    rows: int
    bad_rows: tuple[BadRow, ...] = ()
    row_numbers: np.ndarray | None = None
    images: np.ndarray | None = None
    image_target: pd.Series | None = None
    text_file: bool = False  # CSV: every column was read as text
    notes: list[str] = field(default_factory=list)

    def source_rows(self, positions: np.ndarray) -> list[int]:
        """1-based source data rows for 0-based table positions."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.row_numbers is None:
            return [int(p) + 1 for p in positions]
        return [int(r) for r in self.row_numbers[positions]]


def read_source(source: str | Path | pd.DataFrame) -> RawTable:
    """Read a file path, ``sklearn:<name>`` or a DataFrame for checking; raise DataError if unusable."""
    if isinstance(source, pd.DataFrame):
        return RawTable("<DataFrame>", frame_columns(source), len(source))
    text = str(source)
    if text.startswith("sklearn:") or Path(text).suffix.lower() == ".npz":
        return _read_loaded(text)
    path = Path(text)
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}. Use .csv, .tsv, .parquet, .jsonl or .npz.",
            path=text,
        )
    require_content(path)
    if kind == "csv":
        table = _read_csv(path, "\t" if path.suffix.lower() == ".tsv" else ",")
    elif kind == "parquet":
        table = _read_parquet(path)
    else:
        frame = read_table(path)  # JSON Lines: the training reader already names bad lines
        table = RawTable(text, frame_columns(frame), len(frame))
    if table.rows == 0:
        raise DataError(f"{path}: the file has a header but no rows. Add data rows.", path=text)
    return table


def frame_columns(frame: pd.DataFrame) -> dict[str, pa.ChunkedArray]:
    """Arrow columns of a DataFrame: numbers and booleans keep their type, the rest become strings."""
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"duplicate column names: {', '.join(duplicates)}. Rename them so each is unique.")
    columns: dict[str, pa.ChunkedArray] = {}
    for name, (_, series) in zip(names, frame.items(), strict=True):
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            array = pa.array(series.to_numpy(dtype=float), from_pandas=True)
        else:
            values = series.astype(object).where(series.notna(), None)
            array = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        columns[name] = pa.chunked_array([array])
    return columns


def _read_loaded(source: str) -> RawTable:
    """sklearn sets and .npz archives: loaded by the data stage, the target kept as column 'target'."""
    try:
        raw = load_source(source, None)
    except ConfigError:
        if source.startswith("sklearn:"):
            raise
        raw = load_source(source, None, require_target=False)  # an .npz without labels
    frame = raw.table
    if raw.target is not None and raw.images is None:
        frame = frame.assign(**{DEFAULT_TARGET: raw.target.to_numpy()})
    rows = len(raw)
    table = RawTable(source, frame_columns(frame), rows, images=raw.images)
    if raw.images is not None:
        table.image_target = raw.target
    return table


def _read_parquet(path: Path) -> RawTable:
    try:
        arrow = pa_parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: corrupt or unreadable Parquet file ({str(exc).splitlines()[0]}).", path=str(path)
        ) from None
    names = arrow.column_names
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names. Rename them so each is unique.", path=str(path))
    columns = {}
    for name, values in zip(names, arrow.columns, strict=True):
        numeric = (
            pa.types.is_integer(values.type)
            or pa.types.is_floating(values.type)
            or pa.types.is_boolean(values.type)
        )
        columns[name] = values if numeric or pa.types.is_string(values.type) else pc.cast(values, pa.string())
    return RawTable(str(path), columns, arrow.num_rows)


def _read_csv(path: Path, delimiter: str) -> RawTable:
    names = _header(path, delimiter)
    bad: list[tuple[int | None, str]] = []

    def skip(row: pa_csv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append((row.number, reason))
        return "skip"

    def read(column_type: pa.DataType | None, threads: bool) -> pa.Table:
        bad.clear()
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=threads),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip),
            convert_options=pa_csv.ConvertOptions(
                column_types=None if column_type is None else dict.fromkeys(names, column_type),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                true_values=[],
                false_values=[],
                timestamp_parsers=[],
            ),
        )

    # First let the (multi-threaded) reader parse columns that hold only plain numbers; everything
    # else stays text exactly as written. A column whose later rows break the inferred type
    # ("abc" among integers) makes the reader fail: then every column is read as text.
    column_type: pa.DataType | None = None
    for attempt in (None, pa.string(), pa.binary()):
        column_type = attempt
        try:
            table = read(column_type, True)
            break
        except pa.ArrowInvalid as exc:
            message = str(exc).lower()
            if "utf8" in message and attempt is not pa.binary():
                continue  # invalid UTF-8 somewhere: read bytes, decode column by column below
            if "conversion error" in message and attempt is None:
                continue
            raise DataError(
                f"{path}: cannot parse as CSV ({str(exc).splitlines()[0]}).", path=str(path)
            ) from None
    if any(number is None for number, _ in bad):  # the threaded reader does not know line numbers
        table = read(column_type, False)
    bad_rows = [BadRow(int(number) - 1, reason) for number, reason in bad if number is not None]
    row_numbers = _row_numbers(table.num_rows, [b.row for b in bad_rows])
    columns = {name: _plain_type(table.column(i)) for i, name in enumerate(names)}
    if any(pa.types.is_binary(values.type) for values in columns.values()):
        columns, row_numbers, encoding_bad = _decode_columns(columns, row_numbers)
        bad_rows += encoding_bad
    rows = len(next(iter(columns.values()))) if columns else 0
    bad_rows.sort(key=lambda b: b.row)
    return RawTable(str(path), columns, rows, tuple(bad_rows), row_numbers, text_file=True)


def _plain_type(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Keep numbers and text; anything else the reader inferred (dates) goes back to its text."""
    kind = values.type
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_binary(kind)
    ):
        return values
    return pc.cast(values, pa.string())


def _header(path: Path, delimiter: str) -> list[str]:
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: the file is UTF-16 encoded. Re-save it as UTF-8.", path=str(path))
    if b"\x00" in head:
        raise DataError(
            f"{path}: this looks like a binary file, not a text CSV (it contains NUL bytes).", path=str(path)
        )
    try:
        first_line = head.decode("utf-8-sig", errors="strict").splitlines()[0]
    except UnicodeDecodeError:
        first_line = head.decode("utf-8-sig", errors="replace").splitlines()[0]
        if "\ufffd" in first_line:
            raise DataError(
                f"{path}: the header is not valid UTF-8 text. Re-save the file as UTF-8.", path=str(path)
            ) from None
    names = next(csv.reader([first_line], delimiter=delimiter), [])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(
            f"{path}: duplicate column names in the header: {', '.join(duplicates)}. Rename them so each is unique.",
            path=str(path),
        )
    if not names or names == [""]:
        raise DataError(
            f"{path}: the first line (the header) is empty. Put the column names there.", path=str(path)
        )
    return names


def _row_numbers(kept: int, skipped: list[int]) -> np.ndarray | None:
    """1-based source data rows of the ``kept`` rows, given the 1-based rows that were skipped."""
    if not skipped:
        return None
    everything = np.arange(1, kept + len(skipped) + 1, dtype=np.int64)
    return np.setdiff1d(everything, np.asarray(skipped, dtype=np.int64), assume_unique=True)[:kept]


def _decode_columns(
    columns: dict[str, pa.ChunkedArray], row_numbers: np.ndarray | None
) -> tuple[dict[str, pa.ChunkedArray], np.ndarray | None, list[BadRow]]:
    """Decode binary columns as UTF-8; rows with any undecodable cell are dropped and reported."""
    rows = len(next(iter(columns.values())))
    invalid = np.zeros(rows, dtype=bool)
    decoded: dict[str, pa.ChunkedArray] = {}
    for name, values in columns.items():
        if not pa.types.is_binary(values.type):
            decoded[name] = values
            continue
        try:
            decoded[name] = pc.cast(values, pa.string())
        except pa.ArrowInvalid:
            text = pd.Series(values.to_pandas()).str.decode("utf-8", errors="replace")
            invalid |= text.str.contains("\ufffd", regex=False).to_numpy()
            decoded[name] = pa.chunked_array([pa.array(text.to_numpy(dtype=object), type=pa.string())])
    numbers = np.arange(1, rows + 1) if row_numbers is None else row_numbers
    bad = [BadRow(int(r), "not valid UTF-8 text (wrong encoding?)") for r in numbers[invalid]]
    keep = pa.array(~invalid)
    decoded = {name: values.filter(keep) for name, values in decoded.items()}
    return decoded, numbers[~invalid], bad
