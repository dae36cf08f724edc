"""Batch prediction: stream an input file through a bundle and write the output file atomically.

CSV and Parquet inputs are read in chunks (CSV through the one CSV reader shared with training and
checking, every input column as text), so files larger than memory predict in bounded memory. Outputs are
written chunk by chunk into a temporary file in the output's folder, fsynced and renamed over the
target at the end: a failure anywhere leaves any previous output untouched. JSON Lines and .npz
inputs are read whole. A progress bar shows on a terminal.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pa_parquet

from forgeml.atomic import write_failed
from forgeml.bundle.predictor import Predictor
from forgeml.data import RawData
from forgeml.data.csv_reader import read_csv
from forgeml.data.tables import open_parquet
from forgeml.errors import DataError

OUTPUT_FORMATS = (".csv", ".parquet", ".jsonl")
CHUNK_ROWS = 65_536
CSV_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class PredictSummary:
    """What ``forgeml predict`` wrote: the file, how many rows, and which engine ran."""

    output: Path
    rows: int
    engine: str


def predict_file(
    bundle: str | Path | Predictor, source: str | Path, output: str | Path, *, progress: bool | None = None
) -> PredictSummary:
    """Predict every row of ``source`` (CSV, Parquet, JSON Lines, .npz, or a folder of images) and write ``output``.

    The output keeps the input's row order; a problem in the input names the file, column and row
    (counted over the whole file), and leaves any existing output file untouched.
    """
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(
            f"{output}: unsupported output type {output.suffix!r}. Use one of {', '.join(OUTPUT_FORMATS)}.",
            path=str(output),
        )
    predictor = bundle if isinstance(bundle, Predictor) else Predictor.from_bundle(bundle)
    suffix = Path(str(source)).suffix.lower()
    streamed = predictor.pipeline.image_ is None  # a table of image paths is read whole (load_source)
    if suffix in (".csv", ".tsv", ".parquet", ".pq") and Path(source).is_file() and streamed:
        rows = _stream(predictor, Path(source), output, progress)
        return PredictSummary(output, rows, predictor.engine.name)
    try:
        predictions = predictor.predict(Path(source))
    except DataError as exc:
        if exc.path:  # the reader named the file already
            raise
        raise DataError(f"{source}: {exc}", path=str(source), column=exc.column, row=exc.row) from None
    with _atomic_output(output) as sink:
        sink.write(predictions)
    return PredictSummary(output, len(predictions), predictor.engine.name)


def _stream(predictor: Predictor, source: Path, output: Path, progress: bool | None) -> int:
    """Predict ``source`` chunk by chunk into ``output``; nothing is kept beyond one chunk."""
    from rich.progress import Progress

    batches, total = input_batches(source, predictor.pipeline.input_columns)
    target = predictor.bundle.manifest["task"].get("target")
    done = 0
    with (
        Progress(transient=True, disable=not (progress if progress is not None else os.isatty(2))) as bar,
        _atomic_output(output) as sink,
    ):
        task = bar.add_task(f"predicting {source.name}", total=total)
        for batch in batches:
            table = batch.to_pandas()
            if target in table.columns:
                table = table.drop(columns=target)
            try:
                predictions = predictor.predict(RawData(table, None, None, str(source)))
            except DataError as exc:
                row = None if exc.row is None else exc.row + done
                message = str(exc).replace(f"row {exc.row}:", f"row {row}:") if row else str(exc)
                raise DataError(
                    f"{source}: {message}", path=str(source), column=exc.column, row=row
                ) from None
            sink.write(predictions)
            done += len(table)
            bar.update(task, completed=done if total else None)
        if done == 0:
            raise DataError(f"{source}: the file has a header but no rows. Add data rows.", path=str(source))
    return done


def input_batches(source: Path, columns: Sequence[str]) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of a CSV/TSV or Parquet input, and the row count when the file states it.

    CSV goes through the one CSV reader that training and ``forgeml check`` use, in its streaming mode.
    """
    if source.suffix.lower() in (".parquet", ".pq"):
        parquet = open_parquet(source)
        return parquet.iter_batches(batch_size=CHUNK_ROWS), parquet.metadata.num_rows
    # Every input column as text: to_numbers then names the column and row of a value that is not a
    # number (pyarrow's own conversion error names neither), and categories keep their spelling.
    types = dict.fromkeys(columns, pa.string())
    return read_csv(source, column_types=types, block_bytes=CSV_BLOCK_BYTES), None


class _Sink:
    """Appends prediction chunks to an open file as CSV (one header), JSON Lines or Parquet row groups."""

    def __init__(self, handle: io.BufferedWriter, suffix: str) -> None:
        self.handle = handle
        self.suffix = suffix
        self.rows = 0
        self.parquet: pa_parquet.ParquetWriter | None = None
        self.failed: OSError | None = None

    def write(self, frame: pd.DataFrame) -> None:
        try:
            self._write(frame)
        except OSError as exc:  # a disk full mid-file is a write failure, named as one (not an input problem)
            self.failed = exc
            raise
        self.rows += len(frame)

    def _write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".csv":
            self.handle.write(frame.to_csv(index=False, header=self.rows == 0).encode("utf-8"))
        elif self.suffix == ".jsonl":
            if len(frame):
                self.handle.write(frame.to_json(orient="records", lines=True).rstrip("\n").encode() + b"\n")
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pa_parquet.ParquetWriter(self.handle, table.schema)
            self.parquet.write_table(table)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


@contextmanager
def _atomic_output(output: Path) -> Iterator[_Sink]:
    """A temporary file beside ``output``: fsynced and renamed over it on success, removed on failure."""
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    sink: _Sink | None = None
    finishing = False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            sink = _Sink(handle, output.suffix.lower())
            yield sink
            finishing = True
            sink.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o666 & ~_umask())
        os.replace(name, output)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        if finishing or (sink is not None and sink.failed is exc):  # disk full: any previous output stays
            raise write_failed(output, exc, existed=output.exists()) from exc
        raise
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
