"""ONNX export: a checked graph holding the preprocessing, equal to PyTorch eager; streaming predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

import forgeml
from forgeml.data import RawData
from forgeml.deploy import Predictor, read_bundle
from forgeml.errors import BundleError, DataError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["onehot", "embedding"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from conftest import make_mixed_table, write_config

    folder = tmp_path_factory.mktemp("export")
    table = make_mixed_table()
    table.loc[::7, "age"] = np.nan  # missing values are imputed inside the graph
    table.to_csv(folder / "data.csv", index=False)
    config = write_config(
        folder / "c.yaml",
        str(folder / "data.csv"),
        data={"target": "churned"},
        train={"epochs": 3},
        features={"categorical": {"encoding": request.param}},
        check={"enabled": False},
    )
    trained = forgeml.train(config)
    forgeml.api.export(trained.path)
    return trained


def test_graph_passes_the_full_checker_and_matches_pytorch(run) -> None:
    bundle = read_bundle(run.bundle_path)
    onnx.checker.check_model(onnx.load(str(run.bundle_path / "model.onnx")), full_check=True)
    assert bundle.manifest["files"]["model.onnx"]["sha256"]
    assert [item["name"] for item in bundle.manifest["onnx"]["inputs"]] == ["numeric", "categorical"]
    test = run.splits.test
    onnx_out = Predictor(bundle).raw_outputs(test)
    torch_out = Predictor(bundle, engine="torch").raw_outputs(test)
    from forgeml.models import predict_outputs

    direct = predict_outputs(run.model, run.pipeline.transform(test).ordered(run.pipeline.input_spec.names))
    assert np.abs(onnx_out - torch_out).max() <= 1e-5
    assert np.abs(onnx_out - direct.numpy()).max() <= 1e-5
    assert Predictor(bundle).engine.name == "onnxruntime"


def test_tampered_or_external_data_onnx_is_refused(run, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run.bundle_path, tmp_path / "b"))
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-5] ^= 1
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx: checksum mismatch"):
        read_bundle(copy)
    from forgeml.bundle.onnx_export import check_onnx

    model = onnx.load(str(run.bundle_path / "model.onnx"))
    onnx.save(
        model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="x.data", size_threshold=0
    )
    with pytest.raises(BundleError):
        check_onnx(tmp_path / "ext.onnx")


def test_unseen_category_policy(run) -> None:
    known = {"age": 30.0, "income": 4e4, "city": "paris", "plan": "pro"}
    rows = pd.DataFrame([known, known, {**known, "city": "tokyo"}, {**known, "city": None}])
    assert len(forgeml.load(run.bundle_path).predict(rows)) == 4
    with pytest.raises(DataError, match="'tokyo' was not seen in training") as caught:
        forgeml.load(run.bundle_path, unseen="reject").predict(rows)
    assert (caught.value.column, caught.value.row) == ("city", 3)  # missing (row 4) is not "unseen"


def test_category_ids_at_predict_time_match_training(run) -> None:
    from forgeml.bundle.encode import encode_raw

    table = pd.read_csv(run.config.data.source).head(50)
    table.loc[3, "city"] = "tokyo"  # unseen: the unknown bucket, as in training
    table.loc[4, "plan"] = None
    raw = RawData(table.drop(columns="churned"), None, None, "test")
    ids = encode_raw(run.pipeline, raw)["categorical"]
    np.testing.assert_array_equal(ids, run.pipeline.categorical_.ids(table))
    assert ids[3, 0] == 0 and ids[4, 1] == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streaming_predict_equals_in_memory_and_is_atomic(
    run, tmp_path: Path, suffix: str, monkeypatch
) -> None:
    from forgeml.deploy import predict as predict_module

    table = pd.read_csv(run.config.data.source)
    source = tmp_path / f"in{suffix}"
    table.to_csv(source, index=False) if suffix == ".csv" else table.to_parquet(source)
    monkeypatch.setattr(predict_module, "CHUNK_ROWS", 64)
    monkeypatch.setattr(predict_module, "CSV_BLOCK_BYTES", 2048)
    summary = forgeml.predict(run.bundle_path, source, tmp_path / "out.csv")
    assert summary.rows == len(table)
    streamed = pd.read_csv(tmp_path / "out.csv")
    expected = forgeml.load(run.bundle_path).predict(table.drop(columns="churned"))
    assert (
        np.abs(streamed["probability_yes"].to_numpy() - expected["probability_yes"].to_numpy()).max() <= 1e-6
    )
    bad = table.astype({"age": object})
    bad.loc[150, "age"] = "old"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError):
        forgeml.predict(run.bundle_path, tmp_path / "bad.csv", tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv").equals(streamed)  # the previous output is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_keeps_the_manifest_consistent(run) -> None:
    manifest = json.loads((run.bundle_path / "bundle.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors", "model.onnx"}
    assert "onnxruntime" in manifest["versions"]
