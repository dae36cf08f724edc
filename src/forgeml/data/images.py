"""Image files as a source: a folder of class subfolders, or a table with an image-path column.

The data stage only lists files (:class:`ImageFiles`); pixels are decoded where a fitted
:class:`~forgeml.features.image.ImageFeatures` knows the size, by :func:`decode_files`, the one
decoder used at training, evaluation, prediction and serving (:func:`decode_bytes` for uploads).

Decoding (Pillow): an allowlist of formats (JPEG, PNG, WebP, BMP, GIF: first frame only), a pixel
cap checked from the header before any pixel is decoded (:data:`MAX_PIXELS`, also set as Pillow's
``MAX_IMAGE_PIXELS``), EXIF orientation applied, 16-bit grey scaled to 8 bits (Pillow's own
``convert`` clips it), transparency composited over white, then RGB or grey. Resize policy
(``features.image.resize``): ``crop`` scales the shorter side to the size and cuts the centre,
``pad`` scales the longer side to the size and pads with black, ``stretch`` ignores the aspect ratio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import DataError
from forgeml.extras import require

logger = logging.getLogger(__name__)
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# Our own cap, below Pillow's default 89.5 MP: a 40 MP photo decodes to 120 MB of RGB, a bomb does not.
MAX_PIXELS = 40_000_000
EXCLUDE_FILE = "forgeml-exclude.txt"
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Part of every cache key: bump when decoding changes, so old caches are not reused.
DECODER_VERSION = 1
# Decoding threads. Pillow releases the GIL while it decodes and resizes, so threads scale like
# processes here without pickling pixels between processes (benchmarks/image_input.py).
WORKERS = min(8, os.cpu_count() or 1)


class ImageError(DataError):
    """A file that cannot be used as an image; ``kind`` is the gate's check id for it."""

    def __init__(self, message: str, *, kind: str, path: str) -> None:
        super().__init__(message, path=path)
        self.kind = kind


@dataclass(frozen=True)
class DecodeOptions:
    """How a file becomes a ``(C, H, W)`` uint8 array: the size, resize policy and channel count."""

    height: int
    width: int
    channels: int  # 1 (grey) or 3 (RGB)
    resize: str = "crop"  # crop | pad | stretch

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "channels": self.channels, "resize": self.resize}


@dataclass(frozen=True)
class ImageFiles:
    """Paths of image files, one per row, not yet decoded (``RawData.images`` of a folder source)."""

    paths: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, indices: Any) -> ImageFiles:
        picked = np.asarray(self.paths, dtype=object)[indices]
        return ImageFiles(tuple(np.atleast_1d(picked).tolist()), self.source)


def pillow() -> Any:
    """PIL.Image with our pixel cap set (it is process-wide; every decode calls this first)."""
    image = require("PIL.Image", "images", "image files (data.source: a folder of images)")
    image.MAX_IMAGE_PIXELS = MAX_PIXELS
    return image


def is_image_source(source: str) -> bool:
    """A folder (the ImageFolder layout); tables with an image-path column are found when read."""
    return Path(source).is_dir()


def list_folder(root: Path) -> tuple[ImageFiles, pd.Series]:
    """Every image file under ``root/<class>/`` (sorted), and its class (the folder name)."""
    if not root.is_dir():
        raise DataError(f"{root}: folder not found. Check data.source.", path=str(root))
    classes = sorted(
        entry for entry in os.listdir(root) if (root / entry).is_dir() and not entry.startswith(".")
    )
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(
                f"{root}: the class folder {name.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8; "
                "its name cannot be a class label. Rename the folder (e.g. with convmv).",
                path=str(root),
            ) from None
    excluded = read_exclusions(root / EXCLUDE_FILE, root)
    paths, labels = [], []
    for name in classes:
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in EXTENSIONS and path.is_file() and str(path.resolve()) not in excluded:
                paths.append(str(path))
                labels.append(name)
    if not paths:
        raise DataError(
            f"{root}: no image files ({', '.join(EXTENSIONS)}) in class subfolders. Put each class's "
            "images in a folder named after the class: photos/cat/1.jpg, photos/dog/2.png.",
            path=str(root),
        )
    _log_excluded(excluded, root)
    return ImageFiles(tuple(paths), str(root)), pd.Series(labels, name="target")


def image_column(table: pd.DataFrame) -> str | None:
    """The first column whose every present value is a path ending in an image extension."""
    for name in table.columns:
        values = table[name].dropna()
        if len(values) and values.map(lambda v: isinstance(v, str) and v.lower().endswith(EXTENSIONS)).all():
            return str(name)
    return None


