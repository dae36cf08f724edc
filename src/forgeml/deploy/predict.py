"""Batch prediction: stream an input file through a bundle and write the output file atomically.

CSV and Parquet inputs are read in chunks with pyarrow (numeric columns typed as float64,
categorical columns as text), so files larger than memory predict in bounded memory. Outputs are
written chunk by chunk into a temporary file in the output's folder, fsynced and renamed over the
target at the end: a failure anywhere leaves any previous output untouched. JSON Lines and .npz
inputs are read whole. A progress bar shows on a terminal.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from forgeml.data import RawData, load_source
from forgeml.data.tables import MISSING_MARKERS
from forgeml.deploy.predictor import Predictor
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
    """Predict every row of ``source`` (CSV, Parquet, JSON Lines or .npz) and write ``output``.

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
    if suffix in (".csv", ".tsv", ".parquet", ".pq") and Path(source).is_file():
        rows = _stream(predictor, Path(source), output, progress)
        return PredictSummary(output, rows, predictor.engine.name)
    raw = load_source(str(source), predictor.bundle.manifest["task"].get("target"), require_target=False)
    try:
        predictions = predictor.predict(raw)
    except DataError as exc:
        raise DataError(f"{source}: {exc}", path=str(source), column=exc.column, row=exc.row) from None
    with _atomic_output(output) as sink:
        sink.write(predictions)
    return PredictSummary(output, len(predictions), predictor.engine.name)


def _stream(predictor: Predictor, source: Path, output: Path, progress: bool | None) -> int:
    """Predict ``source`` chunk by chunk into ``output``; nothing is kept beyond one chunk."""
    from rich.progress import Progress

    batches, total = _batches(predictor, source)
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


def _batches(predictor: Predictor, source: Path) -> tuple[Iterator[pa.RecordBatch], int | None]:
    if source.suffix.lower() in (".parquet", ".pq"):
        try:
            parquet = pa_parquet.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"{source}: corrupt or unreadable Parquet file ({exc}).", path=str(source)
            ) from None
        return parquet.iter_batches(batch_size=CHUNK_ROWS), parquet.metadata.num_rows
    pipeline = predictor.pipeline
    # Every input column as text: to_numbers then names the column and row of a value that is not a
    # number (pyarrow's own conversion error names neither), and categories keep their spelling.
    types = {column: pa.string() for column in pipeline.input_columns}
    try:
        reader = pa_csv.open_csv(
            source,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(delimiter="\t" if source.suffix.lower() == ".tsv" else ","),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, null_values=MISSING_MARKERS, strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{source}: cannot read the CSV ({exc}).", path=str(source)) from None
    return _guarded(reader, source), None


def _guarded(reader: pa_csv.CSVStreamingReader, source: Path) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:  # e.g. text in a numeric column, a ragged row
            raise DataError(
                f"{source}: {exc}. Fix the value or leave it empty to impute it.", path=str(source)
            ) from None


class _Sink:
    """Appends prediction chunks to an open file as CSV (one header), JSON Lines or Parquet row groups."""

    def __init__(self, handle: io.BufferedWriter, suffix: str) -> None:
        self.handle = handle
        self.suffix = suffix
        self.rows = 0
        self.parquet: pa_parquet.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
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
        self.rows += len(frame)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


@contextmanager
def _atomic_output(output: Path) -> Iterator[_Sink]:
    """A temporary file beside ``output``: fsynced and renamed over it on success, removed on failure."""
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            sink = _Sink(handle, output.suffix.lower())
            yield sink
            sink.close()
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o666 & ~_umask())
        os.replace(name, output)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_predictions(frame: pd.DataFrame, output: Path) -> None:
    """Write ``frame`` in the format named by ``output``'s suffix, atomically."""
    with _atomic_output(output) as sink:
        sink.write(frame)
