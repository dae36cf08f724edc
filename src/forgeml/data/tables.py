"""Read table files (CSV, TSV, Parquet, JSON Lines) into DataFrames, with errors that name the line.

CSV and TSV go through the one CSV reader (:mod:`forgeml.data.csv_reader`) that checking and
prediction use too; Parquet files are opened by :func:`open_parquet`, also shared with both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pa_parquet

from forgeml.data.csv_reader import MISSING_MARKERS, read_csv, require_content
from forgeml.errors import DataError

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


def _read_csv(path: Path) -> pd.DataFrame:
    return read_csv(path).table.to_pandas()


def _read_parquet(path: Path) -> pd.DataFrame:
    return read_parquet(path).to_pandas()


def read_parquet(path: Path) -> pa.Table:
    """A whole Parquet file (training and checking); DataError if it is not one."""
    parquet = open_parquet(path)
    try:
        return parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(path, exc) from None


def open_parquet(path: Path) -> pa_parquet.ParquetFile:
    """Open a Parquet file to read whole or in row batches (prediction); DataError if it is not one."""
    try:
        return pa_parquet.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(path, exc) from None


def _parquet_error(path: Path, exc: Exception) -> DataError:
    return DataError(
        f"{path}: corrupt or unreadable Parquet file ({str(exc).splitlines()[0]}).", path=str(path)
    )


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
    except RecursionError:  # json's C decoder recurses once per bracket; 100,000 of them overflow the stack
        raise DataError(
            f"{where}: nested too deeply to read (thousands of brackets inside each other). "
            "Each line must be one flat JSON object of column values.",
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
