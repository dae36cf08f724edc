"""Bundles of kind ``predictor``: a folder holding everything needed to predict, checked on every load.

``bundle.json`` (:mod:`forgeml.bundle.manifest`) records the task, input schema, fitted feature
state, the model's architecture, metrics, library versions and the sha256 of every other file.
Weights are safetensors; boosted trees (``model.type: gbm``) are LightGBM's own text format in
``model.txt`` instead. An ensemble (``model.type: auto``) keeps each trained candidate in a file named after it
(``gbm.txt``, ``mlp.safetensors``, ...), with its weight (0: trained, scored on the leaderboard, never
run), config and (networks) own features in ``model.members``, and the leaderboard in ``model.leaderboard``. Loading never unpickles and never runs code from the bundle; a file that is
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
from pydantic import ValidationError
from torch import nn

from forgeml import atomic
from forgeml.bundle.consistency import check_consistent
from forgeml.bundle.inference import NetworkMember
from forgeml.bundle.manifest import (
    FORMAT,
    MANIFEST,
    file_record,
    header,
    model_file,
    read_manifest,
    verify_files,
)
from forgeml.config import MODEL_CONFIG, PREDICTOR, ModelConfig
from forgeml.errors import BundleError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.models import GradientBoostedTrees, build_model, exportable
from forgeml.models.ensemble import WeightedEnsemble

WEIGHTS = "weights.safetensors"
TREES = "model.txt"  # a gbm bundle's booster, in LightGBM's text format (readable, no pickle; manifest.model_file)


def stored_model_config(stored: dict[str, Any]) -> ModelConfig:
    """The model config a bundle stored. An MLP's without ``submodels`` was written before that key
    existed, when every MLP was one network; ``auto`` would now make a small table's MLP four."""
    if stored.get("type") == "mlp" and "submodels" not in stored:
        stored = {**stored, "submodels": 1}
    return MODEL_CONFIG.validate_python(stored)


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
        names = _save_model(model, staging)
        manifest = header(PREDICTOR) | {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task": {"kind": pipeline.task.kind, "labels": list(pipeline.task.labels), "target": target},
            "input_schema": input_schema(pipeline),
            "features": pipeline.to_json(),
            "model": {
                "config": model_config.model_dump(mode="json"),
                "spec": asdict(pipeline.input_spec),
                "output_dim": pipeline.target_.output_dim,
            }
            | (_ensemble_record(model) if isinstance(model, WeightedEnsemble) else {}),
            "metrics": metrics or {},
            "versions": {
                library: version(library) for name in names for library in _LIBRARIES[Path(name).suffix]
            }
            | {"python": platform.python_version()},
            "files": {name: file_record(staging / name) for name in names},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


# libraries recorded in the manifest, by the suffix of a model file
_LIBRARIES = {
    ".safetensors": ("forgeml", "torch", "numpy", "pandas", "safetensors"),
    ".txt": ("forgeml", "lightgbm", "numpy", "pandas"),
}


def _save_model(model: nn.Module, folder: Path, stem: str = "") -> list[str]:
    """Write the model's files into ``folder`` and return their names: a booster as LightGBM text,
    a network's weights as safetensors, an ensemble's members each under its candidate's name."""
    if isinstance(model, WeightedEnsemble):
        return [
            name
            for stem, member, _ in model.candidates()
            for name in _save_model(
                member.network if isinstance(member, NetworkMember) else member, folder, stem
            )
        ]
    if isinstance(model, GradientBoostedTrees):
        name = f"{stem}.txt" if stem else TREES
        (folder / name).write_text(model.to_text(), encoding="utf-8")
        return [name]
    # exportable(): LoRA adapters merged into plain weights, so serving needs neither peft nor the hub.
    weights = {name: tensor.detach().contiguous() for name, tensor in exportable(model).state_dict().items()}
    name = f"{stem}.safetensors" if stem else WEIGHTS
    safetensors.torch.save_file(weights, folder / name, metadata={"format": FORMAT})
    return [name]


def _ensemble_record(model: WeightedEnsemble) -> dict[str, Any]:
    """bundle.json's account of an ensemble: each member's config, file, weight and (networks) own features."""
    members = []
    for name, member, weight in model.candidates():
        network = isinstance(member, NetworkMember)
        record: dict[str, Any] = {
            "name": name,
            "weight": weight,
            "file": f"{name}.{'safetensors' if network else 'txt'}",
        }
        if network:
            record |= {
                "config": member.config.model_dump(mode="json"),
                "features": member.pipeline.to_json(),
                "spec": asdict(member.pipeline.input_spec),
            }
        else:
            record["config"] = {"type": "gbm"}
        members.append(record)
    return {"members": members, "leaderboard": model.leaderboard}


def read_predictor_bundle(path: str | Path) -> Bundle:
    """Load and verify a predictor bundle; raise BundleError naming the file and the problem."""
    path = Path(path)
    manifest = read_manifest(path, kind=PREDICTOR)
    verify_files(path, manifest, weights=model_file(manifest))
    check_consistent(path, manifest)
    if manifest.get("model", {}).get("config", {}).get("type") == "auto":
        return _read_ensemble(path, manifest)
    if model_file(manifest) == TREES:
        return _read_trees(path, manifest)
    try:
        pipeline = FeaturePipeline.from_json(manifest["features"])
        model_config = stored_model_config(manifest["model"]["config"])
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
    model = _booster(path / TREES, pipeline, output_dim)
    return Bundle(model=model.eval(), pipeline=pipeline, manifest=manifest, path=path)


def _booster(file: Path, pipeline: FeaturePipeline, output_dim: int) -> GradientBoostedTrees:
    import lightgbm

    try:
        return GradientBoostedTrees.from_text(
            file.read_text(encoding="utf-8"),
            numeric=len(pipeline.numeric_.columns),
            categorical=len(pipeline.categorical_.columns),
            output_dim=output_dim,
        )
    except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: not a LightGBM model ({exc}).") from None


def _read_ensemble(path: Path, manifest: dict[str, Any]) -> Bundle:
    """An auto bundle: each member rebuilt from its checked file, then their weighted ensemble."""
    try:
        pipeline = FeaturePipeline.from_json(manifest["features"])
        output_dim = int(manifest["model"]["output_dim"])
        records = list(manifest["model"]["members"])
        members = {str(record["name"]): _member(path, record, pipeline, output_dim) for record in records}
        weights = {str(record["name"]): float(record["weight"]) for record in records}
        kept = [name for name, weight in weights.items() if weight > 0]
        model = WeightedEnsemble(
            [members[name] for name in kept],
            [weights[name] for name in kept],
            names=kept,
            task=pipeline.task.kind,
            leaderboard=list(manifest["model"].get("leaderboard", [])),
        )
        model.dropped = {name: member for name, member in members.items() if name not in kept}
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BundleError(f"{path / MANIFEST}: malformed manifest ({type(exc).__name__}: {exc}).") from None
    return Bundle(model=model.eval(), pipeline=pipeline, manifest=manifest, path=path)


def _member(path: Path, record: dict[str, Any], pipeline: FeaturePipeline, output_dim: int) -> nn.Module:
    """One candidate of an ensemble from its checked file: a booster, or a network behind its own features."""
    if record["config"]["type"] == "gbm":
        return _booster(path / record["file"], pipeline, output_dim)
    config = stored_model_config(record["config"])
    network = build_model(config, InputSpec(**record["spec"]), output_dim)
    _load_weights(network, path / record["file"])
    own = FeaturePipeline.from_json(record["features"])
    return NetworkMember(network.eval(), own, pipeline.input_spec.names, config).eval()


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
    mismatch = weight_mismatch(model.state_dict(), weights)
    if mismatch:
        raise BundleError(
            f"{file}: the weights do not fit the architecture in bundle.json: {mismatch}. "
            "The weights file and bundle.json come from different models; export the bundle again."
        )
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise BundleError(
            f"{file}: weights do not fit the architecture in the manifest ({str(exc).splitlines()[0]})."
        ) from None
    if not all(torch.isfinite(tensor).all() for tensor in weights.values() if tensor.is_floating_point()):
        raise BundleError(f"{file}: weights contain NaN or infinite values.")


def weight_mismatch(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], *, shown: int = 5
) -> str:
    """The missing, extra and misshapen tensor names (the first ``shown`` of each), or "" when they fit.

    torch's own message starts "Error(s) in loading state_dict" and names the keys only further down.
    """

    def first(names: list[str]) -> str:
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more

    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = [
        f"{name} (file {list(found[name].shape)}, model {list(tensor.shape)})"
        for name, tensor in expected.items()
        if name in found and found[name].shape != tensor.shape
    ]
    parts = [
        f"{label}: {first(names)}"
        for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes))
        if names
    ]
    return "; ".join(parts)
