"""Inference engines: ONNX Runtime when the bundle has ``model.onnx``, PyTorch eager otherwise.

For boosted trees the second engine is the LightGBM booster (the model's forward is its ``predict``).

Both take the same raw graph inputs (see :mod:`forgeml.bundle.encode`) and return the model's raw
outputs ``(N, output_dim)`` float32, so everything around them is shared.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from forgeml.bundle.encode import Feeds
from forgeml.bundle.onnx_export import ONNX_FILE, InferenceModule, check_onnx
from forgeml.bundle.predictive import Bundle
from forgeml.errors import BundleError

TORCH_BATCH = 1024
ONNX_TYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int64)": np.dtype(np.int64),
}


class Engine(Protocol):
    name: str

    def run(self, feeds: Feeds) -> np.ndarray: ...


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxEngine:
    """An ONNX Runtime session tuned for CPU serving: sequential graph, intra-op threads = cores given."""

    name = "onnxruntime"

    def __init__(self, file: Path, expected_sha256: str, *, threads: int = 0, spinning: bool = True) -> None:
        import onnxruntime as ort

        data = file.read_bytes()  # hash what is loaded, not the file a second time (no swap in between)
        if hashlib.sha256(data).hexdigest() != expected_sha256:
            raise BundleError(f"{file}: checksum mismatch; re-export the bundle.")
        check_onnx(file)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads cut latency for a lone caller but steal CPU from the server's event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]
        # Image bundles exported before uint8 inputs take float32 pixels: feeds are cast to what the
        # graph declares, so those bundles keep working without a re-export (a no-op otherwise).
        self.input_types = {item.name: ONNX_TYPES.get(item.type) for item in self.session.get_inputs()}

    def run(self, feeds: Feeds) -> np.ndarray:
        return self.session.run(None, {name: self._typed(name, feeds[name]) for name in self.input_names})[0]

    def _typed(self, name: str, values: np.ndarray) -> np.ndarray:
        wanted = self.input_types[name]
        return values if wanted is None or values.dtype == wanted else values.astype(wanted)


class TorchEngine:
    """The PyTorch model behind the same in-graph preprocessing, in eager mode."""

    name = "torch"

    def __init__(self, bundle: Bundle) -> None:
        self.module = InferenceModule(bundle.model, bundle.pipeline).eval()
        # boosted trees run as the LightGBM booster itself behind the same module
        self.name = getattr(bundle.model, "engine_name", TorchEngine.name)

    @torch.inference_mode()
    def run(self, feeds: Feeds) -> np.ndarray:
        names = self.module.input_names
        total = len(feeds[names[0]])
        outputs = [
            self.module(
                **{name: torch.from_numpy(feeds[name][start : start + TORCH_BATCH]) for name in names}
            )
            for start in range(0, total, TORCH_BATCH)
        ]
        return torch.cat(outputs).numpy() if outputs else np.zeros((0, 1), dtype=np.float32)


def make_engine(bundle: Bundle, kind: str = "auto", *, threads: int = 0, spinning: bool = True) -> Engine:
    """``auto``: ONNX Runtime if the bundle lists model.onnx, else PyTorch."""
    record = bundle.manifest.get("files", {}).get(ONNX_FILE)
    if kind == "onnx" or (kind == "auto" and record is not None):
        if record is None:
            raise BundleError(f"{bundle.path}: no {ONNX_FILE}; run `forgeml export` first.")
        return OnnxEngine(bundle.path / ONNX_FILE, record["sha256"], threads=threads, spinning=spinning)
    return TorchEngine(bundle)
