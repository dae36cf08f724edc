"""``forgeml init photos/`` writes a config that trains: the image source, a size read from the files, the CNN.

Before, ``forgeml init`` on a folder failed with an IndexError (a folder has no table columns to take
the target from), and the default model for data that is not a table is an MLP over flat pixels.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

import forgeml
from forgeml.cli import main
from forgeml.config import load_config

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from make_shapes import SHAPES, render


def _photos(root: Path, per_class: int, size: tuple[int, int]) -> Path:
    for label, kind in enumerate(SHAPES):
        (root / kind).mkdir(parents=True)
        for index in range(per_class):
            render(kind, np.random.default_rng(100 * label + index), size).save(root / kind / f"{index}.png")
    return root


def test_init_on_a_folder_writes_a_config_that_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEML_CACHE", str(tmp_path / "cache"))  # decoded pixels: not in ~/.cache
    photos = _photos(tmp_path / "photos", 12, (40, 30))  # width x height: the shorter side is 30
    config = tmp_path / "config.yaml"
    assert main(["init", str(photos), "-o", str(config)]) == 0
    assert f"forgeml run {config}" in capsys.readouterr().out
    text = config.read_text()
    assert "36 images; target 'target' (each image's class is the name of its folder)" in text
    loaded = load_config(config, [f"output_dir={tmp_path / 'runs'}", "train.epochs=1"])
    assert loaded.data.source == str(photos) and loaded.data.target is None
    assert loaded.features.image.size == 30 and loaded.model.type == "cnn"
    # every commented-out setting is valid YAML at its place once uncommented
    uncommented = "\n".join(
        line[2:] if re.match(r"# +[a-z_]+:", line) else line for line in text.splitlines()
    )
    (tmp_path / "all.yaml").write_text(uncommented)
    full = load_config(tmp_path / "all.yaml")
    assert full.features.image.augment.enabled and full.train.early_stopping is not None
    run = forgeml.train(loaded, console=Console(file=io.StringIO()))
    assert run.pipeline.image_ is not None and run.pipeline.image_.shape_ == (3, 30, 30)
    assert len(run.result.history) == 1


def test_init_keeps_small_images_at_their_size_and_reads_a_table_of_paths(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 4, (12, 12))
    assert "size: 12  #" in forgeml.init(photos)
    big = tmp_path / "big"
    (big / "a").mkdir(parents=True)
    (big / "b").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (300, 200), "white").save(big / name / "0.png")
    assert "size: 64  #" in forgeml.init(big)  # photos are scaled down to the CNN's default size
    table = tmp_path / "photos" / "files.csv"
    # the table's other columns are not model inputs: a constant one must not make every row a conflict
    rows = "".join(f"{k}/{i}.png,{k},phone\n" for k in SHAPES for i in range(4))
    table.write_text("file,shape,camera\n" + rows)
    text = forgeml.init(table, target="shape")
    assert "12 images; target 'shape' (as given)" in text and "  type: cnn" in text
    assert "blocking findings" not in text, text
    (tmp_path / "from_table.yaml").write_text(text)
    loaded = load_config(tmp_path / "from_table.yaml")
    assert loaded.data.target == "shape" and loaded.features.image.size == 12


def test_init_on_a_folder_without_images_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("no photos here")
    assert main(["init", str(tmp_path / "empty")]) == 2
    assert f"{tmp_path / 'empty'}: no image files" in capsys.readouterr().err