def has_image_paths(column: Any) -> bool:
    """Whether every present value of a pyarrow string column ends in an image extension."""
    import pyarrow.compute as pc

    present = pc.drop_null(column)
    if len(present) == 0 or not str(present[0].as_py()).lower().endswith(EXTENSIONS):
        return False  # most text columns fail on their first value: no pass over the column
    pattern = r"\.(" + "|".join(ext[1:] for ext in EXTENSIONS) + r")$"
    return bool(pc.all(pc.match_substring_regex(present, pattern, ignore_case=True)).as_py())


def table_files(table: pd.DataFrame, column: str, path: Path, *, allow_outside: bool = False) -> ImageFiles:
    """The files named in ``column`` of the table at ``path``, relative to the table's folder.

    A path that leads outside that folder (``../``, absolute) is refused unless ``allow_outside``
    (``data.allow_outside_paths``): a table from elsewhere must not make us read arbitrary files.
    """
    base = path.parent.resolve()
    files = []
    for row, value in enumerate(table[column].tolist(), start=1):
        if not isinstance(value, str) or not value:
            raise DataError(
                f"{path}: row {row} has no image path in column {column!r}.", path=str(path), row=row
            )
        resolved = (base / value).resolve()
        if not allow_outside and not resolved.is_relative_to(base):
            raise DataError(
                f"{path}: row {row}, column {column!r}: {value!r} points outside the table's folder {base}. "
                "Move the images under it, or set data.allow_outside_paths: true.",
                path=str(path),
                column=column,
                row=row,
            )
        files.append(str(resolved))
    return ImageFiles(tuple(files), str(path))


def exclusion_path(source: str) -> Path:
    """Where ``forgeml check --fix`` writes the files to leave out, and where loading reads them."""
    path = Path(source)
    return path / EXCLUDE_FILE if path.is_dir() else path.with_name(path.name + "." + EXCLUDE_FILE)


def read_exclusions(list_file: Path, base: Path) -> set[str]:
    """Absolute paths listed (one per line, relative to ``base``) in ``list_file``; empty if none."""
    if not list_file.is_file():
        return set()
    lines = list_file.read_text(encoding="utf-8").splitlines()
    return {
        str((base / line.strip()).resolve()) for line in lines if line.strip() and not line.startswith("#")
    }


def _log_excluded(excluded: set[str], base: Path) -> None:
    if excluded:
        logger.warning("leaving out %d files listed in %s", len(excluded), base / EXCLUDE_FILE)


def open_image(data: Any, name: str) -> Any:
    """A Pillow image from a path or file object, checked against the allowlist and the pixel cap.

    Only the header is read here; raises DataError naming ``name`` for anything that is not one of
    :data:`FORMATS` or is larger than :data:`MAX_PIXELS`.
    """
    image_module = pillow()
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # the cap below refuses it; Pillow's warning would only be noise
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            image = image_module.open(data, formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: not an image in a supported format ({', '.join(FORMATS)}).",
            kind="not_an_image",
            path=name,
        ) from None
    except image_module.DecompressionBombError as exc:
        raise ImageError(f"{name}: {exc}", kind="image_too_large", path=name) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"{name}: cannot be read as an image ({exc}).", kind="corrupt_image", path=name
        ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: {width}x{height} pixels is over the limit of {MAX_PIXELS:,} (a decompression bomb "
            "or a huge scan). Downscale it, or leave it out.",
            kind="image_too_large",
            path=name,
        )
    return image


def decode(image: Any, options: DecodeOptions, name: str) -> np.ndarray:
    """A header-checked Pillow image -> ``(C, H, W)`` uint8 at ``options``' size (the module's policy)."""
    from PIL import ImageOps

    try:
        if image.format == "JPEG":  # decode at a reduced scale when the target is much smaller
            image.draft("RGB" if options.channels == 3 else "L", _covering(image.size, options))
        image = ImageOps.exif_transpose(image)
        image = _to_mode(image, options.channels)
        image = _resize(image, options)
        array = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"{name}: the image is truncated or corrupt ({exc}). Replace it, or leave it out with "
            "`forgeml check <source> --fix` (writes an exclusion list).",
            kind="corrupt_image",
            path=name,
        ) from None
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def decode_file(path: str, options: DecodeOptions) -> np.ndarray:
    with read_file(path) as handle:
        return decode(open_image(handle, path), options, path)


def read_file(path: str) -> Any:
    """An open binary file, or ImageError(missing_image) naming it."""
    try:
        return open(path, "rb")  # the caller's with statement closes it
    except OSError as exc:
        raise ImageError(
            f"{path}: cannot open it ({exc.strerror}).", kind="missing_image", path=path
        ) from None


