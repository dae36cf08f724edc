"""The decoder every stage shares: formats, modes, EXIF, resize policies, tables of paths, the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from forgeml.data import load_source
from forgeml.data.images import DecodeOptions, ImageError, ImageFiles, decode_file, decode_files
from forgeml.errors import DataError
from forgeml.features.image import ImageFeatures, scale_pixels

RGB = DecodeOptions(8, 8, 3)


def _save(image: Image.Image, path: Path, **options: object) -> str:
    image.save(path, **options)
    return str(path)


def test_every_format_and_mode_decodes_to_the_same_pixels(tmp_path: Path) -> None:
    """A red square saved as JPEG/PNG/WebP/BMP/GIF, palette+alpha, 16-bit grey and RGBA: one result each."""
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    lossless = [_save(red, tmp_path / f"a.{ext}") for ext in ("png", "bmp", "gif")]
    lossless.append(_save(red.convert("RGBA"), tmp_path / "rgba.png"))
    lossless.append(_save(red.convert("P"), tmp_path / "p.png"))
    for path in lossless:
        assert (decode_file(path, RGB) == np.array([255, 0, 0], np.uint8)[:, None, None]).all(), path
    for path in (_save(red, tmp_path / "a.jpg", quality=95), _save(red, tmp_path / "a.webp", quality=95)):
        assert np.abs(decode_file(path, RGB).astype(int) - [[[255]], [[0]], [[0]]]).max() < 8, path
    grey16 = Image.fromarray(np.full((8, 8), 65535, np.uint16))  # Pillow's convert("L") would clip this
    assert (decode_file(_save(grey16, tmp_path / "g16.png"), DecodeOptions(8, 8, 1)) == 255).all()
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent: composited over white
    assert (decode_file(_save(clear, tmp_path / "clear.png"), RGB) == 255).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A 16x8 image whose EXIF says 'rotate 90': decoded upright it is 8 wide and 16 high."""
    image = Image.new("RGB", (16, 8), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 8, 8))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 clockwise to display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif, quality=95)
    pixels = decode_file(path, DecodeOptions(16, 8, 1, "stretch"))[0]  # (H=16, W=8)
    assert pixels[:8].mean() > 200 and pixels[8:].mean() < 50  # the white half is now on top


def test_resize_policies_crop_pad_and_stretch(tmp_path: Path) -> None:
    wide = Image.new("L", (40, 10), 0)
    wide.paste(255, (15, 0, 25, 10))  # a white bar in the middle third
    path = _save(wide, tmp_path / "wide.png")
    crop = decode_file(path, DecodeOptions(10, 10, 1, "crop"))[0]
    pad = decode_file(path, DecodeOptions(10, 10, 1, "pad"))[0]
    stretch = decode_file(path, DecodeOptions(10, 10, 1, "stretch"))[0]
    assert crop.mean() == 255  # the centre 10x10 is all bar
    assert pad[0].max() == 0 and pad[-1].max() == 0 and pad[5].max() > 200  # black bands above and below
    assert 40 < stretch.mean() < 100  # the whole width squeezed: about a quarter white


def test_bad_files_raise_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "page.png").write_bytes(b"%PDF-1.7\n")
    good = _save(Image.new("RGB", (64, 64), (9, 9, 9)), tmp_path / "ok.png")
    (tmp_path / "cut.png").write_bytes(Path(good).read_bytes()[:60])
    for name, kind in (
        ("page.png", "not_an_image"),
        ("cut.png", "corrupt_image"),
        ("gone.png", "missing_image"),
    ):
        with pytest.raises(ImageError, match=name) as caught:
            decode_file(str(tmp_path / name), RGB)
        assert caught.value.kind == kind


def test_a_table_of_paths_and_paths_outside_its_folder(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    for index in range(3):
        _save(Image.new("RGB", (8, 8), (index * 80, 0, 0)), tmp_path / "img" / f"{index}.png")
    pd.DataFrame({"file": [f"img/{i}.png" for i in range(3)], "label": ["a", "b", "a"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    raw = load_source(str(tmp_path / "t.csv"), "label")
    assert isinstance(raw.images, ImageFiles) and list(raw.target) == ["a", "b", "a"]
    assert list(raw.table.columns) == []  # the path column is the image, not a feature
    pd.DataFrame({"file": ["../outside.png"], "label": ["a"]}).to_csv(
        tmp_path / "img" / "t2.csv", index=False
    )
    with pytest.raises(DataError, match=r"outside the table's folder.*allow_outside_paths"):
        load_source(str(tmp_path / "img" / "t2.csv"), "label")


def test_a_class_folder_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    os.mkdir(os.path.join(os.fsencode(root), b"caf\xe9"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_source(str(root), None)


def test_the_cache_is_keyed_by_file_bytes(tmp_path: Path) -> None:
    paths = [_save(Image.new("RGB", (12, 12), (i * 50, 0, 0)), tmp_path / f"{i}.png") for i in range(3)]
    files, cache = ImageFiles(tuple(paths), str(tmp_path)), tmp_path / "cache"
    first = decode_files(files, RGB, cache=cache)
    assert isinstance(first, np.memmap) and len(list(cache.glob("*.npy"))) == 1
    again = decode_files(files, RGB, cache=cache)
    assert again.filename == first.filename  # mapped, not decoded again
    _save(Image.new("RGB", (12, 12), (0, 255, 0)), Path(paths[0]))  # an edited file misses the cache
    edited = decode_files(files, RGB, cache=cache)
    assert edited.filename != first.filename and edited[0, 1].min() == 255
    assert np.array_equal(edited, decode_files(files, RGB, cache=None))


def test_image_features_fit_channels_and_save_the_decoding(tmp_path: Path) -> None:
    grey = [_save(Image.new("L", (20, 10), 128), tmp_path / f"{i}.png") for i in range(2)]
    features = ImageFeatures(size=[6, 8], cache=False).fit(ImageFiles(tuple(grey), str(tmp_path)))
    assert features.shape_ == (1, 6, 8)
    restored = ImageFeatures.from_json(features.to_json())
    pixels = restored.transform(ImageFiles(tuple(grey), str(tmp_path)))
    # 8-bit pixels stay uint8 (the split is never float32 in memory); each batch is scaled later
    assert pixels.shape == (2, 1, 6, 8) and pixels.dtype == np.uint8 and (pixels == 128).all()
    assert torch.allclose(scale_pixels(torch.from_numpy(pixels)), torch.full((2, 1, 6, 8), 128 / 255))
