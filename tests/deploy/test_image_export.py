"""Deploying a model trained on image files: uint8 ONNX input, prediction from a folder, verify by upload."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import forgeml
from conftest import forgeml as forgeml_cli
from forgeml.bundle import onnx_export
from forgeml.config import load_config
from forgeml.errors import DataError

sys.path.insert(0, str(Path(__file__).parents[1] / "images"))
from image_fixtures import make_shapes, shape_image

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _train(root: Path, source: str, name: str, epochs: int = 4, **image: object) -> Path:
    config = root / f"{name}.json"
    config.write_text(
        json.dumps(
            {
                "name": name,
                "seed": 0,
                "output_dir": str(root / "runs"),
                "data": {"source": source},
                "features": {"image": {"cache": False, **image}},
                "model": {"type": "cnn", "channels": [8, 16], "dense": 32},
                "train": {"epochs": epochs, "batch_size": 8, "learning_rate": 0.01},
                "evaluate": {"permutation_repeats": 0, "bootstrap": 0},
            }
        )
    )
    run, _ = forgeml.run(load_config(config), console=Console(file=io.StringIO()))
    return run.path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the CNN on 3 shapes x 12 PNGs at 16x16 RGB, exported to ONNX."""
    root = tmp_path_factory.mktemp("shapes")
    run = _train(root, str(make_shapes(root / "photos", 12)), "shapes", size=16)
    forgeml.export(run)
    return run / "bundle"


def _graph_input(bundle: Path) -> tuple[int, list[object]]:
    import onnx

    (graph_input,) = onnx.load(str(bundle / "model.onnx")).graph.input
    tensor = graph_input.type.tensor_type
    return tensor.elem_type, [d.dim_param or d.dim_value for d in tensor.shape.dim]


def test_the_graph_takes_uint8_pixels_at_the_model_size(shapes: Path) -> None:
    import onnx

    elem_type, shape = _graph_input(shapes)
    assert elem_type == onnx.TensorProto.UINT8
    assert shape == ["batch", 3, 16, 16]
    described = json.loads((shapes / "bundle.json").read_text())["onnx"]["inputs"]
    assert [(item["name"], item["dtype"]) for item in described] == [("image", "uint8")]
    nodes = [node.op_type for node in onnx.load(str(shapes / "model.onnx")).graph.node]
    assert nodes[:2] == ["Cast", "Div"]  # the scaling is in the graph, not on the host


def test_onnx_runtime_on_raw_bytes_matches_torch(shapes: Path, tmp_path: Path) -> None:
    """ORT fed the decoder's bytes directly (as any host would) against the PyTorch engine."""
    import onnxruntime as ort

    from forgeml.bundle.predictive import read_predictor_bundle
    from forgeml.bundle.predictor import image_files

    folder = make_shapes(tmp_path / "few", 2)
    pixels = read_predictor_bundle(shapes).pipeline.image_.pixels(image_files(folder))
    assert pixels.dtype == np.uint8
    session = ort.InferenceSession(str(shapes / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": np.ascontiguousarray(pixels)})[0]
    torch_frame = forgeml.load(shapes, engine="torch").predict(folder)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    columns = [c for c in torch_frame.columns if c.startswith("probability_")]
    assert np.allclose(probabilities, torch_frame[columns].to_numpy(), atol=1e-5)


def test_predict_takes_a_flat_folder_and_names_each_file(shapes: Path, tmp_path: Path) -> None:
    flat = tmp_path / "new"
    flat.mkdir()
    for index, kind in enumerate(("triangle", "circle", "square")):
        shape_image(kind, 500 + index).save(flat / f"{index}_{kind}.png")
    (flat / "notes.txt").write_text("not an image")
    (flat / ".hidden").mkdir()
    shape_image("circle", 9).save(flat / ".hidden" / "x.png")
    frame = forgeml.load(shapes).predict(flat)
    assert [Path(name).name for name in frame["file"]] == ["0_triangle.png", "1_circle.png", "2_square.png"]
    assert list(frame.columns[:2]) == ["file", "prediction"]
    result = forgeml_cli("predict", shapes, flat, "-o", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written["file"]) == list(frame["file"])
    assert list(written["prediction"]) == list(frame["prediction"])


def test_a_folder_without_images_is_named(shapes: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="empty: no image files"):
        forgeml.load(shapes).predict(tmp_path / "empty")
    result = forgeml_cli("predict", shapes, tmp_path / "empty", "-o", tmp_path / "out.csv")
    assert result.returncode == 2 and "no image files" in result.stderr
    assert not (tmp_path / "out.csv").exists()


def test_pixels_sent_as_numbers_must_be_bytes(shapes: Path) -> None:
    predictor = forgeml.load(shapes)
    whole = np.full((2, 3, 16, 16), 200.0, dtype=np.float32)
    assert len(predictor.predict(whole)) == 2  # whole numbers 0..255: the decoder's own values
    for bad in (127.5, 300.0, -1.0, float("nan")):
        pixels = whole.copy()
        pixels[1, 0, 0, 0] = bad
        with pytest.raises(DataError, match=r"image 2: .*whole numbers 0\.\.255"):
            predictor.predict(pixels)


def test_a_bundle_exported_with_float_input_still_predicts(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Image bundles exported before uint8 inputs declare float32 pixels: the engine casts to it."""
    import shutil

    import onnx

    old = tmp_path / "old_bundle"
    shutil.copytree(shapes, old)
    monkeypatch.setattr(onnx_export, "image_dtype", lambda pipeline: np.float32)
    onnx_export.export(old)
    assert _graph_input(old)[0] == onnx.TensorProto.FLOAT
    folder = make_shapes(tmp_path / "few", 2)
    before = forgeml.load(old, engine="onnx").predict(folder)
    after = forgeml.load(shapes, engine="onnx").predict(folder)
    columns = [c for c in after.columns if c.startswith("probability_")]
    assert np.allclose(before[columns].to_numpy(), after[columns].to_numpy(), atol=1e-6)


def test_npz_bundles_keep_float_input(tmp_path: Path) -> None:
    """Arrays may be on any scale (digits: 0..16, or floats in 0..1): their graph keeps float32."""
    import onnx

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (48, 1, 8, 8)).astype(np.float32)
    labels = (images[:, 0, :4].mean(axis=(1, 2)) > images[:, 0, 4:].mean(axis=(1, 2))).astype(int)
    np.savez(tmp_path / "arrays.npz", x=images, y=labels)
    run = _train(tmp_path, str(tmp_path / "arrays.npz"), "arrays", epochs=1)
    forgeml.export(run)
    assert _graph_input(run / "bundle")[0] == onnx.TensorProto.FLOAT
    predictor = forgeml.load(run / "bundle")
    assert len(predictor.predict(images[:3] * 0.5)) == 3  # not whole numbers: fine for arrays
    broken = images[:3].copy()
    broken[1, 0, 2, 2] = np.nan
    with pytest.raises(DataError, match="image 2 contains NaN"):
        predictor.predict(broken)


@pytest.mark.slow
def test_verify_uploads_the_files_to_the_server(shapes: Path, tmp_path: Path) -> None:
    """`forgeml verify` on a folder posts each file to /v1/predict/image (JSON pixels were over 1 MiB)."""
    folder = make_shapes(tmp_path / "check", 25)  # 75 files: two multipart requests of at most 64
    report = forgeml.api.verify(shapes, data=folder)
    assert report.rows == 75
    assert report.max_difference <= 1e-5, report.differences
