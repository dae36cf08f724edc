"""The gate for image files: each problem a finding that names the file; --fix writes a list, moves nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from image_fixtures import bomb_png, make_shapes, shape_image
from PIL import Image
from rich.console import Console

import forgeml
from forgeml.data import load_source


def _plant_problems(root: Path) -> None:
    """One of each problem among otherwise good shapes."""
    circle = root / "circle"
    (circle / "page.jpg").write_bytes(b"%PDF-1.7 not a picture")
    good = (circle / "0.png").read_bytes()
    (circle / "cut.png").write_bytes(good[: len(good) // 2])
    (circle / "bomb.png").write_bytes(bomb_png())  # 45 MP in under 100 bytes
    Image.new("RGB", (6, 6), "red").save(circle / "tiny.png")
    Image.new("RGB", (300, 20), "red").save(circle / "strip.png")
    Image.open(circle / "1.png").save(circle / "copy.bmp")  # same pixels, another format
    (circle / "notes.txt").write_text("not read")
    (root / "rare").mkdir()
    shape_image("circle", 99).save(root / "rare" / "0.png")
    shape_image("circle", 98).save(root / "rare" / "1.png")


def test_each_problem_is_a_finding_naming_the_file(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "photos", 12)
    _plant_problems(root)
    report = forgeml.check(str(root))
    found = {finding.id: finding.message for finding in report.findings}
    assert "circle/page.jpg" in found["not_an_image"]
    assert "circle/cut.png" in found["corrupt_image"]
    assert "circle/bomb.png" in found["image_too_large"]
    assert "circle/tiny.png" in found["tiny_image"]
    assert "circle/strip.png" in found["extreme_aspect_ratio"]
    assert "circle/copy.bmp" in found["duplicate_images"] and "1 images" in found["duplicate_images"]
    assert "rare (2)" in found["few_images_per_class"]
    assert "circle/notes.txt" in found["ignored_files"]
    assert {f.id for f in report.blocking} == {"not_an_image", "corrupt_image", "image_too_large"}


def test_fix_writes_an_exclusion_list_that_loading_honours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_shapes(tmp_path / "photos", 12)
    _plant_problems(root)
    before = sorted(path.name for path in (root / "circle").iterdir())
    monkeypatch.chdir(tmp_path)  # the folder as a user types it: relative, with a slash
    report = forgeml.check("photos/", fix=True, console=Console(file=io.StringIO()))
    assert report.passed, [f.describe() for f in report.blocking]
    assert sorted(path.name for path in (root / "circle").iterdir()) == before  # nothing moved
    listed = (root / "forgeml-exclude.txt").read_text().splitlines()[1:]
    assert sorted(listed) == ["circle/bomb.png", "circle/copy.bmp", "circle/cut.png", "circle/page.jpg"]
    paths = load_source(str(root), None).images.paths
    assert not any(Path(path).name in {"bomb.png", "copy.bmp", "cut.png", "page.jpg"} for path in paths)


def test_copies_across_the_source_and_the_test_source(tmp_path: Path) -> None:
    train = make_shapes(tmp_path / "train", 10)
    test = make_shapes(tmp_path / "test", 2)  # the same seeds: pixel-for-pixel the first two of each class
    report = forgeml.check(str(train), test_source=str(test))
    overlap = next(f for f in report.findings if f.id == "train_test_overlap")
    assert overlap.count == 6 and "circle/0.png" in overlap.message and overlap.blocking
