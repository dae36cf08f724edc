"""ONNX export: the model plus every preprocessing step ONNX can express, in one graph.

:class:`InferenceModule` wraps a bundle's model so it takes *raw* inputs: numeric columns as
float64 with NaN for missing (imputed and standardized in the graph, in float64 exactly as
training did), categorical columns as vocabulary ids (expanded to one-hot in the graph when the
model was trained on one-hot), and images as raw pixels (divided by the fitted scale in the graph).
The steps left outside are the vocabulary lookup (category -> id) and, for text columns, the
fitted tokenizer (text -> ``text`` ids and ``text_mask``, both ``(N, C, L)`` int64, padded to the
trained length); bundle.json describes them under ``onnx.inputs`` so any ONNX runtime can
reproduce them (the tokenizer is Hugging Face ``tokenizers`` JSON in ``features.text.tokenizer_json``).

Boosted trees (``model.type: gbm``) take another route to the same inputs and output: see
:mod:`forgeml.bundle.trees_onnx`; an ensemble (``model.type: auto``) joins both routes in one graph:
see :mod:`forgeml.bundle.ensemble_onnx`.

Exporter: ``torch.onnx.export(..., dynamo=True)``, the torch.export-based exporter that PyTorch
made the default in 2.9 (the TorchScript-based one is deprecated and warns). It gives a clean
symbolic ``batch`` axis from ``torch.export.Dim`` and passes ``onnx.checker`` with ``full_check``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forgeml import atomic
from forgeml.bundle.encode import image_dtype, text_columns
from forgeml.bundle.ensemble_onnx import describe as describe_ensemble
from forgeml.bundle.ensemble_onnx import ensemble_model
from forgeml.bundle.inference import InferenceModule
from forgeml.bundle.manifest import MANIFEST, file_record, read_manifest, verify_files
from forgeml.bundle.predictive import Bundle, read_predictor_bundle
from forgeml.bundle.trees_onnx import describe as describe_trees
from forgeml.bundle.trees_onnx import trees_model
from forgeml.errors import BundleError
from forgeml.features import FeaturePipeline
from forgeml.models import GradientBoostedTrees
from forgeml.models.ensemble import WeightedEnsemble

logger = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
OUTPUT_NAME = "output"
OPSET = 20
TEXT_TOLERANCE = 1e-5  # largest accepted |ONNX Runtime - PyTorch| output of an exported text model
# Text architectures whose export (and ORT/PyTorch agreement) is verified, pretrained BERT-style encoders included.
EXPORTED_TEXT_MODELS = ("bag_of_embeddings", "text_cnn", "transformer", "pretrained (BERT-style encoders)")


def export(bundle_path: str | Path) -> Path:
    """Write ``model.onnx`` into the bundle and record it (sha256, inputs, preprocessing) in bundle.json.

    The bundle folder is replaced atomically: a failed export leaves the previous bundle untouched.
    Returns the path of the ONNX file.
    """
    bundle_path = Path(bundle_path)
    bundle = read_predictor_bundle(bundle_path)
    module = InferenceModule(bundle.model, bundle.pipeline).eval()
    trees = isinstance(bundle.model, GradientBoostedTrees)
    ensemble = isinstance(bundle.model, WeightedEnsemble)
    with tempfile.TemporaryDirectory(prefix="forgeml-onnx-") as folder:
        onnx_file = Path(folder) / ONNX_FILE
        if ensemble:  # every member and the weighted average in one graph
            import onnx

            onnx.save(ensemble_model(bundle.model, bundle.pipeline, OUTPUT_NAME, OPSET), str(onnx_file))
            check_onnx(onnx_file)
        elif trees:  # boosted trees: our preprocessing graph joined to the converted trees
            import onnx

            onnx.save(trees_model(bundle.model, bundle.pipeline, OUTPUT_NAME), str(onnx_file))
            check_onnx(onnx_file)
        elif text_columns(bundle.pipeline):
            _export_text_model(module, bundle, onnx_file)
        else:
            _torch_export(module, bundle.pipeline, onnx_file)
            check_onnx(onnx_file)
        manifest = read_manifest(bundle_path)
        manifest["files"].pop(ONNX_FILE, None)
        with atomic.replace_folder(bundle_path) as staging:
            for name in manifest["files"]:
                shutil.copy2(bundle_path / name, staging / name)
            shutil.copy2(onnx_file, staging / ONNX_FILE)
            manifest["files"][ONNX_FILE] = file_record(staging / ONNX_FILE)
            manifest["onnx"] = describe_graph(bundle.pipeline, int(manifest["model"]["output_dim"]))
            if trees:
                manifest["onnx"] = describe_trees(manifest["onnx"])
            if ensemble:
                manifest["onnx"] = describe_ensemble(manifest["onnx"], bundle.model)
            manifest["versions"] |= {name: version(name) for name in ("onnx", "onnxruntime")}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    verify_files(bundle_path, read_manifest(bundle_path))
    return bundle_path / ONNX_FILE


def _export_text_model(module: InferenceModule, bundle: Bundle, file: Path) -> None:
    """Export a text model, then check ONNX Runtime against PyTorch on token inputs of varied lengths.

    Refuses (BundleError) when the exporter fails or the two disagree by more than TEXT_TOLERANCE;
    the bundle then keeps serving with PyTorch, which every text model supports.
    """
    architecture = str(bundle.manifest["model"]["config"].get("type"))
    refuse = (
        f"{bundle.path}: cannot export this {architecture!r} text model to ONNX ({{reason}}). "
        f"Text models verified to export: {', '.join(EXPORTED_TEXT_MODELS)}. The bundle still serves "
        "as it is: `forgeml predict`, `forgeml serve` and forgeml.load() run it with PyTorch."
    )
    try:
        _torch_export(module, bundle.pipeline, file)
    except Exception as exc:  # the exporter raises many types; the user can only fall back to PyTorch
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise BundleError(refuse.format(reason=f"the exporter failed: {reason}")) from None
    check_onnx(file)
    difference = text_parity(module, bundle.pipeline, file)
    if not difference <= TEXT_TOLERANCE:
        raise BundleError(
            refuse.format(
                reason=f"ONNX Runtime and PyTorch differ by {difference:.3g} > {TEXT_TOLERANCE:g} on sample texts"
            )
        )


def text_parity(module: InferenceModule, pipeline: FeaturePipeline, file: Path, rows: int = 16) -> float:
    """Largest |ONNX Runtime - PyTorch| output on random tokens with varied lengths (empty texts included)."""
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(0)
    inputs = example_inputs(pipeline, rows)
    ids = inputs["text"]
    vocabulary = max(pipeline.text_.vocabulary_size, 1)
    lengths = torch.randint(0, ids.shape[-1] + 1, ids.shape[:2], generator=generator)  # (N, C)
    lengths[0] = 0  # a row of empty texts
    lengths[1] = ids.shape[-1]  # a row of full-length texts
    mask = (torch.arange(ids.shape[-1]) < lengths.unsqueeze(-1)).to(torch.int64)
    inputs["text"] = torch.randint(0, vocabulary, ids.shape, generator=generator) * mask
    inputs["text_mask"] = mask
    if "numeric" in inputs:
        inputs["numeric"] = torch.randn(inputs["numeric"].shape, generator=generator, dtype=torch.float64)
    with torch.inference_mode():
        expected = module(**inputs).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    got = session.run(None, {name: inputs[name].numpy() for name in names})[0]
    return float(np.abs(got - expected).max())


def example_inputs(pipeline: FeaturePipeline, rows: int = 2) -> dict[str, torch.Tensor]:
    """Zero inputs of every graph input (2 rows: the exporter specialises a batch of 1)."""
    inputs: dict[str, torch.Tensor] = {}
    if pipeline.numeric_.columns:
        inputs["numeric"] = torch.zeros(rows, len(pipeline.numeric_.columns), dtype=torch.float64)
    if pipeline.categorical_.columns:
        inputs["categorical"] = torch.zeros(rows, len(pipeline.categorical_.columns), dtype=torch.int64)
    if pipeline.image_ is not None:
        dtype = torch.uint8 if image_dtype(pipeline) is np.uint8 else torch.float32
        inputs["image"] = torch.zeros(rows, *pipeline.image_.shape_, dtype=dtype)
    columns = text_columns(pipeline)
    if columns:
        shape = (rows, len(columns), pipeline.text_.length)
        inputs["text"] = torch.zeros(shape, dtype=torch.int64)
        inputs["text_mask"] = torch.zeros(shape, dtype=torch.int64)
    return inputs


def _torch_export(module: InferenceModule, pipeline: FeaturePipeline, file: Path) -> None:
    dynamo_export(module, example_inputs(pipeline), OUTPUT_NAME, OPSET).save(str(file), external_data=False)


def dynamo_export(
    module: torch.nn.Module, inputs: dict[str, torch.Tensor], output_name: str, opset: int
) -> Any:
    """``torch.onnx.export(dynamo=True)`` of ``module(**inputs)`` with a dynamic batch, exporter noise muted.

    The one way forgeml turns a network into ONNX (single models and the ensemble head alike).
    """
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    # The exporter logs every torchvision op it skips and onnxscript's constant folding warns about
    # folds it could not make; nothing users can act on.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation/FutureWarnings say nothing to users
        try:
            program = torch.onnx.export(
                module,
                args=(),
                kwargs=inputs,
                dynamo=True,
                opset_version=opset,
                input_names=list(inputs),
                output_names=[output_name],
                dynamic_shapes={name: {0: batch} for name in inputs},
                optimize=True,
                verbose=False,
            )
        finally:
            for log, level in zip(loggers, levels, strict=True):
                log.setLevel(level)
    assert program is not None
    return program


def check_onnx(file: Path) -> None:
    """Pass ``onnx.checker`` (full check) and keep every weight inside the file (no external data)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        model = onnx.load(str(file), load_external_data=False)
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError, DecodeError, ... for a malformed file
        raise BundleError(f"{file}: not a valid ONNX model ({type(exc).__name__}: {exc}).") from None
    if any(uses_external_data(tensor) for tensor in model.graph.initializer):
        raise BundleError(
            f"{file}: the ONNX model points to external data files; forgeml only serves self-contained graphs."
        )


