"""MNIST-sized digit-like images for the benchmarks, made from sklearn's 8x8 digits (no download).

Kept apart from the benchmarks that use it so that importing it loads only numpy (and sklearn when
called): training_speed.py's contender processes must not import forgeml.
"""

from __future__ import annotations

import numpy as np


def digit_pixels(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` 28x28 images ``(N, 28, 28)`` float64 in [0, 255] and their labels ``(N,)``.

    sklearn's 8x8 digits scaled 3x, padded to 28 and noised; the same ``seed`` gives the same images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(digits.images), rows)
    images = np.kron(digits.images[picks], np.ones((3, 3)))  # (N, 24, 24)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))) * 16 + rng.normal(0, 8, (rows, 28, 28))
    return np.clip(images, 0, 255), digits.target[picks]
