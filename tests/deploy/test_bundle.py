"""Bundles: predictions survive a fresh process exactly; any tampering is refused before loading."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeml
from forgeml.data import RawData
from forgeml.deploy import read_bundle
from forgeml.errors import BundleError
from forgeml.models import predict_outputs


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("bundle")
    return forgeml.train(mixed_table_config(folder, train={"epochs": 5}))


def test_fresh_process_predicts_what_the_trained_model_did(trained, tmp_path: Path) -> None:
    rows = pd.read_csv(trained.config.data.source).drop(columns="churned").head(50)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    in_memory = forgeml.load(trained.bundle_path).predict(rows)
    script = (
        "import sys, forgeml, pandas as pd;"
        "forgeml.load(sys.argv[1]).predict(pd.read_csv(sys.argv[2])).to_json(sys.argv[3], orient='records')"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(trained.bundle_path),
            str(tmp_path / "rows.csv"),
            str(tmp_path / "out.json"),
        ],
        check=True,
    )
    fresh = pd.read_json(tmp_path / "out.json")
    # the model right after training, without the bundle in between
    inputs = trained.pipeline.transform(RawData(rows, None, None, "rows")).ordered(
        trained.pipeline.input_spec.names
    )
    direct = trained.pipeline.target_.decode(predict_outputs(trained.model, inputs).numpy())
    assert np.max(np.abs(fresh["probability_yes"].to_numpy() - direct.probabilities[:, 1])) <= 1e-6
    assert np.max(np.abs(in_memory["probability_yes"].to_numpy() - direct.probabilities[:, 1])) <= 1e-6
    assert fresh["prediction"].tolist() == list(direct.values)


def _copy(trained, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(trained.bundle_path, tmp_path / "copy"))


def test_one_changed_byte_in_the_weights_is_refused(trained, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weights.safetensors: checksum mismatch"):
        read_bundle(bundle)


def test_added_missing_and_foreign_files_are_refused(trained, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    (bundle / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(BundleError, match="unexpected file"):
        read_bundle(bundle)
    (bundle / "extra.pkl").unlink()
    (bundle / "weights.safetensors").unlink()
    with pytest.raises(BundleError, match="missing"):
        read_bundle(bundle)
    with pytest.raises(BundleError, match="not a bundle"):
        read_bundle(tmp_path)


def test_manifest_pointing_outside_the_bundle_is_refused(trained, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["files"]["../secret"] = {"sha256": "0"}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a plain file inside the bundle"):
        read_bundle(bundle)


def test_newer_format_version_is_refused(trained, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["format_version"] = 99
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99"):
        read_bundle(bundle)


def test_failed_bundle_write_keeps_the_previous_bundle(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    from forgeml.bundle import predictive as bundle_module

    before = (trained.bundle_path / "weights.safetensors").read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundle_module.safetensors.torch, "save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        bundle_module.write_bundle(
            trained.bundle_path, trained.model, trained.pipeline, trained.config.model, target="churned"
        )
    assert (trained.bundle_path / "weights.safetensors").read_bytes() == before
    assert [p.name for p in trained.bundle_path.parent.iterdir() if p.name.startswith(".bundle")] == []
