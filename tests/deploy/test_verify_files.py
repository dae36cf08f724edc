"""verify_files, shared by tabular and LM bundles: pickle or code files are refused even when listed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from forgeml.bundle.manifest import verify_files
from forgeml.errors import BundleError


def _listed(folder: Path, *names: str) -> dict[str, object]:
    files = {}
    for name in names:
        (folder / name).write_bytes(b"x")
        files[name] = {"sha256": hashlib.sha256(b"x").hexdigest()}
    return {"files": files}


@pytest.mark.parametrize("weights", ["weights.safetensors", "model.safetensors"])
def test_a_listed_pickle_with_a_matching_checksum_is_refused(tmp_path: Path, weights: str) -> None:
    manifest = _listed(tmp_path, weights, "extra.pkl")
    with pytest.raises(BundleError, match=r"extra\.pkl: pickle or code files are never loaded.*Re-export"):
        verify_files(tmp_path, manifest, weights=weights)


def test_the_weights_file_named_by_the_caller_is_required(tmp_path: Path) -> None:
    manifest = _listed(tmp_path, "weights.safetensors")
    verify_files(tmp_path, manifest)
    with pytest.raises(BundleError, match=r"lists no weights file \(model\.safetensors\)"):
        verify_files(tmp_path, manifest, weights="model.safetensors")
