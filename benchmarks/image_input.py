"""Image input speed: forgeml's folder pipeline vs a hand-written Pillow + DataLoader loop, same run.

A generated folder of JPEG photos (640x480 by default: noise, gradients and shapes, 3 classes) is
trained on with the document's CNN (Conv32-3x3, pool, Conv64-3x3, pool, Dense64) at 64x64, batch
64, Adam, the same threads for both contenders. Each run is a fresh process; the contenders are
interleaved (hand, forgeml, hand, forgeml, ...) and medians over the repetitions are printed with
forgeml's ratio to the hand loop.

- ``hand``: what people write: a ``Dataset`` whose ``__getitem__`` opens the file with Pillow,
  converts to RGB, scales the shorter side to 64 and cuts the centre, makes a tensor; a
  ``DataLoader`` with ``--workers`` worker processes, shuffled; a plain training loop. Every epoch
  decodes every file again.
- ``forgeml``: ``ImageFeatures`` (what ``forgeml train`` runs on a folder): decoding in threads with
  JPEG draft mode into the memory-mapped uint8 cache (a fresh, empty cache per run), then forgeml's
  training engine (``forgeml.training.loop.fit``) on the decoded split. Its first epoch counts
  the decoding; later epochs reuse the decoded array; ``later run`` is a second process on the
  same cache: the cache is mapped (the files are only hashed) and one epoch is trained.

Reported: images/s of the first epoch and of later epochs (their median), per contender.
Run: .venv/bin/python benchmarks/image_input.py [--images 1200] [--repeats 3] [--epochs 3]
Writes benchmarks/results/image_input.json. The machine may be shared: say so beside any figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SIZE = 64
BATCH = 64
CLASSES = ("circle", "square", "triangle")


def make_photos(root: Path, count: int, width: int, height: int) -> None:
    """``count`` JPEG files in ``root/<class>/``: textured backgrounds with one large shape each."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for index in range(count):
        kind = CLASSES[index % len(CLASSES)]
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        noise = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        image = Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(image)
        radius = int(rng.integers(height // 6, height // 3))
        cx, cy = int(rng.integers(radius, width - radius)), int(rng.integers(radius, height - radius))
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        if kind == "circle":
            draw.ellipse(box, fill=colour)
        elif kind == "square":
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(
                [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
            )
        image.save(folder / f"{index}.jpg", quality=90)


def listing(root: Path) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for label, kind in enumerate(CLASSES):
        for path in sorted((root / kind).glob("*.jpg")):
            paths.append(str(path))
            labels.append(label)
    return paths, labels


def run_hand(root: Path, epochs: int, workers: int) -> list[float]:
    """The hand-written loop; seconds per epoch."""
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from forgeml.config import CNNConfig
    from forgeml.features import InputSpec
    from forgeml.models import build_model

    paths, labels = listing(root)

    class Photos(Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int):
            with Image.open(paths[index]) as image:
                image = image.convert("RGB")
                scale = SIZE / min(image.size)
                width, height = round(image.width * scale), round(image.height * scale)
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                left, top = (width - SIZE) // 2, (height - SIZE) // 2
                image = image.crop((left, top, left + SIZE, top + SIZE))
                pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
            return pixels.view(SIZE, SIZE, 3).permute(2, 0, 1).float() / 255.0, labels[index]

    torch.manual_seed(0)
    loader = DataLoader(Photos(), batch_size=BATCH, shuffle=True, num_workers=workers)
    model = build_model(CNNConfig(), InputSpec(image_shape=(3, SIZE, SIZE)), len(CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for images, target in loader:
            optimizer.zero_grad()
            loss_function(model(images), target).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def run_forgeml(root: Path, epochs: int, threads: int) -> list[float]:
    """forgeml's input pipeline and training engine; seconds per epoch (the first includes decoding)."""
    import torch
    from torch import nn

    from forgeml.config import CNNConfig, TrainConfig
    from forgeml.data import load_source
    from forgeml.features import InputSpec
    from forgeml.features.image import ImageFeatures
    from forgeml.models import build_model
    from forgeml.training.loop import TensorData, fit, seed_everything

    start = time.perf_counter()
    raw = load_source(str(root), None)
    features = ImageFeatures(size=SIZE, channels=3).fit(raw.images)
    images = torch.from_numpy(features.transform(raw.images))
    codes = raw.target.map({kind: index for index, kind in enumerate(CLASSES)}).to_numpy(
        dtype="int64", copy=True
    )
    labels = torch.from_numpy(codes)
    decoding = time.perf_counter() - start
    seed_everything(0)
    model = build_model(CNNConfig(), InputSpec(image_shape=(3, SIZE, SIZE)), len(CLASSES))
    config = TrainConfig(
        epochs=epochs, batch_size=BATCH, learning_rate=1e-3, early_stopping=None, threads=threads
    )
    result = fit(
        model, TensorData((images,), labels), None, nn.CrossEntropyLoss(), config, seed=0, callbacks=[]
    )
    seconds = [epoch.seconds for epoch in result.history]
    seconds[0] += decoding
    return seconds


def worker(name: str, root: Path, epochs: int, threads: int, workers: int) -> list[float]:
    import torch

    torch.set_num_threads(threads)
    if name == "hand":
        return run_hand(root, epochs, workers)
    return run_forgeml(root, 1 if name == "forgeml later run" else epochs, threads)


def spawn(name: str, root: Path, cache: Path, args: argparse.Namespace) -> list[float]:
    env = os.environ | {"FORGEML_CACHE": str(cache)}
    command = [sys.executable, __file__, "--worker", name, "--root", str(root), "--epochs", str(args.epochs)]
    command += ["--threads", str(args.threads), "--workers", str(args.workers)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="the hand loop's DataLoader workers")
    parser.add_argument("--worker")
    parser.add_argument("--root")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.root), args.epochs, args.threads, args.workers)))
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "photos"
        make_photos(root, args.images, args.width, args.height)
        runs: dict[str, list[list[float]]] = {"hand": [], "forgeml": [], "forgeml later run": []}
        for repeat in range(args.repeats):
            cache = Path(folder) / f"cache{repeat}"  # empty: forgeml's first epoch decodes
            runs["hand"].append(spawn("hand", root, cache, args))
            runs["forgeml"].append(spawn("forgeml", root, cache, args))
            runs["forgeml later run"].append(spawn("forgeml later run", root, cache, args))
            print(
                f"repeat {repeat + 1}: "
                + ", ".join(f"{k} {[round(s, 2) for s in v[-1]]}" for k, v in runs.items())
            )
    summary = summarise(runs, args.images)
    print(json.dumps(summary, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image_input.json").write_text(
        json.dumps({"settings": vars(args), "runs": runs} | summary, indent=2)
    )


def summarise(runs: dict[str, list[list[float]]], images: int) -> dict[str, object]:
    first = {name: statistics.median(images / run[0] for run in values) for name, values in runs.items()}
    later = {
        name: statistics.median(images / second for run in values for second in run[1:])
        for name, values in runs.items()
        if name != "forgeml later run"
    }
    return {
        "images_per_second_first_epoch": first,
        "images_per_second_later_epochs": later,
        "ratio_first_epoch": first["forgeml"] / first["hand"],
        "ratio_later_epochs": later["forgeml"] / later["hand"],
        "ratio_later_run_first_epoch": first["forgeml later run"] / first["hand"],
    }


if __name__ == "__main__":
    main()
