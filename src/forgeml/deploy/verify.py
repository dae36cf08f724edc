"""Parity check: the same rows through the HTTP server, the Predictor and the PyTorch model.

``verify(bundle, data)`` replays every row of ``data`` through a running server (``url``; image files are uploaded
to ``/v1/predict/image`` as they are, other rows go to ``/v1/predict`` as JSON), or
through one it starts on a free loopback port in a subprocess, through :class:`Predictor` (ONNX
Runtime when the bundle has model.onnx) and through the bundle's PyTorch model on the training
code path (``FeaturePipeline.transform`` then ``model``), and reports the largest difference of
the decoded outputs (class probabilities, or regression values) between each pair.
"""

from __future__ import annotations

import contextlib
import math
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from forgeml.bundle.predictive import read_predictor_bundle
from forgeml.bundle.predictor import Predictor
from forgeml.data import RawData, load_source
from forgeml.data.images import ImageFiles
from forgeml.errors import ForgeError
from forgeml.models import predict_outputs

REQUEST_ROWS = 200
UPLOAD_FILES = 64  # files per multipart request: the server's limit (deploy/server/image_upload.py)
QUANTIZED_SUFFIX = " (int8 vs fp32: quantization error, not checked)"


class VerifyError(ForgeError):
    """The server could not be started or reached, or refused rows the Predictor accepted."""


@dataclass(frozen=True)
class VerifyReport:
    """Largest absolute differences between the three paths, over ``rows`` rows.

    For an int8-quantized bundle (``forgeml compress``) the Predictor and the server run the int8
    graph while the PyTorch model holds the fp32 weights it was quantized from: the PyTorch pairs
    measure quantization error, not skew, so they are named so and left out of ``max_difference``
    (what ``--tolerance`` checks); server vs Predictor must still agree to the tolerance.
    """

    rows: int
    engine: str
    url: str
    differences: dict[str, float]
    quantized: bool = False

    @property
    def max_difference(self) -> float:
        return max(value for name, value in self.differences.items() if not name.endswith(QUANTIZED_SUFFIX))


def verify(
    bundle: str | Path, data: str | Path, *, url: str | None = None, rows: int | None = None
) -> VerifyReport:
    """Replay ``data`` (a file or ``sklearn:<name>``) through server, Predictor and PyTorch; compare."""
    loaded = read_predictor_bundle(bundle)
    raw = load_source(str(data), loaded.manifest["task"].get("target"), require_target=False)
    if rows is not None:
        raw = raw.take(np.arange(min(rows, len(raw))))
    files = raw.images if isinstance(raw.images, ImageFiles) else None
    if loaded.pipeline.image_ is not None and raw.images is not None:  # image files: decoded as in training
        raw = replace(raw, images=loaded.pipeline.image_.pixels(raw.images))
    predictor = Predictor(loaded)
    from_predictor = _decoded(predictor, predictor.raw_outputs(raw))
    inputs = loaded.pipeline.transform(raw).ordered(loaded.pipeline.input_spec.names)
    from_torch = _decoded(predictor, predict_outputs(loaded.model, inputs).numpy())
    with _server(Path(bundle), url) as base:
        from_server = _upload_files(base, files, predictor) if files else _ask_server(base, raw, predictor)
    quantized = _int8(loaded.manifest) and predictor.engine.name != "torch"
    suffix = QUANTIZED_SUFFIX if quantized else ""
    differences = {
        "server_vs_predictor": _largest(from_server, from_predictor),
        f"server_vs_pytorch{suffix}": _largest(from_server, from_torch),
        f"predictor_vs_pytorch{suffix}": _largest(from_predictor, from_torch),
    }
    return VerifyReport(len(raw), predictor.engine.name, base, differences, quantized)


def _int8(manifest: dict[str, Any]) -> bool:
    """Whether model.onnx is an int8 graph quantized from the bundle's fp32 weights (forgeml compress)."""
    quantization = (manifest.get("compression") or {}).get("quantization") or {}
    return quantization.get("mode") in ("dynamic", "static")


def _decoded(predictor: Predictor, outputs: np.ndarray) -> np.ndarray:
    decoded = predictor.pipeline.target_.decode(outputs)
    return (
        decoded.probabilities
        if decoded.probabilities is not None
        else decoded.values.astype(np.float64)[:, None]
    )


def _largest(left: np.ndarray, right: np.ndarray) -> float:
    return float(np.max(np.abs(left - right))) if left.size else 0.0


def request_rows(raw: RawData, start: int, stop: int) -> list[dict[str, Any]]:
    """Rows ``start:stop`` as JSON records: NaN -> null, images as nested lists."""
    records = raw.table.iloc[start:stop].astype(object).where(raw.table.iloc[start:stop].notna(), None)
    rows = [
        {key: (value.item() if isinstance(value, np.generic) else value) for key, value in record.items()}
        for record in records.to_dict(orient="records")
    ] or [{} for _ in range(stop - start)]
    if raw.images is not None:
        for row, image in zip(rows, raw.images[start:stop], strict=True):
            row["image"] = image.astype(np.float32).tolist()
    return rows


def _ask_server(base: str, raw: RawData, predictor: Predictor) -> np.ndarray:
    import httpx

    results: list[list[float]] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for start in range(0, len(raw), REQUEST_ROWS):
            stop = min(start + REQUEST_ROWS, len(raw))
            response = client.post("/v1/predict", json={"rows": request_rows(raw, start, stop)})
            results += _answers(base, response, predictor)
    return np.asarray(results, dtype=np.float64)


def _upload_files(base: str, files: ImageFiles, predictor: Predictor) -> np.ndarray:
    """Image files as a user sends them: multipart uploads to /v1/predict/image, decoded by the server."""
    import httpx

    results: list[list[float]] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for start in range(0, len(files), UPLOAD_FILES):
            parts = [
                ("file", (Path(path).name, Path(path).read_bytes()))
                for path in files.paths[start : start + UPLOAD_FILES]
            ]
            response = client.post("/v1/predict/image", files=parts)
            results += _answers(base, response, predictor)
    return np.asarray(results, dtype=np.float64)


def _answers(base: str, response: Any, predictor: Predictor) -> list[list[float]]:
    """Each prediction of a /v1/predict answer as probabilities in label order (or the value)."""
    if response.status_code != 200:
        raise VerifyError(f"{base}: the server answered {response.status_code}: {response.text[:500]}")
    labels = predictor.label_names
    return [
        [item["probabilities"][label] for label in labels]
        if "probabilities" in item
        else [float(item["prediction"])]
        for item in response.json()["predictions"]
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _server(bundle: Path, url: str | None) -> Iterator[str]:
    if url is not None:
        yield url.rstrip("/")
        return
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "forgeml",
        "serve",
        str(bundle),
        "--port",
        str(port),
        "--set",
        "max_rows=1000",
    ]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            wait_ready(base, process, log=log)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(
    base: str,
    process: subprocess.Popen[str] | None = None,
    *,
    log: IO[str] | None = None,
    timeout: float = 90.0,
) -> None:
    """Poll ``/health/ready`` until 200; raise VerifyError if the process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            error = ""
            if log is not None:
                log.seek(0)
                error = log.read()
            raise VerifyError(f"the server exited with code {process.returncode}: {error[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise VerifyError(f"{base} did not become ready within {math.ceil(timeout)} s.")
