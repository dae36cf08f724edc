"""Read a source for checking: every CSV column as raw text, unparseable rows set aside, not fatal.

Training converts types and turns a few spellings into missing values as it reads; the checks need
to see what was actually written ("NA", "-", " Paris"), so CSV files are read through the same CSV
reader as training and prediction (``forgeml.data.csv_reader``) in its raw mode: plain numbers
typed, everything else the text as written, rows it cannot use (a wrong field count, bytes that
are not UTF-8) set aside and reported by row instead of stopping the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.data.csv_reader import BadRow, read_csv, require_content
from forgeml.data.images import ImageFiles, has_image_paths, is_image_source
from forgeml.data.sources import DEFAULT_TARGET, load_source
from forgeml.data.tables import TABLE_FORMATS, read_parquet, read_table
from forgeml.errors import ConfigError, DataError


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
    image_files: ImageFiles | None = None  # a folder or table of image files (forgeml.checks.images)
    text_file: bool = False  # CSV: every column was read as text
    dialect: str | None = None  # CSV: what the reader decided, when not comma-separated UTF-8

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
    if text.startswith("sklearn:") or Path(text).suffix.lower() == ".npz" or is_image_source(text):
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
        table = _read_csv(path)
    elif kind == "parquet":
        table = _read_parquet(path)
    else:
        frame = read_table(path)  # JSON Lines: the training reader already names bad lines
        table = RawTable(text, frame_columns(frame), len(frame))
    if table.rows == 0:
        raise DataError(f"{path}: the file has a header but no rows. Add data rows.", path=text)
    if any(pa.types.is_string(column.type) and has_image_paths(column) for column in table.columns.values()):
        return _read_loaded(text)  # a table of image paths: the files are checked, not the path column
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
    if isinstance(raw.images, ImageFiles):
        table = RawTable(source, frame_columns(frame), rows, image_files=raw.images, image_target=raw.target)
        return table
    table = RawTable(source, frame_columns(frame), rows, images=raw.images)
    if raw.images is not None:
        table.image_target = raw.target
    return table


def _read_parquet(path: Path) -> RawTable:
    arrow = read_parquet(path)
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


def _read_csv(path: Path) -> RawTable:
    read = read_csv(path, raw=True)
    columns = dict(zip(read.table.column_names, read.table.columns, strict=True))
    dialect = None if read.dialect.default else read.dialect.describe()
    return RawTable(
        str(path),
        columns,
        read.table.num_rows,
        read.bad_rows,
        read.row_numbers,
        text_file=True,
        dialect=dialect,
    )
