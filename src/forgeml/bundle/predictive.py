"""Bundles of kind ``predictor``: a folder holding everything needed to predict, checked on every load.

``bundle.json`` (:mod:`forgeml.bundle.manifest`) records the task, input schema, fitted feature
state, the model's architecture, metrics, library versions and the sha256 of every other file.
Weights are safetensors; boosted trees (``model.type: gbm``) are LightGBM's own text format in
``model.txt`` instead. Loading never unpickles and never runs code from the bundle; a file that is
changed, missing or added fails the check before any weight reaches a model.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from forgeml import atomic
from forgeml.bundle.manifest import (
    FORMAT,
    MANIFEST,
    file_record,
    header,
    model_file,
    read_manifest,
    verify_files,
)
from forgeml.config import PREDICTOR, ModelConfig
from forgeml.errors import BundleError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.models import GradientBoostedTrees, build_model, exportable

WEIGHTS = "weights.safetensors"
TREES = "model.txt"  # a gbm bundle's booster, in LightGBM's text format (readable, no pickle; manifest.model_file)
_MODEL_CONFIG = TypeAdapter(ModelConfig)


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: the model in eval mode, its fitted features and the manifest as read."""

    model: nn.Module
    pipeline: FeaturePipeline
    manifest: dict[str, Any]
    path: Path


def write_bundle(
    path: Path,
    model: nn.Module,
    pipeline: FeaturePipeline,
    model_config: ModelConfig,
    *,
    target: str | None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a complete bundle to ``path``, replacing any bundle there only once it is fully written."""
    with atomic.replace_folder(path) as staging:
        weights_name = _save_model(model, staging)
        manifest = header(PREDICTOR) | {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task": {"kind": pipeline.task.kind, "labels": list(pipeline.task.labels), "target": target},
            "input_schema": input_schema(pipeline),
            "features": pipeline.to_json(),
            "model": {
                "config": model_config.model_dump(mode="json"),
                "spec": asdict(pipeline.input_spec),
                "output_dim": pipeline.target_.output_dim,
            },
            "metrics": metrics or {},
            "versions": {name: version(name) for name in _LIBRARIES[weights_name]}
            | {"python": platform.python_version()},
            "files": {weights_name: file_record(staging / weights_name)},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


_LIBRARIES = {
    WEIGHTS: ("forgeml", "torch", "numpy", "pandas", "safetensors"),
    TREES: ("forgeml", "lightgbm", "numpy", "pandas"),
}


def _save_model(model: nn.Module, folder: Path) -> str:
    """Write the model's file into ``folder``: the booster as text, or the network's weights; return its name."""
    if isinstance(model, GradientBoostedTrees):
        (folder / TREES).write_text(model.to_text(), encoding="utf-8")
        return TREES
    # exportable(): LoRA adapters merged into plain weights, so serving needs neither peft nor the hub.
    weights = {name: tensor.detach().contiguous() for name, tensor in exportable(model).state_dict().items()}
    safetensors.torch.save_file(weights, folder / WEIGHTS, metadata={"format": FORMAT})
    return WEIGHTS


def read_predictor_bundle(path: str | Path) -> Bundle:
    """Load and verify a predictor bundle; raise BundleError naming the file and the problem."""
    path = Path(path)
    manifest = read_manifest(path, kind=PREDICTOR)
    verify_files(path, manifest, weights=model_file(manifest))
    if model_file(manifest) == TREES:
        return _read_trees(path, manifest)
    try:
        pipeline = FeaturePipeline.from_json(manifest["features"])
        model_config = _MODEL_CONFIG.validate_python(manifest["model"]["config"])
        spec = InputSpec(**manifest["model"]["spec"])
        # pretrained_weights=False: a pretrained backbone is rebuilt from the config stored in the
        # spec, with no download and no LoRA layers; the merged weights are loaded below.
        model = build_model(
            model_config, spec, int(manifest["model"]["output_dim"]), pretrained_weights=False
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BundleError(f"{path / MANIFEST}: malformed manifest ({type(exc).__name__}: {exc}).") from None
    _load_weights(model, path / WEIGHTS)
    model.eval()
    return Bundle(model=model, pipeline=pipeline, manifest=manifest, path=path)


def _read_trees(path: Path, manifest: dict[str, Any]) -> Bundle:
    """A gbm bundle: the booster rebuilt from its checked ``model.txt``."""
    try:
        pipeline = FeaturePipeline.from_json(manifest["features"])
        output_dim = int(manifest["model"]["output_dim"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BundleError(f"{path / MANIFEST}: malformed manifest ({type(exc).__name__}: {exc}).") from None
    import lightgbm

    try:
        model = GradientBoostedTrees.from_text(
            (path / TREES).read_text(encoding="utf-8"),
            numeric=len(pipeline.numeric_.columns),
            categorical=len(pipeline.categorical_.columns),
            output_dim=output_dim,
        )
    except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path / TREES}: not a LightGBM model ({exc}).") from None
    return Bundle(model=model.eval(), pipeline=pipeline, manifest=manifest, path=path)


def input_schema(pipeline: FeaturePipeline) -> dict[str, Any]:
    """The request schema: each input column with its kind (and known categories), or the image shape."""
    columns = [{"name": name, "kind": "numeric"} for name in pipeline.numeric_.columns]
    columns += [
        {"name": name, "kind": "categorical", "categories": pipeline.categorical_.vocabularies_[name][1:]}
        for name in pipeline.categorical_.columns
    ]
    text = getattr(pipeline, "text_", None)
    columns += [{"name": name, "kind": "text"} for name in (text.columns if text is not None else [])]
    image = None if pipeline.image_ is None else {"shape": list(pipeline.image_.shape_)}
    return {"columns": columns, "image": image}


def _load_weights(model: nn.Module, file: Path) -> None:
    try:
        weights = safetensors.torch.load_file(file)
    except Exception as exc:  # safetensors raises its own SafetensorError for any malformed header
        raise BundleError(f"{file}: unreadable safetensors file ({exc}).") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise BundleError(
            f"{file}: weights do not fit the architecture in the manifest ({str(exc).splitlines()[0]})."
        ) from None
    if not all(torch.isfinite(tensor).all() for tensor in weights.values() if tensor.is_floating_point()):
        raise BundleError(f"{file}: weights contain NaN or infinite values.")
