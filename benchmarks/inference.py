"""ONNX Runtime vs PyTorch eager: single-row latency and batch-256 throughput, through the Predictor and bare.

Run: .venv/bin/python benchmarks/inference.py [BUNDLE]   (trains a breast-cancer bundle when none is given)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import forgeml
from forgeml.config import load_config
from forgeml.deploy import Predictor, read_bundle
from forgeml.deploy.onnx_export import InferenceModule


def timed(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    if len(sys.argv) > 1:
        bundle_path = Path(sys.argv[1])
    else:
        folder = tempfile.mkdtemp()
        config = load_config("examples/breast_cancer_mlp.yaml", [f"output_dir={folder}", "train.epochs=5"])
        bundle_path = forgeml.train(config).bundle_path
    if not (bundle_path / "model.onnx").exists():
        forgeml.api.export(bundle_path)
    bundle = read_bundle(bundle_path)
    from forgeml.data import load_source

    raw = load_source("sklearn:breast_cancer", "target", require_target=False)
    one, many = raw.take(np.arange(1)), raw.take(np.arange(256) % len(raw))
    print(f"{'path':34} {'1-row latency':>14} {'batch-256 rows/s':>17}")
    for engine in ("onnx", "torch"):
        predictor = Predictor(bundle, engine=engine)
        single = timed(lambda p=predictor: p.predict(one), 300)
        batch = timed(lambda p=predictor: p.predict(many), 50)
        print(
            f"{'Predictor (' + predictor.engine.name + ')':34} {single * 1e6:11.0f} us {256 / batch:17,.0f}"
        )
        feeds1, feeds256 = predictor.encode(one), predictor.encode(many)
        single = timed(lambda p=predictor, f=feeds1: p.run(f), 2000)
        batch = timed(lambda p=predictor, f=feeds256: p.run(f), 500)
        print(f"{'bare ' + predictor.engine.name:34} {single * 1e6:11.0f} us {256 / batch:17,.0f}")
    module = InferenceModule(bundle.model, bundle.pipeline).eval()
    x1 = torch.from_numpy(Predictor(bundle, engine="torch").encode(one)["numeric"])
    with torch.inference_mode():
        single = timed(lambda: module(numeric=x1), 2000)
    print(f"{'bare torch module call':34} {single * 1e6:11.0f} us")


if __name__ == "__main__":
    main()
