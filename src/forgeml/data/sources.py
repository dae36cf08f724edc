"""Load a data source named in the config into :class:`RawData`: a table and/or images, and a target.

A source is a file path (CSV, Parquet, JSON Lines, NumPy ``.npz``) or ``sklearn:<name>`` for one of
scikit-learn's bundled data sets, which ship inside the package and need no download. A folder of
class subfolders, or a table with a column of image paths, gives image files (``forgeml.data.images``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forgeml.data.images import (
    ImageFiles,
    exclusion_path,
    image_column,
    is_image_source,
    list_folder,
    read_exclusions,
    table_files,
)
from forgeml.data.tables import read_table
from forgeml.errors import ConfigError, DataError

SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
DEFAULT_TARGET = "target"


@dataclass(frozen=True)
class RawData:
    """Rows as read from a source, before any feature is fitted.

    ``table`` holds the input columns (it has no columns for pure image data), ``images`` is
    ``(N, C, H, W)`` when the source has images (:class:`ImageFiles` for image files), ``target`` is None when the source has no labels
    (prediction input).
    """

    table: pd.DataFrame
    images: np.ndarray | ImageFiles | None
    target: pd.Series | None
    source: str

    def __len__(self) -> int:
        return len(self.table) if self.images is None else len(self.images)

    def take(self, indices: np.ndarray) -> RawData:
        """The rows at ``indices`` (positions), with a fresh 0..n-1 index."""
        return RawData(
            table=self.table.iloc[indices].reset_index(drop=True),
            images=None if self.images is None else self.images[indices],
            target=None if self.target is None else self.target.iloc[indices].reset_index(drop=True),
            source=self.source,
        )


def load_source(
    source: str, target: str | None, *, require_target: bool = True, allow_outside_paths: bool = False
) -> RawData:
    """Read ``source`` and separate the target column from the inputs.

    With ``require_target=False`` (prediction) a missing target column is fine and any present one is dropped.
    """
    if source.startswith("sklearn:"):
        raw = _load_sklearn(source.removeprefix("sklearn:"))
    elif is_image_source(source):
        files, labels = list_folder(Path(source))
        raw = RawData(pd.DataFrame(index=range(len(files))), files, labels, source)
    else:
        path = Path(source)
        if path.suffix.lower() == ".npz":
            raw = _load_npz(path)
        else:
            raw = _image_table(read_table(path), path, target, allow_outside_paths)
    raw = _split_off_target(raw, target, require_target)
    if raw.target is not None and len(raw.target) and bool(raw.target.isna().all()):
        name = target or DEFAULT_TARGET
        raise DataError(
            f"{raw.source}: the target column {name!r} is empty in all {len(raw.target)} rows; there is "
            "nothing to learn from. Fill in the labels, or point data.target at the column that has them.",
            path=raw.source,
            column=name,
        )
    return raw


def _image_table(table: pd.DataFrame, path: Path, target: str | None, allow_outside: bool) -> RawData:
    """A table; one with a column of image paths gives those files (its other columns are not inputs)."""
    column = image_column(table.drop(columns=[target], errors="ignore"))
    if column is None:
        return RawData(table=table, images=None, target=None, source=str(path))
    files = table_files(table, column, path, allow_outside=allow_outside)
    keep = ~np.isin(np.asarray(files.paths, dtype=object), list(read_exclusions(exclusion_path(str(path)), path.parent)))
    if target is None:  # checking: every other column may be the label
        kept = table.drop(columns=[column])
    else:
        kept = table[[target]] if target in table.columns else pd.DataFrame(index=table.index)
    rows = np.flatnonzero(keep)
    return RawData(kept.iloc[rows].reset_index(drop=True), files[rows], None, str(path))


def _split_off_target(raw: RawData, target: str | None, require_target: bool) -> RawData:
    if raw.target is not None:  # npz and sklearn sets carry their labels separately
        return raw if require_target else RawData(raw.table, raw.images, None, raw.source)
    if target is None:
        if require_target:
            raise ConfigError(
                f"data.target is required for the table {raw.source}. Set it to the column to predict.",
                key="data.target",
            )
        return raw
    if target not in raw.table.columns:
        if not require_target:
            return raw
        columns = ", ".join(map(str, raw.table.columns[:20]))
        raise DataError(
            f"{raw.source}: target column {target!r} not found. Columns are: {columns}. Fix data.target in the config.",
            path=raw.source,
            column=target,
        )
    labels = raw.table[target]
    table = raw.table.drop(columns=[target])
    return RawData(
        table=table, images=raw.images, target=labels if require_target else None, source=raw.source
    )


def _load_sklearn(name: str) -> RawData:
    if name not in SKLEARN_SETS:
        raise ConfigError(
            f"data.source: unknown scikit-learn data set {name!r}. Choose one of: {', '.join(SKLEARN_SETS)}.",
            key="data.source",
        )
    import sklearn.datasets as datasets

    bunch = getattr(datasets, f"load_{name}")()
    target = pd.Series(bunch.target, name=DEFAULT_TARGET)
    if name == "digits":  # 8x8 grey images, pixel values 0..16
        images = bunch.images.astype(np.float32)[:, None, :, :]
        return RawData(
            table=pd.DataFrame(index=range(len(images))),
            images=images,
            target=target,
            source=f"sklearn:{name}",
        )
    table = pd.DataFrame(bunch.data, columns=[str(column) for column in bunch.feature_names])
    if hasattr(bunch, "target_names") and name != "diabetes":
        target = pd.Series(np.asarray(bunch.target_names)[bunch.target], name=DEFAULT_TARGET)
    return RawData(table=table, images=None, target=target, source=f"sklearn:{name}")


def _load_npz(path: Path) -> RawData:
    """Arrays ``x`` (or ``images``/``X``) and optionally ``y`` (or ``target``/``labels``)."""
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check data.source in the config or the path you passed.", path=str(path)
        )
    try:
        # allow_pickle=False: an .npz with object arrays could run code when loaded.
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable .npz archive of numeric arrays ({exc}).", path=str(path)
        ) from None
    inputs = _first_present(arrays, ("images", "x", "X"))
    if inputs is None:
        raise DataError(
            f"{path}: expected an array named 'images' or 'x'; found {sorted(arrays)}.", path=str(path)
        )
    labels = _first_present(arrays, ("y", "target", "labels"))
    if labels is not None and len(labels) != len(inputs):
        raise DataError(
            f"{path}: the inputs have {len(inputs)} rows but the labels have {len(labels)}; "
            "each input row needs exactly one label. Save both arrays from the same rows.",
            path=str(path),
        )
    target = None if labels is None else pd.Series(labels, name=DEFAULT_TARGET)
    if not np.issubdtype(inputs.dtype, np.number):
        raise DataError(f"{path}: the input array must be numeric, got dtype {inputs.dtype}.", path=str(path))
    if inputs.ndim == 2:
        table = pd.DataFrame(inputs, columns=[f"x{i}" for i in range(inputs.shape[1])])
        return RawData(table=table, images=None, target=target, source=str(path))
    images = _to_nchw(inputs, path).astype(np.float32)
    return RawData(
        table=pd.DataFrame(index=range(len(images))), images=images, target=target, source=str(path)
    )


def _first_present(arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray | None:
    return next((arrays[name] for name in names if name in arrays), None)


def _to_nchw(images: np.ndarray, path: Path) -> np.ndarray:
    if images.ndim == 3:  # (N, H, W) grey images
        return images[:, None, :, :]
    if images.ndim == 4:
        # Grey or RGB channels first wins; then channels last (PIL, Keras); a 4 first means RGBA.
        if images.shape[1] in (1, 3):
            return images
        if images.shape[3] in (1, 3, 4):
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        if images.shape[1] == 4:
            return images
    raise DataError(
        f"{path}: images must be (N, H, W), (N, C, H, W) or (N, H, W, C); got shape {images.shape}.",
        path=str(path),
    )
