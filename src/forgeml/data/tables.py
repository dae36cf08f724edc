"""Read table files (CSV, Parquet, JSON Lines) into DataFrames, with errors that name the line.

pyarrow reads CSV several times faster than pandas' own parser; where it fails we re-scan the file
with Python's csv module only to find the offending line, so the common path stays fast.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from forgeml.errors import DataError

# Spellings of "no value" that become missing when a table is read (TFDV and pandas use similar lists).
MISSING_MARKERS = ["", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?"]
TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON Lines file into a DataFrame; raise DataError naming what is wrong."""
    kind = TABLE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}. Use .csv, .parquet, .jsonl or .npz.",
            path=str(path),
        )
    require_content(path)
    frame = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}[kind](path)
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header but no rows. Add data rows.", path=str(path))
    return frame


def require_content(path: Path) -> None:
    """Refuse a missing or 0-byte file with one line naming it (shared by the reader and forgeml check)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check data.source in the config or the path you passed.", path=str(path)
        )
    if path.stat().st_size == 0:
        raise DataError(
            f"{path}: the file is empty (0 bytes). Point to a file with a header and rows.", path=str(path)
        )


def _read_csv(path: Path) -> pd.DataFrame:
    head = _read_head(path)
    if b"\x00" in head:
        raise DataError(
            f"{path}: this looks like a binary file, not a text CSV (it contains NUL bytes).", path=str(path)
        )
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    _check_header(path, head, delimiter)
    try:
        table = pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(null_values=MISSING_MARKERS, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, delimiter, exc) from None
    for field in table.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            _require_utf8(path, field.name, table.column(field.name).to_pylist())
    # Columns pyarrow kept as bytes are all valid UTF-8 now (checked above): read them as text.
    return table.cast(_utf8_schema(table.schema)).to_pandas()


def _require_utf8(path: Path, column: str, values: list[bytes | None]) -> None:
    """pyarrow reads a column holding undecodable bytes as binary; name the first bad row instead."""
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


def _utf8_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        pa.field(field.name, pa.string()) if pa.types.is_binary(field.type) else field for field in schema
    )


def _read_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(8192)


def _check_header(path: Path, head: bytes, delimiter: str) -> None:
    try:
        # Decode the first line only: bad bytes further down are reported with their own line number.
        first_line = head.split(b"\n", 1)[0].decode("utf-8-sig").splitlines()[0]
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: the header is not valid UTF-8 text. Re-save the file as UTF-8.", path=str(path)
        ) from None
    except IndexError:
        return
    names = next(csv.reader([first_line], delimiter=delimiter), [])
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})
    if duplicates:
        raise DataError(
            f"{path}: duplicate column names in the header: {', '.join(duplicates)}. Rename them so each is unique.",
            path=str(path),
        )


def _csv_error(path: Path, delimiter: str, exc: Exception) -> DataError:
    """Turn pyarrow's parse error into one that names the line, found by re-scanning with csv."""
    message = str(exc)
    if "UTF8" in message or "utf8" in message.lower():
        line = _first_undecodable_line(path)
        where = f", line {line}" if line else ""
        return DataError(
            f"{path}{where}: the file is not valid UTF-8 text (undecodable bytes). "
            f"Re-save it as UTF-8 (or check it is really a CSV).",
            path=str(path),
            row=None if line is None else line - 1,
        )
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, [])
        for record in reader:
            if record and len(record) != len(header):
                line = reader.line_num
                return DataError(
                    f"{path}, line {line}: expected {len(header)} fields (as in the header), found {len(record)}. "
                    f"Fix or remove that row (a stray delimiter or an unquoted comma is the usual cause).",
                    path=str(path),
                    row=line - 1,
                )
    return DataError(f"{path}: cannot parse as CSV ({message.splitlines()[0]}).", path=str(path))


def _first_undecodable_line(path: Path) -> int | None:
    """The 1-based line number of the first line that is not UTF-8 (data row = line - 1), or None."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pa_parquet.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path}: corrupt or unreadable Parquet file ({str(exc).splitlines()[0]}).", path=str(path)
        ) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open(encoding="utf-8", errors="strict") as handle:
        try:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    records.append(parse_json_line(path, line_number, line))
        except UnicodeDecodeError:
            raise DataError(
                f"{path}: the file is not valid UTF-8 text. Re-save it as UTF-8.", path=str(path)
            ) from None
    frame = pd.DataFrame.from_records(records)
    return frame.replace(dict.fromkeys(MISSING_MARKERS, None)) if len(frame) else frame


def parse_json_line(path: Path, number: int, line: str, *, where: str | None = None) -> dict[str, Any]:
    """One JSON Lines line as a dict; DataError (``row=number``) naming the file and line otherwise.

    Shared by the table reader and the language-model data reader. ``where`` replaces the location
    prefix of the message (default ``"<path>, line <number>"``; the LM reader writes ``"<path>:<number>"``
    as in all its other errors).
    """
    where = where or f"{path}, line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one JSON object.",
            path=str(path),
            row=number,
        ) from None
    if not isinstance(record, dict):
        raise DataError(
            f"{where}: expected a JSON object per line, got {type(record).__name__}. "
            'Write each record as one {"key": value, ...} object on its own line.',
            path=str(path),
            row=number,
        )
    return record
