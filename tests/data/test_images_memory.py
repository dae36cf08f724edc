"""A folder larger than memory trains: the decoded split stays uint8 in the memory-mapped cache.

Training reads the split through the cache's map, so the pages it touches are the file's (the
kernel drops them under pressure, like any page cache) and only each batch becomes float32. What
cannot be dropped without swap is anonymous memory, so that is what is measured: a child process
trains on a folder of N images, then on one of 4N, and samples its ``RssAnon`` (/proc/self/status)
every 2 ms during each run. Holding the split as float32 (what training did before) adds 4 bytes
a pixel for the 3N extra images; the bound is a quarter of that, less than even a uint8 copy.
VmHWM (ru_maxrss) is printed too but not asserted: it counts the mapped file's resident pages,
which grow with the folder by design.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from forgeml.data.images import _mapped
from forgeml.features.image import pixel_tensor

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from make_shapes import SHAPES, render

SIZE = 128  # pixels: large rows, few files (decoding and the gate stay quick)
SMALL = 150  # images per class in the small folder (450 images); the large one has 4x as many
CHILD = r"""
import io, json, sys, threading, time
from rich.console import Console
import forgeml
from forgeml.config import load_config


def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key + ":"))


class Peak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.anon = self.file = 0
        self.running = True

    def run(self):
        while self.running:
            self.anon, self.file = max(self.anon, status("RssAnon")), max(self.file, status("RssFile"))
            time.sleep(0.002)


found = {}
for name, config in zip(sys.argv[1::2], sys.argv[2::2]):
    peak = Peak()
    peak.start()
    run = forgeml.train(load_config(config), console=Console(file=io.StringIO()))
    peak.running = False
    peak.join()
    found[name] = {"anon": peak.anon, "file": peak.file, "hwm": status("VmHWM"), "epochs": len(run.result.history)}
print(json.dumps(found))
"""


def _folders(root: Path) -> tuple[Path, Path]:
    """``large`` with 4 x SMALL images per class, ``small`` hard links to the first SMALL of each."""
    large, small = root / "large", root / "small"
    for label, kind in enumerate(SHAPES):
        (large / kind).mkdir(parents=True)
        (small / kind).mkdir(parents=True)
        for index in range(4 * SMALL):
            path = large / kind / f"{index}.png"
            render(kind, np.random.default_rng(1000 * label + index), (SIZE, SIZE)).save(
                path, compress_level=1
            )
            if index < SMALL:
                os.link(path, small / kind / path.name)
    return small, large


def _config(root: Path, source: Path) -> Path:
    config = root / f"{source.name}.yaml"
    config.write_text(
        json.dumps(
            {
                "name": source.name,
                "seed": 0,
                "output_dir": str(root / "runs"),
                "data": {"source": str(source)},
                "features": {"image": {"size": SIZE, "channels": 3}},
                "model": {"type": "cnn", "channels": [4], "dense": 8},
                "train": {"epochs": 1, "batch_size": 32, "threads": 1},
            }
        )
    )
    return config


@pytest.mark.slow
def test_training_memory_stays_flat_as_the_folder_grows(tmp_path: Path) -> None:
    small, large = _folders(tmp_path)
    configs = [_config(tmp_path, folder) for folder in (small, small, large)]
    names = ["warm-up", "N", "4N"]  # the first run pays for imports and first-use allocations
    argv = [item for pair in zip(names, map(str, configs), strict=True) for item in pair]
    env = os.environ | {"FORGEML_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(found[name]["epochs"] == 1 for name in names)
    caches = sorted(path.stat().st_size for path in (tmp_path / "cache" / "images").glob("*.npy"))
    row = 3 * SIZE * SIZE  # bytes of one decoded image
    # the large folder's training split (70%) was decoded into the cache and trained from there
    assert caches[-1] >= 0.65 * 4 * SMALL * len(SHAPES) * row, caches
    extra = 3 * SMALL * len(SHAPES) * row  # decoded uint8 bytes the large folder adds
    growth = found["4N"]["anon"] - found["N"]["anon"]
    print(f"\nanonymous peak: N {found['N']['anon'] / 2**20:.1f} MiB, 4N {found['4N']['anon'] / 2**20:.1f} MiB, "
          f"growth {growth / 2**20:+.1f} MiB for {extra / 2**20:.1f} MiB more decoded pixels "
          f"({4 * extra / 2**20:.1f} MiB as float32); VmHWM {found['N']['hwm'] / 2**20:.1f} -> "
          f"{found['4N']['hwm'] / 2**20:.1f} MiB; mapped file peak {found['N']['file'] / 2**20:.1f} -> "
          f"{found['4N']['file'] / 2**20:.1f} MiB")  # fmt: skip
    # a float32 split would add 4 x extra; even a uint8 copy in memory would add extra
    assert growth < extra, found


def test_a_cache_larger_than_memory_is_mapped_read_only(tmp_path: Path) -> None:
    """A copy-on-write map of a file larger than RAM is refused (ENOMEM: Linux counts it against the
    commit limit), so the cache is mapped read-only, and becomes a tensor without torch's warning."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = 2 * memory // (3 * 64 * 64) + 1
    path = tmp_path / "big.npy"  # sparse: twice the RAM in size, almost nothing on disk
    created = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, 3, 64, 64))
    created[-1] = 7
    created.flush()
    del created
    mapped = _mapped(path)
    assert mapped.shape == (rows, 3, 64, 64) and not mapped.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = pixel_tensor(mapped)
    assert int(tensor[-1].max()) == 7 and int(tensor[0].max()) == 0
