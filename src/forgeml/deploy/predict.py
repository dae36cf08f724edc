"""Batch prediction: read an input file, predict through a bundle, write the output file atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pa_parquet

from forgeml import atomic
from forgeml.data import load_source
from forgeml.deploy.predictor import Predictor
from forgeml.errors import DataError

OUTPUT_FORMATS = (".csv", ".parquet", ".jsonl")


def predict_file(bundle: str | Path, source: str | Path, output: str | Path) -> pd.DataFrame:
    """Predict every row of ``source`` (CSV, Parquet, JSON Lines or .npz) and write ``output``.

    The output keeps the input's row order; a problem in the input names the file, column and row,
    and leaves any existing output file untouched.
    """
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(
            f"{output}: unsupported output type {output.suffix!r}. Use one of {', '.join(OUTPUT_FORMATS)}.",
            path=str(output),
        )
    predictor = Predictor.from_bundle(bundle)
    raw = load_source(str(source), predictor.bundle.manifest["task"].get("target"), require_target=False)
    try:
        predictions = predictor.predict(raw)
    except DataError as exc:
        raise DataError(f"{source}: {exc}", path=str(source), column=exc.column, row=exc.row) from None
    write_predictions(predictions, output)
    return predictions


def write_predictions(frame: pd.DataFrame, output: Path) -> None:
    """Write ``frame`` in the format named by ``output``'s suffix, atomically."""
    suffix = output.suffix.lower()
    if suffix == ".csv":
        atomic.write_text(output, frame.to_csv(index=False))
    elif suffix == ".jsonl":
        atomic.write_text(output, frame.to_json(orient="records", lines=True))
    else:
        sink = pa.BufferOutputStream()
        pa_parquet.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        atomic.write_bytes(output, sink.getvalue().to_pybytes())
