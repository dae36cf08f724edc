"""Write and read bundles: a folder holding everything needed to predict, checked on every load.

``bundle.json`` records the format version, task, input schema, fitted feature state, the model's
architecture, metrics, library versions and the sha256 of every other file. Weights are
safetensors. Loading never unpickles and never runs code from the bundle; a file that is changed,
missing or added fails the check before any weight reaches a model.
"""

from __future__ import annotations

import hashlib
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
from forgeml.config import ModelConfig
from forgeml.errors import BundleError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.models import build_model, exportable

FORMAT = "forgeml-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
WEIGHTS = "weights.safetensors"
# Formats that unpickle or run code when loaded: never read from a bundle, whatever their checksum.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".py", ".joblib")
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
        # exportable(): LoRA adapters merged into plain weights, so serving needs neither peft nor the hub.
        weights = {
            name: tensor.detach().contiguous() for name, tensor in exportable(model).state_dict().items()
        }
        safetensors.torch.save_file(weights, staging / WEIGHTS, metadata={"format": FORMAT})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
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
            "versions": {
                name: version(name) for name in ("forgeml", "torch", "numpy", "pandas", "safetensors")
            }
            | {"python": platform.python_version()},
            "files": {WEIGHTS: _file_record(staging / WEIGHTS)},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def read_bundle(path: str | Path) -> Bundle:
    """Load and verify a bundle; raise BundleError naming the file and the problem."""
    path = Path(path)
    manifest = read_manifest(path)
    verify_files(path, manifest)
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


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"{path}: not a bundle ({MANIFEST} is missing). Pass the bundle folder, e.g. runs/<name>/bundle."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{manifest_path}: not a forgeml bundle manifest.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: bundle format version {manifest.get('format_version')!r}; this forgeml reads version {FORMAT_VERSION}. Re-export the bundle."
        )
    return manifest


def verify_files(path: Path, manifest: dict[str, Any], *, weights: str = WEIGHTS) -> None:
    """Every listed file present with its recorded sha256, no pickle or code file, and no file not listed.

    Shared by the tabular bundle and the LM bundle (whose weights file is ``weights``); a pickle or
    code file is refused even with a matching checksum, because loading it could run code.
    """
    listed = manifest.get("files")
    if not isinstance(listed, dict) or weights not in listed:
        raise BundleError(f"{path / MANIFEST}: the manifest lists no weights file ({weights}).")
    for name, record in listed.items():
        file = path / name
        if Path(name).name != name or not file.is_file() or file.is_symlink():
            raise BundleError(f"{path}: {name} is missing (or is not a plain file inside the bundle).")
        if name.endswith(UNSAFE_SUFFIXES):
            raise BundleError(
                f"{file}: pickle or code files are never loaded from a bundle. Re-export the bundle "
                "(forgeml writes weights as safetensors only)."
            )
        if _sha256(file) != record.get("sha256"):
            raise BundleError(
                f"{file}: checksum mismatch; the file was changed after the bundle was written. Re-export the bundle from its run."
            )
    extra = sorted(
        entry.name for entry in path.iterdir() if entry.name not in listed and entry.name != MANIFEST
    )
    if extra:
        raise BundleError(
            f"{path}: unexpected file(s) {', '.join(extra)} not recorded in {MANIFEST}. Remove them or re-export the bundle."
        )


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


def _file_record(file: Path) -> dict[str, Any]:
    return {"sha256": _sha256(file), "bytes": file.stat().st_size}


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