def describe_graph(pipeline: FeaturePipeline, output_dim: int) -> dict[str, Any]:
    """What bundle.json says about model.onnx: its inputs, what the host must do first, and the output."""
    inputs: list[dict[str, Any]] = []
    if pipeline.numeric_.columns:
        inputs.append(
            {
                "name": "numeric",
                "dtype": "float64",
                "shape": ["batch", len(pipeline.numeric_.columns)],
                "columns": list(pipeline.numeric_.columns),
                "host_steps": "the raw values in this column order; NaN for a missing value "
                "(imputed with features.numeric.fill_values and standardized inside the graph)",
            }
        )
    if pipeline.categorical_.columns:
        inputs.append(
            {
                "name": "categorical",
                "dtype": "int64",
                "shape": ["batch", len(pipeline.categorical_.columns)],
                "columns": list(pipeline.categorical_.columns),
                "host_steps": "each value's position in features.categorical.vocabularies[column]; "
                "whole numbers written without '.0'; 0 (the unknown bucket) for unseen or missing values",
                "in_graph": "one-hot expansion"
                if pipeline.categorical_.encoding == "onehot"
                else "embedding",
            }
        )
    if pipeline.image_ is not None:
        files = image_dtype(pipeline) is np.uint8
        inputs.append(
            {
                "name": "image",
                "dtype": "uint8" if files else "float32",
                "shape": ["batch", *pipeline.image_.shape_],
                "host_steps": "each file decoded as features.image.decode says (EXIF orientation, RGB or "
                "grey, resized to the model size with its resize policy), pixels 0..255 (N, C, H, W); "
                "converted to float and divided by features.image.scale inside the graph"
                if files
                else "raw pixel values (N, C, H, W) on the training data's scale "
                "(divided by features.image.scale inside the graph)",
            }
        )
    columns = text_columns(pipeline)
    if columns:
        shape = ["batch", len(columns), pipeline.text_.length]
        steps = (
            "each text column tokenized with features.text.tokenizer_json (Hugging Face tokenizers: "
            "truncated and padded to the trained length); missing text is the empty string"
        )
        inputs += [
            {
                "name": "text",
                "dtype": "int64",
                "shape": shape,
                "columns": columns,
                "host_steps": f"{steps}; the token ids",
            },
            {
                "name": "text_mask",
                "dtype": "int64",
                "shape": shape,
                "columns": columns,
                "host_steps": f"{steps}; its attention mask (1 = token, 0 = padding)",
            },
        ]
    kind = pipeline.task.kind
    decode = {
        "classification": "softmax over the classes, in task.labels order",
        "binary": "sigmoid of the single logit = probability of task.labels[1]",
        "regression": "value * features.target.std + features.target.mean",
    }[kind]
    return {
        "file": ONNX_FILE,
        "opset": OPSET,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "inputs": inputs,
        "outputs": [
            {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["batch", output_dim], "decode": decode}
        ],
    }
