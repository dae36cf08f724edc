"""A generated folder of shapes: trained with the CNN, exported, predicted from a folder, served to uploads."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from image_fixtures import bomb_png, make_shapes, run_shapes, shape_image

import forgeml
from forgeml.config import ServeConfig
from forgeml.data import load_source
from forgeml.deploy.server.app import create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run shared by the tests below: 3 shapes x 12 PNG/JPEG/WebP files, decoded to 16x16 RGB."""
    root = tmp_path_factory.mktemp("shapes")
    photos = make_shapes(root / "photos", 12, formats=("png", "jpg", "webp"))
    run, evaluation = run_shapes(
        root,
        photos,
        "shapes",
        model={"channels": [8, 16], "dense": 32},
        train={"epochs": 6, "batch_size": 8, "learning_rate": 0.01},
    )
    assert evaluation.metrics.values["accuracy"] >= 0.9, evaluation.metrics.values
    forgeml.export(run.path)
    return run.path


def test_predict_reads_a_folder_and_a_table_of_paths(trained: Path, tmp_path: Path) -> None:
    folder = make_shapes(tmp_path / "new", 3)
    predicted = forgeml.predict(trained / "bundle", folder, output=tmp_path / "out.csv")
    assert predicted.rows == 9
    out = pd.read_csv(tmp_path / "out.csv")
    assert [Path(name).parent.name for name in out["file"]] == ["circle"] * 3 + ["square"] * 3 + [
        "triangle"
    ] * 3
    assert (out["prediction"] == [Path(name).parent.name for name in out["file"]]).sum() >= 7
    table = tmp_path / "new" / "files.csv"
    table.write_text("path\n" + "".join(f"{kind}/0.png\n" for kind in ("circle", "square", "triangle")))
    forgeml.predict(trained / "bundle", table, output=tmp_path / "table.csv")
    rows = pd.read_csv(tmp_path / "table.csv")
    assert list(rows["prediction"]) == list(out["prediction"].iloc[[0, 3, 6]])


def _png(kind: str, seed: int, *, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    shape_image(kind, seed).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_server_takes_a_png_body_and_a_multipart_upload(trained: Path) -> None:
    with TestClient(create_app(trained / "bundle", ServeConfig())) as client:
        raw = client.post(
            "/v1/predict/image", content=_png("circle", 7), headers={"content-type": "image/png"}
        )
        assert raw.status_code == 200, raw.text
        assert raw.json()["predictions"][0]["prediction"] == "circle"
        files = [
            ("file", ("a.png", _png("square", 8), "image/png")),
            ("file", ("b.png", _png("triangle", 9, mode="RGBA"), "image/png")),
        ]
        form = client.post("/v1/predict/image", files=files)
        assert form.status_code == 200, form.text
        assert [p["prediction"] for p in form.json()["predictions"]] == ["square", "triangle"]
        assert '"upload": true' in client.get("/").text  # the try-it page posts a dropped photo as it is


def test_server_refuses_each_bad_upload_and_keeps_serving(trained: Path) -> None:
    truncated = _png("circle", 3)[:200]
    with TestClient(create_app(trained / "bundle", ServeConfig())) as client:
        answers = {
            "pdf": client.post(
                "/v1/predict/image", content=b"%PDF-1.7 ...", headers={"content-type": "image/png"}
            ),
            "truncated": client.post(
                "/v1/predict/image", content=truncated, headers={"content-type": "image/png"}
            ),
            "bomb": client.post(
                "/v1/predict/image", content=bomb_png(), headers={"content-type": "image/png"}
            ),
            "text": client.post(
                "/v1/predict/image", content=b"hello", headers={"content-type": "text/plain"}
            ),
            "empty form": client.post("/v1/predict/image", data={"note": "x"}, files={"x": ("", b"", "")}),
        }
        assert answers["pdf"].status_code == 422 and answers["pdf"].json()["error"]["code"] == "not_an_image"
        assert (
            answers["truncated"].status_code == 422
            and answers["truncated"].json()["error"]["code"] == "corrupt_image"
        )
        assert answers["bomb"].status_code == 413 and "pixels" in answers["bomb"].json()["error"]["message"]
        assert answers["text"].status_code == 415
        assert answers["empty form"].status_code in (400, 422)
        after = client.post(
            "/v1/predict/image", content=_png("circle", 7), headers={"content-type": "image/png"}
        )
        assert after.status_code == 200


def test_onnx_and_torch_agree_on_decoded_files(trained: Path, tmp_path: Path) -> None:
    """The export keeps the decoding outside the graph and the scaling inside: both engines agree."""
    rows = load_source(str(make_shapes(tmp_path / "few", 2)), None, require_target=False)
    onnx = forgeml.load(trained / "bundle", engine="onnx").predict(rows)
    torch = forgeml.load(trained / "bundle", engine="torch").predict(rows)
    columns = [c for c in onnx.columns if c.startswith("probability_")]
    assert np.allclose(onnx[columns].to_numpy(), torch[columns].to_numpy(), atol=1e-4)
