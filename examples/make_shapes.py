"""Render the shapes image folder for examples/shapes_cnn.yaml: circles, squares and triangles as PNG.

    python examples/make_shapes.py            # writes examples/data/shapes/<shape>/<i>.png

Offline and repeatable (seeded): 200 images per class, 48x48, each shape at a random place and size,
in a random dark colour on a random light background, so the class is the shape alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def render(
    kind: str,
    rng: np.random.Generator,
    size: tuple[int, int] = (48, 48),
    *,
    colour: tuple[int, int, int] | None = None,
    background: tuple[int, int, int] | None = None,
    smallest: int = 4,
) -> Image.Image:
    """One ``kind`` (circle, square, triangle) at a random place and size; colours random unless given.

    The radius is drawn between 1/``smallest`` and about half of the shorter side.
    """
    width, height = size
    background = background or tuple(int(v) for v in rng.integers(170, 256, 3))  # light
    image = Image.new("RGB", size, background)
    colour = colour or tuple(int(v) for v in rng.integers(0, 110, 3))  # dark: the silhouette tells the class
    radius = int(rng.integers(min(size) // smallest, min(size) // 2 - 2))
    cx, cy = int(rng.integers(radius, width - radius)), int(rng.integers(radius, height - radius))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    draw = ImageDraw.Draw(image)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image


def main(root: Path, per_class: int = 200) -> None:
    rng = np.random.default_rng(0)
    for kind in SHAPES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            render(kind, rng).save(root / kind / f"{index:03d}.png")
    print(f"wrote {per_class * len(SHAPES)} images to {root}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "shapes")
