"""The gate for image files (a folder of class subfolders, or a table of image paths).

Each file is opened and fully decoded once, in parallel threads, by the same functions training
uses (``forgeml.data.images``), so a file the gate passes is a file training can read. Findings
name the files. Exact duplicates are found by a hash of the decoded pixels (after EXIF rotation,
as RGB), so a PNG and a BMP of the same picture are the same image, within the source and across
the source and the test source. ``forgeml check --fix`` writes the files to leave out to
``forgeml-exclude.txt`` (:func:`write_exclusions`); no image is moved or changed.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forgeml.checks.report import Finding
from forgeml.data.images import (
    EXTENSIONS,
    ImageError,
    ImageFiles,
    exclusion_path,
    open_image,
    pillow,
    read_file,
)
from forgeml.data.images import _parallel as parallel

MIN_SIDE = 16  # pixels: smaller images hold too little to learn from at any model size
MAX_ASPECT = 5.0  # longer side over shorter side; cropping to a square keeps a fifth of such a photo
FEW_PER_CLASS = 10  # images: below this a class is too small to learn and to test
EXAMPLES = 5  # files named per finding
# what goes into the exclusion list that `--fix` writes
EXCLUDED_BY_FIX = ("corrupt_image", "not_an_image", "image_too_large", "missing_image", "duplicate_images")
FIX_ADVICE = "replace or remove them, or `forgeml check SOURCE --fix` lists them in forgeml-exclude.txt (moves nothing)"


@dataclass(frozen=True)
class FileScan:
    """One file as the gate saw it: its problem (a check id) or its size and pixel hash."""

    path: str
    problem: str | None = None
    message: str = ""
    width: int = 0
    height: int = 0
    digest: str = ""


def scan_file(path: str) -> FileScan:
    """Open and fully decode ``path``; never raises for a bad file."""
    try:
        with read_file(path) as handle:
            image = open_image(handle, path)
            from PIL import ImageOps

            try:
                image = ImageOps.exif_transpose(image).convert("RGB")
            except (OSError, ValueError, SyntaxError, pillow().DecompressionBombError) as exc:
                raise ImageError(
                    f"{path}: truncated or corrupt ({exc})", kind="corrupt_image", path=path
                ) from None
    except ImageError as exc:
        return FileScan(path, exc.kind, str(exc))
    pixels = np.asarray(image)
    digest = hashlib.blake2b(pixels.tobytes() + str(pixels.shape).encode(), digest_size=16).hexdigest()
    return FileScan(path, None, "", image.width, image.height, digest)


def scan(files: ImageFiles) -> list[FileScan]:
    return parallel(lambda index: scan_file(files.paths[index]), range(len(files)))


def image_findings(
    files: ImageFiles, labels: pd.Series | None, test_files: ImageFiles | None = None
) -> list[Finding]:
    """Every image finding for ``files`` (and the overlap with ``test_files``), naming the files."""
    scans = scan(files)
    base = Path(files.source) if Path(files.source).is_dir() else Path(files.source).parent
    findings = _problems(scans, base)
    findings += _duplicates([s for s in scans if s.problem is None], base)
    findings += _ignored(files)
    if labels is not None:
        findings += _few_per_class(labels)
    if test_files is not None:
        findings += _overlap(scans, scan(test_files), base)
    return findings


def _name(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base.resolve() if not Path(path).is_relative_to(base) else base))
    except ValueError:
        return path


def _finding(check_id: str, paths: list[str], base: Path, what: str) -> Finding:
    shown = ", ".join(_name(path, base) for path in paths[:EXAMPLES])
    more = f" and {len(paths) - EXAMPLES} more" if len(paths) > EXAMPLES else ""
    advice = FIX_ADVICE if check_id in EXCLUDED_BY_FIX else None
    return Finding(check_id, None, f"{len(paths)} {what}: {shown}{more}", (), len(paths), advice=advice)


def _problems(scans: list[FileScan], base: Path) -> list[Finding]:
    groups: dict[str, list[str]] = defaultdict(list)
    for item in scans:
        if item.problem is not None:
            groups[item.problem].append(item.path)
        elif min(item.width, item.height) < MIN_SIDE:
            groups["tiny_image"].append(item.path)
        elif max(item.width, item.height) / min(item.width, item.height) > MAX_ASPECT:
            groups["extreme_aspect_ratio"].append(item.path)
    what = {
        "corrupt_image": "files are truncated or corrupt",
        "not_an_image": "files are not images in an allowed format (JPEG, PNG, WebP, BMP, GIF)",
        "image_too_large": "files are decompression bombs or over the pixel limit",
        "missing_image": "files named in the table cannot be opened",
        "tiny_image": f"images have a side under {MIN_SIDE} pixels",
        "extreme_aspect_ratio": f"images are more than {MAX_ASPECT:g} times wider than high (or the reverse)",
    }
    return [_finding(check_id, paths, base, what[check_id]) for check_id, paths in groups.items()]


def _duplicates(scans: list[FileScan], base: Path) -> list[Finding]:
    seen: dict[str, str] = {}
    copies = []
    for item in scans:
        if item.digest in seen:
            copies.append(item.path)
        else:
            seen[item.digest] = item.path
    return (
        [_finding("duplicate_images", copies, base, "images are pixel-for-pixel copies of an earlier file")]
        if copies
        else []
    )


def _overlap(scans: list[FileScan], test_scans: list[FileScan], base: Path) -> list[Finding]:
    test_digests = {item.digest for item in test_scans if item.problem is None}
    shared = [item.path for item in scans if item.problem is None and item.digest in test_digests]
    if not shared:
        return []
    return [
        _finding(
            "train_test_overlap", shared, base, "training images are pixel-for-pixel copies of test images"
        )
    ]


def _ignored(files: ImageFiles) -> list[Finding]:
    root = Path(files.source)
    if not root.is_dir():
        return []
    others = sorted(
        str(path)
        for path in root.glob("*/**/*")
        if path.is_file() and path.suffix.lower() not in EXTENSIONS and not path.name.startswith(".")
    )
    if not others:
        return []
    return [
        _finding(
            "ignored_files",
            others,
            root,
            f"files in class folders do not end in {', '.join(EXTENSIONS)} and are not read",
        )
    ]


def _few_per_class(labels: pd.Series) -> list[Finding]:
    counts = Counter(map(str, labels))
    few = sorted(name for name, count in counts.items() if count < FEW_PER_CLASS)
    if not few:
        return []
    shown = ", ".join(f"{name} ({counts[name]})" for name in few[:EXAMPLES])
    return [
        Finding(
            "few_images_per_class",
            None,
            f"{len(few)} classes have under {FEW_PER_CLASS} images: {shown}",
            (),
            len(few),
        )
    ]


def fix_images(source: str) -> tuple[Path, int] | None:
    """``forgeml check --fix`` for image files: the exclusion list's path and size; None for other data."""
    from forgeml.checks.reading import read_source

    if Path(source).suffix.lower() in (".yaml", ".yml", ".npz") or source.startswith("sklearn:"):
        return None
    table = read_source(source)
    return None if table.image_files is None else write_exclusions(source, table.image_files)


def write_exclusions(source: str, files: ImageFiles) -> tuple[Path, int]:
    """Write the files that the fixable findings name to the source's exclusion list; nothing is moved.

    The list holds paths relative to the folder (or the table's folder), one per line; training,
    checking and prediction leave them out. Returns the list's path and how many files it holds.
    """
    scans = scan(files)
    bad = [item.path for item in scans if item.problem in EXCLUDED_BY_FIX]
    good = [item for item in scans if item.problem is None]
    seen: set[str] = set()
    for item in good:
        if item.digest in seen:
            bad.append(item.path)
        seen.add(item.digest)
    target = exclusion_path(source)
    base = target.parent.resolve()
    previous = target.read_text(encoding="utf-8").splitlines() if target.is_file() else []
    previous = [line for line in previous if not line.startswith("#")]
    lines = sorted({*previous, *(str(Path(path).resolve().relative_to(base)) for path in bad)} - {""})
    target.write_text(
        "# files forgeml leaves out (forgeml check --fix)\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return target, len(bad)