def _covering(size: tuple[int, int], options: DecodeOptions) -> tuple[int, int]:
    """The smallest draft size that still covers the target after the resize policy."""
    width, height = size
    if options.resize == "pad":
        return options.width, options.height
    scale = max(options.width / width, options.height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_mode(image: Any, channels: int) -> Any:
    pil = pillow()
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.int64)
        peak = 65535 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255
        grey = pil.fromarray((np.clip(pixels, 0, peak) * 255 // peak).astype(np.uint8), mode="L")
        return grey if channels == 1 else grey.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = pil.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = pil.alpha_composite(white, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def _resize(image: Any, options: DecodeOptions) -> Any:
    pil = pillow()
    target = (options.width, options.height)
    if image.size == target:
        return image
    if options.resize == "stretch":
        return image.resize(target, pil.Resampling.BILINEAR, reducing_gap=3.0)
    width, height = image.size
    if options.resize == "pad":
        scale = min(options.width / width, options.height / height)
    else:
        scale = max(options.width / width, options.height / height)
    scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = image.resize(scaled, pil.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (scaled[0] - options.width) // 2, (scaled[1] - options.height) // 2
    if options.resize == "pad":  # paste centred on black
        canvas = pil.new(image.mode, target)
        canvas.paste(image, (-left, -top))
        return canvas
    return image.crop((left, top, left + options.width, top + options.height))


def decode_bytes(data: bytes, options: DecodeOptions, name: str = "upload") -> np.ndarray:
    """One uploaded file's bytes -> ``(C, H, W)`` uint8, exactly as files are decoded for training."""
    import io

    return decode(open_image(io.BytesIO(data), name), options, name)


def grey_only(files: ImageFiles) -> bool:
    """Whether every file is stored grey (headers only): ``features.image.channels: auto`` then picks 1."""
    for path in files.paths:
        with read_file(path) as handle:
            if open_image(handle, path).mode not in GREY_MODES:
                return False
    return True


def decode_files(files: ImageFiles, options: DecodeOptions, *, cache: Path | None = None) -> np.ndarray:
    """``(N, C, H, W)`` uint8 for ``files``, decoded in parallel threads.

    With ``cache`` (a folder) the array is written to ``<cache>/<key>.npy`` and memory-mapped: the
    key hashes the options, the decoder version and every file's bytes, so a later epoch or run
    with the same files and options maps the file instead of decoding, and an edited file misses.
    Decoding writes each row straight into the memory map, so memory stays flat for large folders.
    """
    shape = (len(files), options.channels, options.height, options.width)
    if cache is None:
        out = np.empty(shape, dtype=np.uint8)
        _decode_into(out, files, options)
        return out
    target = cache / f"{cache_key(files, options)}.npy"
    if target.is_file():
        return _mapped(target)
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
    try:
        _decode_into(out, files, options)
        out.flush()
        del out
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return _mapped(target)


def _mapped(path: Path) -> np.ndarray:
    """The cache file mapped read-only: pages are read from the file as rows are used.

    Not copy-on-write (``mode="c"``): Linux counts a private writable mapping against its memory
    commit limit, so mapping a 40 GB file on a 23 GB machine failed with ENOMEM (measured; the
    default heuristic overcommit) and a cache larger than RAM could not be used at all. Not
    ``"r+"``: a stray write would change the cache for every later run. Read-only, a stray write
    through a tensor crashes the process instead (``forgeml.features.image.pixel_tensor``).
    """
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _decode_into(out: np.ndarray, files: ImageFiles, options: DecodeOptions) -> None:
    def one(index: int) -> None:
        out[index] = decode_file(files.paths[index], options)

    _parallel(one, range(len(files)))


def _parallel(work: Callable[[int], Any], items: Iterable[int]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(work, items))


def file_digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()[:32]


def cache_key(files: ImageFiles, options: DecodeOptions) -> str:
    digests = _parallel(lambda index: file_digest(files.paths[index]), range(len(files)))
    header = json.dumps({"options": options.to_json(), "decoder": DECODER_VERSION}, sort_keys=True)
    return hashlib.blake2b("\n".join([header, *digests]).encode(), digest_size=16).hexdigest()


def cache_folder() -> Path:
    """``$FORGEML_CACHE/images`` or ``~/.cache/forgeml/images``: decoded-pixel caches (safe to delete)."""
    root = os.environ.get("FORGEML_CACHE") or Path.home() / ".cache" / "forgeml"
    return Path(root) / "images"
