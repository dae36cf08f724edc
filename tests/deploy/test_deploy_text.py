"""Serving a text model: the Python API, `forgeml predict` and the real server agree; bad text is 422."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import forgeml
from forgeml.deploy.verify import free_port, wait_ready
from forgeml.errors import BundleError

pytestmark = pytest.mark.slow

REVIEWS = Path(__file__).parents[2] / "examples" / "data" / "reviews.csv"
# A mixed table: the review text, a numeric and a categorical column all feed the model.
ROWS = [
    {"review": "Great film, I loved the music and the story.", "stars_hint": 0.4, "shop": "north"},
    {"review": "Terrible, boring and broken. 東京 🙂", "stars_hint": None, "shop": "south"},
    {"review": "", "stars_hint": 1.0, "shop": "south"},  # empty text
    {"review": None, "stars_hint": -0.5, "shop": "north"},  # missing text = the empty text
    {"review": "awful " * 400 + "great", "stars_hint": 0.0, "shop": "north"},  # truncated to the length
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import write_config

    folder = tmp_path_factory.mktemp("text-serve")
    config = write_config(
        folder / "c.yaml",
        str(REVIEWS),
        name="reviews",
        data={"target": "label"},
        features={"text_columns": ["review"], "text": {"vocab_size": 300, "max_length": 24}},
        model={"type": "bag_of_embeddings", "embedding_dim": 16},
        train={"epochs": 3, "batch_size": 32, "threads": 1},
    )
    run = forgeml.train(config)
    forgeml.api.export(run)
    return run.bundle_path


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = (tmp_path_factory.mktemp("log") / "server.log").open("w+")
    args = [sys.executable, "-m", "forgeml", "serve", str(bundle), "--port", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, log=log)
    yield base
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def post(base: str, body: bytes | dict) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{base}/v1/predict", content=content, headers={"content-type": "application/json"})


def test_onnx_and_torch_engines_agree_on_texts(bundle: Path) -> None:
    onnx, torch = forgeml.load(bundle), forgeml.load(bundle, engine="torch")
    assert onnx.engine.name == "onnxruntime"
    frame = pd.read_csv(REVIEWS).drop(columns="label").head(200)
    a, b = onnx.predict(frame), torch.predict(frame)
    assert a["prediction"].tolist() == b["prediction"].tolist()
    assert np.abs(a["probability_pos"] - b["probability_pos"]).max() <= 1e-5
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert [item["name"] for item in manifest["onnx"]["inputs"]] == [
        "numeric",
        "categorical",
        "text",
        "text_mask",
    ]


def test_server_and_cli_match_the_python_predictor(server: str, bundle: Path, tmp_path: Path) -> None:
    response = post(server, {"rows": ROWS})
    assert response.status_code == 200, response.text
    expected = forgeml.load(bundle).predict(pd.DataFrame(ROWS))
    predictions = response.json()["predictions"]
    assert [p["prediction"] for p in predictions] == expected["prediction"].tolist()
    for label in ("neg", "pos"):
        got = np.array([p["probabilities"][label] for p in predictions])
        assert np.abs(got - expected[f"probability_{label}"].to_numpy()).max() <= 1e-5

    pd.DataFrame(ROWS).to_csv(tmp_path / "rows.csv", index=False)
    from conftest import forgeml as cli

    done = cli("predict", bundle, tmp_path / "rows.csv", "-o", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["prediction"].tolist() == expected["prediction"].tolist()
    assert np.abs(written["probability_pos"] - expected["probability_pos"]).max() <= 1e-5
    metadata = httpx.get(f"{server}/v1/metadata").json()
    assert {"name": "review", "kind": "text"} in metadata["input_schema"]["columns"]
    assert "review" in httpx.get(f"{server}/").text  # the try-it page lists the text field


@pytest.mark.parametrize("value", [42, 3.5, True, ["great"], {"text": "great"}])
def test_a_non_string_text_is_422_naming_field_and_row(server: str, value: object) -> None:
    response = post(server, {"rows": [ROWS[0], {**ROWS[0], "review": value}]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["field"], error["row"], error["code"]) == ("rows[1].review", 1, "wrong_type")
    assert post(server, {"rows": [ROWS[0]]}).status_code == 200


def test_long_text_is_truncated_and_an_oversized_body_is_413(server: str) -> None:
    long = {**ROWS[0], "review": "great " * 20_000}  # ~120 KB of text: tokenized, truncated to 24 tokens
    assert post(server, {"rows": [long]}).status_code == 200
    huge = {**ROWS[0], "review": "great " * 200_000}  # ~1.2 MB: over serve.max_body_bytes (1 MiB)
    response = post(server, {"rows": [huge]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "content_too_large"


def test_export_refuses_when_onnx_runtime_disagrees_and_torch_serves(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from forgeml.bundle import onnx_export

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    manifest["files"].pop("model.onnx")
    manifest.pop("onnx")
    (copy / "model.onnx").unlink()
    (copy / "bundle.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(onnx_export, "text_parity", lambda *args, **kwargs: 0.5)
    with pytest.raises(BundleError, match=r"differ by 0\.5.*bag_of_embeddings, text_cnn, transformer"):
        forgeml.api.export(copy)
    assert not (copy / "model.onnx").exists()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(onnx_export, "_torch_export", broken)
    with pytest.raises(BundleError, match="exporter failed: RuntimeError: unsupported op.*PyTorch"):
        forgeml.api.export(copy)
    predictor = forgeml.load(copy)
    assert predictor.engine.name == "torch"
    assert len(predictor.predict(pd.DataFrame(ROWS))) == len(ROWS)
