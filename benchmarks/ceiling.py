"""The ceiling: what this CPU can do in fp32, and what the document's CNN costs per training image.

``matmul_gflops``: the median rate of a 2048 x 2048 fp32 matrix product (about as close to the
hardware's peak as PyTorch gets). ``cnn_flops_per_training_image``: the forward and backward
FLOPs of one image through the document's CNN, counted by ``torch.utils.flop_counter`` (conv and
matmul only: pooling, activations and the optimizer are small and not counted). Every training
figure in ``training_speed.py`` is shown as a fraction of the first using the second.
Run: .venv/bin/python benchmarks/ceiling.py [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 7) -> float:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.rand(size, size), torch.rand(size, size)
        torch.mm(a, b)  # warm-up
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(a, b)
            rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
        return statistics.median(rates)
    finally:
        torch.set_num_threads(previous)


def cnn_flops_per_training_image(batch: int = 32) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from training_speed import document_cnn

    model = document_cnn()
    images, labels = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(images), labels).backward()
    return counter.get_total_flops() / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0 = the cores available")
    args = parser.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    print(f"fp32 matmul (2048^2, {threads} threads): {matmul_gflops(threads):.1f} GFLOP/s")
    print(f"document CNN, forward + backward: {cnn_flops_per_training_image() / 1e6:.2f} MFLOP per image")


if __name__ == "__main__":
    main()
