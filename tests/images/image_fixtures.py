"""Image folders drawn with Pillow in tmp folders (coloured circles, squares and triangles), and a bomb header.

Tests that decode with a cache pass its folder explicitly; none writes to ~/.cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from make_shapes import SHAPES, render


def shape_image(kind: str, seed: int, size: tuple[int, int] = (40, 32)) -> Image.Image:
    """The example's shape (examples/make_shapes.py), in a colour leaning to its class on a light background."""
    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(180, 256, 3))
    colour = [int(v) for v in rng.integers(0, 90, 3)]
    colour[SHAPES.index(kind)] = 200  # each class leans to one colour: a few epochs learn it
    return render(kind, rng, size, colour=tuple(colour), background=background, smallest=4)


def make_shapes(root: Path, per_class: int = 20, *, formats: tuple[str, ...] = ("png",)) -> Path:
    """``root/<shape>/<i>.<ext>`` for each shape; formats rotate through ``formats``."""
    for label, kind in enumerate(SHAPES):
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            ext = formats[index % len(formats)]
            shape_image(kind, 1000 * label + index).save(root / kind / f"{index}.{ext}")
    return root


def bomb_png(width: int = 9000, height: int = 5000) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data: what a bomb's header says."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"\x00" * 64)
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + header + idat + end


def run_shapes(
    root: Path,
    photos: Path,
    name: str,
    *,
    train: dict,
    size: int = 16,
    model: dict | None = None,
    split: dict | None = None,
    evaluate: dict | None = None,
):
    """``forgeml.run`` of a small CNN on a folder of shapes (its config written to ``root``):
    (run, evaluation). Quiet; no permutation importance; the decoding cache off."""
    import io
    import json

    from rich.console import Console

    import forgeml
    from forgeml.config import load_config

    data: dict = {"source": str(photos)} | ({"split": split} if split else {})
    config = root / "config.json"
    config.write_text(
        json.dumps(
            {
                "name": name,
                "seed": 0,
                "output_dir": str(root / "runs"),
                "data": data,
                "features": {"image": {"size": size, "cache": False}},
                "model": {"type": "cnn", "channels": [4, 8], "dense": 16} | (model or {}),
                "train": train,
                "evaluate": {"permutation_repeats": 0} | (evaluate or {}),
            }
        )
    )
    return forgeml.run(load_config(config), console=Console(file=io.StringIO()))
