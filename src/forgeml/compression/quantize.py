"""Quantization of the exported ONNX graph (what the server runs), and fp16 weight storage.

ONNX Runtime's own tools (``onnxruntime.quantization``) quantize the graph that ONNX Runtime then
serves, so what is measured is what is deployed; PyTorch's export-based quantization (PT2E) would
produce a PyTorch model that still has to survive ONNX export, and its x86 int8 kernels are not
the ones the server uses.

* ``dynamic``: int8 weights of the dense layers (MatMul/Gemm); activations are quantized per batch
  at run time, so no calibration data is needed. Convolutions stay fp32.
* ``static``: int8 weights (per output channel) of convolutions and dense layers, uint8 activations
  with ranges calibrated (min/max) on training rows. QOperator format (QLinearConv, QGemm): fewer
  nodes and a smaller file than the QDQ format.
* ``int8``: ``static`` when the graph has convolutions (dynamic would leave most of a CNN in fp32),
  ``dynamic`` otherwise (no calibration error for dense-only models).
* ``fp16``: weights stored as float16 and cast back to float32 when the session loads (ONNX Runtime
  folds the casts), half the file at fp32 speed; the PyTorch weights are rounded to fp16 too, so
  both engines compute with the same numbers.

:func:`minify` drops what the exporter writes for debugging (source locations on every node,
intermediate shapes) and shortens internal tensor names; it runs on every variant, the fp32
baseline included, so file sizes compare like with like.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from forgeml.bundle.encode import Feeds
from forgeml.errors import BundleError

logger = logging.getLogger(__name__)
CALIBRATION_BATCH = 64
STATIC_OPS = ["Conv", "MatMul", "Gemm"]
DYNAMIC_OPS = ["MatMul", "Gemm"]
FP16_MIN_ELEMENTS = 16  # smaller tensors save nothing worth a Cast node


def resolve_mode(mode: str, model: onnx.ModelProto) -> str:
    """``int8`` -> ``static`` for graphs with convolutions, ``dynamic`` otherwise; others unchanged."""
    if mode != "int8":
        return mode
    return "static" if any(node.op_type == "Conv" for node in model.graph.node) else "dynamic"


def quantize_file(source: Path, target: Path, mode: str, calibration: Feeds | None) -> dict[str, object]:
    """Quantize ``source`` into ``target`` (``dynamic`` or ``static``); returns what bundle.json records."""
    try:
        with _quiet(), tempfile.TemporaryDirectory(prefix="forgeml-quant-") as folder:
            _quantize(_preprocessed(source, Path(folder) / "prepared.onnx"), target, mode, calibration)
    except Exception as exc:  # the quantizer raises many types for graphs it cannot handle
        raise BundleError(
            f"ONNX Runtime could not quantize this model ({mode}: {type(exc).__name__}: {exc}). "
            "Use --quantize fp16, or --quantize dynamic for models without convolutions."
        ) from None
    if mode == "dynamic":
        return {
            "mode": "dynamic",
            "weights": "int8, per tensor",
            "activations": "uint8, quantized per batch at run time",
            "ops": DYNAMIC_OPS,
        }
    assert calibration is not None
    return {
        "mode": "static",
        "weights": "int8, per output channel",
        "activations": "uint8, min/max calibrated",
        "ops": STATIC_OPS,
        "calibration_rows": len(next(iter(calibration.values()))),
        "format": "QOperator",
    }


def _quantize(source: Path, target: Path, mode: str, calibration: Feeds | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if mode == "dynamic":
        quantize_dynamic(source, target, op_types_to_quantize=DYNAMIC_OPS, weight_type=QuantType.QInt8)
        return
    assert calibration is not None
    quantize_static(
        source,
        target,
        CalibrationFeeds(calibration),
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=STATIC_OPS,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    """The quantizer logs advice on the root logger; our users cannot act on it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class CalibrationFeeds:
    """ONNX Runtime's CalibrationDataReader over graph inputs, in batches of CALIBRATION_BATCH rows."""

    def __init__(self, feeds: Feeds) -> None:
        rows = len(next(iter(feeds.values())))
        self._batches = iter(
            [
                {name: array[start : start + CALIBRATION_BATCH] for name, array in feeds.items()}
                for start in range(0, rows, CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> Feeds | None:
        return next(self._batches, None)

    def __iter__(self):  # iteration: the reader protocol of newer onnxruntime versions
        return self

    def __next__(self) -> Feeds:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch


def _preprocessed(source: Path, target: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, fusions); the source when it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(target))
    except Exception as exc:  # optional step: quantization works without it, a little less well
        logger.info("quantization pre-processing skipped: %s", exc)
        return source
    return target


def cast_weights_fp16(model: onnx.ModelProto, names: set[str]) -> int:
    """Round the float32 initializers named in ``names`` to float16; store the larger ones as float16.

    Rounding is IEEE round-to-nearest-even, as torch's ``.half()`` does to the bundle's weights,
    so both engines compute with the same numbers. A stored float16 tensor is followed by a Cast
    to float32 (ONNX Runtime folds it when the session loads). Returns how many were stored so.
    """
    graph = model.graph
    converted = 0
    casts = []
    for initializer in graph.initializer:
        if initializer.name not in names or initializer.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(initializer)
        half = values.astype(np.float16)
        original = initializer.name
        if values.size < FP16_MIN_ELEMENTS:
            initializer.CopyFrom(numpy_helper.from_array(half.astype(np.float32), original))
            continue
        initializer.CopyFrom(numpy_helper.from_array(half, f"{original}_fp16"))
        casts.append(helper.make_node("Cast", [f"{original}_fp16"], [original], to=onnx.TensorProto.FLOAT))
        converted += 1
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])  # casts first: the graph stays topologically sorted
    return converted


def minify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop debugging metadata and value_info, shorten internal names (graph inputs/outputs keep theirs).

    Also drops the exporter's metadata on the graph and its inputs (torch.export's signature, ~800
    bytes) and the opset imports no node uses (the quantizer declares nine domains): on a small
    model these were a quarter of the int8 file.
    """
    graph = model.graph
    fixed = {item.name for item in graph.input} | {item.name for item in graph.output}
    short: dict[str, str] = {}

    # Subgraphs (If, Loop) may read outer names implicitly; their graphs keep every name.
    nested = any(
        attribute.type == onnx.AttributeProto.GRAPH for node in graph.node for attribute in node.attribute
    )

    def rename(name: str) -> str:
        if nested or not name or name in fixed:
            return name
        return short.setdefault(name, f"t{len(short)}")

    for initializer in graph.initializer:
        initializer.name = rename(initializer.name)
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string, node.name = "", ""
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
    for value in [*graph.input, *graph.output]:
        del value.metadata_props[:]
        value.doc_string = ""
    for initializer in graph.initializer:
        del initializer.metadata_props[:]
        initializer.doc_string = ""
    del graph.value_info[:]
    del graph.metadata_props[:]
    del model.metadata_props[:]
    model.doc_string = graph.doc_string = ""
    graph.name = "g"  # the checker requires a name
    _drop_unused_opsets(model, nested)
    return model


def _drop_unused_opsets(model: onnx.ModelProto, nested: bool) -> None:
    """Keep the default domain and the domains some node uses (all of them when subgraphs hide nodes)."""
    if nested:
        return
    used = {node.domain for node in model.graph.node} | {""}
    kept = [opset for opset in model.opset_import if opset.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers (weights, scales, constants) as stored."""
    return sum(numpy_helper.to_array(item).nbytes for item in model.graph.initializer)
