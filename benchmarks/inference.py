"""Inference side by side: ONNX Runtime vs PyTorch eager, through forgeml's Predictor and bare.

Three models: the breast-cancer MLP (30 numeric columns), the document's CNN on 28x28 images and
gradient-boosted trees (``model.type: gbm``) on a generated 20,000-row table (8 numeric columns with
missing values, 4 categorical); for the trees the second engine is LightGBM itself, and the bar is
ONNX Runtime at >= 0.9x LightGBM's own ``predict`` on 256-row batches (the ``lightgbm predict`` path
is the bare library call on a ready matrix).
For each engine, single-row latency and batch-256 throughput are measured through
``Predictor.predict`` (raw rows in, a DataFrame of labels and probabilities out: the path of
``forgeml predict``, the Python API and, minus the DataFrame, the server) and bare (the engine
alone on already-encoded arrays). Rounds interleave every path; medians are printed with the
Predictor/bare ratio, the overhead forgeml adds.
Run: .venv/bin/python benchmarks/inference.py [--rounds 5]
Writes benchmarks/results/inference.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import forgeml
from forgeml.config import load_config
from forgeml.data import RawData, load_source
from forgeml.deploy import Predictor, read_bundle

RESULTS = Path(__file__).parent / "results"


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over ~``seconds`` of calls, timed in blocks of 20."""
    function()
    blocks = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(blocks) < 3:
        started = time.perf_counter()
        for _ in range(20):
            function()
        blocks.append((time.perf_counter() - started) / 20)
    return statistics.median(blocks)


def mlp_bundle(folder: Path) -> tuple[Path, RawData]:
    config = load_config(
        "examples/breast_cancer_mlp.yaml", [f"output_dir={folder}", "train.epochs=5", "check.enabled=false"]
    )
    bundle = forgeml.train(config).bundle_path
    return bundle, load_source("sklearn:breast_cancer", "target", require_target=False)


def cnn_bundle(folder: Path) -> tuple[Path, RawData]:
    sys.path.insert(0, str(Path(__file__).parent))
    from training_overhead import _mnist_sized_digits

    folder.mkdir(parents=True, exist_ok=True)
    source = _mnist_sized_digits(folder, 600)
    config = load_config(
        "examples/digits_cnn.yaml",
        [f"output_dir={folder}", f"data.source={source}", "train.epochs=1", "check.enabled=false"],
    )
    bundle = forgeml.train(config).bundle_path
    return bundle, load_source(source, None, require_target=False)


def gbm_bundle(folder: Path) -> tuple[Path, RawData]:
    import pandas as pd

    from forgeml.config import config_from_dict

    rng = np.random.default_rng(0)
    rows = 20_000
    table = pd.DataFrame({f"x{index}": rng.normal(size=rows) for index in range(8)})
    table.loc[rng.random(rows) < 0.1, "x0"] = np.nan
    for index, size in enumerate((4, 12, 30, 100)):
        table[f"c{index}"] = rng.integers(0, size, size=rows).astype(str)
    score = table["x1"] + np.nan_to_num(table["x0"]) + (table["c1"].astype(int) % 3) + rng.normal(size=rows)
    table["label"] = np.where(score > 1, "yes", "no")
    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / "table.parquet")
    config = config_from_dict(
        {
            "data": {"source": str(folder / "table.parquet"), "target": "label"},
            "model": {"type": "gbm"},
            "output_dir": str(folder),
            "check": {"enabled": False},
        }
    )
    bundle = forgeml.train(config).bundle_path
    return bundle, load_source(str(folder / "table.parquet"), "label", require_target=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="forgeml-inference-"))
    results: dict[str, dict[str, float]] = {}
    models = (("breast-cancer MLP", mlp_bundle), ("document CNN, 28x28", cnn_bundle), ("gbm trees, mixed table", gbm_bundle))
    for model_name, make in models:
        bundle_path, raw = make(folder / model_name.split()[0])
        forgeml.api.export(bundle_path)
        bundle = read_bundle(bundle_path)
        one, many = raw.take(np.arange(1)), raw.take(np.arange(256) % len(raw))
        paths: dict[str, Callable[[], object]] = {}
        labels = []
        for engine in ("onnx", "torch"):
            predictor = Predictor(bundle, engine=engine)
            feeds_one, feeds_many = predictor.encode(one), predictor.encode(many)
            label = predictor.engine.name
            labels.append(label)
            paths[f"{label} Predictor, 1 row"] = lambda p=predictor, rows=one: p.predict(rows)
            paths[f"{label} bare, 1 row"] = lambda p=predictor, f=feeds_one: p.run(f)
            paths[f"{label} Predictor, 256 rows"] = lambda p=predictor, rows=many: p.predict(rows)
            paths[f"{label} bare, 256 rows"] = lambda p=predictor, f=feeds_many: p.run(f)
        if hasattr(bundle.model, "booster"):  # LightGBM's own predict on the ready tree matrix
            from forgeml.models.gbm import tree_matrix

            inputs = bundle.pipeline.transform(many).ordered(bundle.pipeline.input_spec.names)
            matrix = tree_matrix(*(tensor.numpy() for tensor in inputs))
            paths["lightgbm predict, 256 rows"] = lambda b=bundle.model.booster, m=matrix: b.predict(m, raw_score=True)
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, function in paths.items():
                samples[name].append(per_call(function, args.seconds))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        print(f"\n{model_name} ({args.rounds} interleaved rounds, medians)")
        print(f"{'path':22} {'1-row latency':>14} {'256-row batches':>16} {'Predictor / bare':>17}")
        for engine in labels:
            for kind in ("Predictor", "bare"):
                single = medians[f"{engine} {kind}, 1 row"]
                batch = medians[f"{engine} {kind}, 256 rows"]
                ratio = ""
                if kind == "Predictor":
                    bare_batch = medians[f"{engine} bare, 256 rows"]
                    ratio = f"{bare_batch / batch:.2f}x thr."
                print(
                    f"{engine + ' ' + kind:22} {single * 1e6:11.0f} us {256 / batch:11,.0f} rows/s {ratio:>17}"
                )
        other = labels[1]
        eager, onnx = medians[f"{other} bare, 256 rows"], medians["onnxruntime bare, 256 rows"]
        print(f"ONNX Runtime vs {other}, bare: {eager / onnx:.2f}x batch throughput, "
              f"{medians[f'{other} bare, 1 row'] / medians['onnxruntime bare, 1 row']:.2f}x single-row speed")  # fmt: skip
        results[model_name] = {name: value * 1e6 for name, value in medians.items()} | {
            "predictor_vs_bare_onnx_batch_throughput": medians["onnxruntime bare, 256 rows"]
            / medians["onnxruntime Predictor, 256 rows"],
        }
        if "lightgbm predict, 256 rows" in medians:  # the #16 bar: >= 0.9x LightGBM's own predict
            ratio = medians["lightgbm predict, 256 rows"] / onnx
            print(f"ONNX Runtime vs LightGBM's own predict, 256-row batches: {ratio:.2f}x throughput")
            results[model_name]["onnx_vs_lightgbm_predict_batch_throughput"] = ratio
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "inference.json").write_text(json.dumps({"microseconds_per_call": results}, indent=2))
    print(f"\nwrote {RESULTS / 'inference.json'}")


if __name__ == "__main__":
    main()
