"""The one bundle format: ``bundle.json`` beside the files it lists, for every kind of model.

Every manifest starts with ``format`` (:data:`FORMAT`), ``format_version`` and ``kind``:
``predictor`` (a network that maps rows to predictions, with its fitted features) or ``causal_lm``
(a language model with its tokenizer). The rest of the manifest is the kind's own (see
:mod:`forgeml.bundle.predictive` and :mod:`forgeml.bundle.causal_lm`), except ``files``: the sha256
and size of every other file, checked by :func:`verify_files` before anything is loaded.

Version 1 had two formats, ``forgeml-bundle`` (predictors) and ``forgeml-lm-bundle`` (language
models), with no ``kind``; both still read, their kind taken from the format name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from forgeml.config import CAUSAL_LM, PREDICTOR, Kind
from forgeml.errors import BundleError

FORMAT = "forgeml-bundle"
FORMAT_VERSION = 2
MANIFEST = "bundle.json"
# The detached signature ``forgeml sign`` writes (model-signing's default name, so its own CLI finds
# it too). It signs the other files, so it is the one file the manifest cannot list.
SIGNATURE = "model.sig"
# version 1 formats, and the kind each one held
_V1_KINDS: dict[str, Kind] = {"forgeml-bundle": PREDICTOR, "forgeml-lm-bundle": CAUSAL_LM}
# Formats that unpickle or run code when loaded: never read from a bundle, whatever their checksum.
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".py", ".joblib")


def header(kind: Kind) -> dict[str, Any]:
    """The first keys of every manifest this version writes."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind}


def read_manifest(path: Path, *, kind: Kind | None = None) -> dict[str, Any]:
    """The parsed ``bundle.json`` of ``path``, its ``kind`` filled in for version 1 bundles.

    With ``kind``, a bundle of another kind is refused (e.g. a language model given to ``predict``).
    Files are not checked here: call :func:`verify_files` before loading any of them.
    """
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"{path}: not a bundle ({MANIFEST} is missing). Pass the bundle folder, e.g. runs/<name>/bundle."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in _V1_KINDS:
        raise BundleError(f"{manifest_path}: not a forgeml bundle manifest.")
    version = manifest.get("format_version")
    if version == 1:
        manifest["kind"] = _V1_KINDS[manifest["format"]]
    elif version != FORMAT_VERSION or manifest.get("format") != FORMAT:
        raise BundleError(
            f"{manifest_path}: bundle format version {version!r}; this forgeml reads versions 1 and "
            f"{FORMAT_VERSION}. Re-export the bundle."
        )
    if manifest.get("kind") not in _V1_KINDS.values():
        raise BundleError(f"{manifest_path}: unknown bundle kind {manifest.get('kind')!r}.")
    if kind is not None and manifest["kind"] != kind:
        expected = "a language model (model.type: causal_lm)" if kind == CAUSAL_LM else "a prediction model"
        raise BundleError(f"{path}: a {manifest['kind']} bundle; this needs {expected}.")
    return manifest


def bundle_kind(path: str | Path) -> Kind:
    """The kind of the bundle at ``path`` (its manifest read and checked, its files not yet)."""
    kind: Kind = read_manifest(Path(path))["kind"]
    return kind


def model_file(manifest: dict[str, Any]) -> str:
    """A predictor bundle's model file: ``model.txt`` (LightGBM text) for boosted trees, an ensemble's
    first member's file (every member's is listed and checked alike), else the weights."""
    model = manifest.get("model")
    config = model.get("config") if isinstance(model, dict) else None
    if isinstance(config, dict) and config.get("type") == "auto":  # an ensemble: its first member's file
        members = model.get("members") if isinstance(model, dict) else None
        first = members[0] if isinstance(members, list) and members and isinstance(members[0], dict) else {}
        return str(first.get("file", "members"))
    return "model.txt" if isinstance(config, dict) and config.get("type") == "gbm" else "weights.safetensors"


def verify_files(path: Path, manifest: dict[str, Any], *, weights: str | None = None) -> None:
    """Every listed file present with its recorded sha256, no pickle or code file, and no file not listed
    (but :data:`SIGNATURE`, checked apart by :mod:`forgeml.bundle.signing`).

    ``weights`` is the kind's weights file, which must be listed (default: the predictor's model
    file, :func:`model_file`). A pickle or code file is refused even with a matching checksum,
    because loading it could run code.
    """
    weights = weights or model_file(manifest)
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
        if sha256(file) != record.get("sha256"):
            raise BundleError(
                f"{file}: checksum mismatch; the file was changed after the bundle was written. Re-export the bundle from its run."
            )
    extra = sorted(
        entry.name
        for entry in path.iterdir()
        if entry.name not in listed and entry.name not in (MANIFEST, SIGNATURE)
    )
    if extra:
        raise BundleError(
            f"{path}: unexpected file(s) {', '.join(extra)} not recorded in {MANIFEST}. Remove them or re-export the bundle."
        )


def file_record(file: Path) -> dict[str, Any]:
    """The manifest's entry for one file: its sha256 and size."""
    return {"sha256": sha256(file), "bytes": file.stat().st_size}


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
