"""Each compressed model becomes a normal bundle: weights, model.onnx, bundle.json with checksums.

A variant is written with the deploy stage's own ``write_bundle`` and ``export`` (so serve,
predict and verify need nothing new), then its ``model.onnx`` is quantized or cast and minified.
``bundle.json`` gains a ``compression`` record (the steps, the widths, the quantization settings).

What a quantized bundle holds: ``model.onnx`` is the int8 graph, and it is what every engine
"auto" runs (server, ``forgeml predict``, ``forgeml.load``). ``weights.safetensors`` keeps the
fp32 weights the graph was quantized from, so the PyTorch fallback (``engine="torch"``) is the
unquantized model and ``forgeml verify`` reports the gap between the two as quantization error
rather than train/serve skew. An fp16 bundle stores fp16 weights in both files and has no such gap.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from torch import nn

from forgeml import atomic
from forgeml.bundle.encode import Feeds
from forgeml.bundle.manifest import MANIFEST, read_manifest, verify_files
from forgeml.bundle.onnx_export import ONNX_FILE, check_onnx, export
from forgeml.bundle.predictive import write_bundle
from forgeml.compression.quantize import cast_weights_fp16, minify, quantize_file, resolve_mode
from forgeml.config import ModelConfig
from forgeml.features import FeaturePipeline


@dataclass(frozen=True)
class Candidate:
    """A model to bundle as one variant; ``quantize`` is applied to its exported graph."""

    name: str
    model: nn.Module
    model_config: ModelConfig
    steps: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    quantize: str | None = None

    def then_quantized(self, mode: str) -> Candidate:
        name = mode if not self.steps else f"{self.name}+{mode}"
        return Candidate(name, self.model, self.model_config, (*self.steps, mode), self.details, mode)


def write_variant(
    folder: Path,
    candidate: Candidate,
    pipeline: FeaturePipeline,
    *,
    target: str | None,
    calibration: Feeds | None,
    source: dict[str, Any],
    exported: dict[nn.Module, tuple[bytes, dict[str, Any]]],
) -> Path:
    """Write ``candidate`` as a bundle in ``folder`` (replaced whole; a failure leaves no partial bundle).

    ``exported`` caches each model's exported graph (and its bundle.json ``onnx`` entry) by model, so a quantized variant reuses its source's export (the exporter takes seconds per call).
    """
    model = candidate.model
    if candidate.quantize == "fp16":
        model = copy.deepcopy(model).half()  # weights.safetensors in fp16; the graph gets the same rounding
    with atomic.replace_folder(folder) as staging:
        write_bundle(staging, model, pipeline, candidate.model_config, target=target)
        cached = exported.get(candidate.model)
        if cached is None:
            export(staging)
            manifest = read_manifest(staging)
            if candidate.quantize != "fp16":  # an fp16 export has rounded weights: not the model's graph
                exported[candidate.model] = ((staging / ONNX_FILE).read_bytes(), _onnx_entries(manifest))
        else:
            (staging / ONNX_FILE).write_bytes(cached[0])
            manifest = read_manifest(staging) | cached[1]
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        graph, quantization = _transform(staging / ONNX_FILE, candidate, calibration)
        onnx.save(minify(graph), str(staging / ONNX_FILE))
        check_onnx(staging / ONNX_FILE)
        manifest = read_manifest(staging)
        manifest["files"][ONNX_FILE] = file_record(staging / ONNX_FILE)
        manifest["compression"] = {
            "variant": candidate.name,
            "steps": list(candidate.steps),
            "source": source,
            **candidate.details,
            "quantization": quantization,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        verify_files(staging, manifest)
    return folder


def _onnx_entries(manifest: dict[str, Any]) -> dict[str, Any]:
    """What ``export`` adds to bundle.json besides the file record: the graph description, versions."""
    return {"onnx": manifest["onnx"], "versions": manifest["versions"]}


def _transform(
    file: Path, candidate: Candidate, calibration: Feeds | None
) -> tuple[onnx.ModelProto, dict[str, Any] | None]:
    """The exported graph quantized (int8 modes) or with fp16 weights, and what bundle.json records."""
    graph = onnx.load(str(file))
    if candidate.quantize is None:
        return graph, None
    if candidate.quantize == "fp16":
        names = {f"model.{name}" for name in candidate.model.state_dict()}
        converted = cast_weights_fp16(graph, names)  # rounds exactly as torch's .half() did
        return graph, {
            "mode": "fp16",
            "weights": "float16, cast to float32 when the session loads",
            "tensors": converted,
        }
    mode = resolve_mode(candidate.quantize, graph)
    with tempfile.TemporaryDirectory(prefix="forgeml-quant-") as folder:
        quantized = Path(folder) / ONNX_FILE
        record = quantize_file(file, quantized, mode, calibration)
        return onnx.load(str(quantized)), record | {"requested": candidate.quantize}


def update_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    """Record the variant's test metrics in its bundle.json (the manifest carries no checksum of itself)."""
    manifest = read_manifest(folder)
    manifest["metrics"] = manifest.get("metrics", {}) | metrics
    atomic.write_text(folder / MANIFEST, json.dumps(manifest, indent=2))


def file_record(file: Path) -> dict[str, Any]:
    """What bundle.json lists for a file: its sha256 and size."""
    data = file.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
