"""The starter config for a data file: what ``forgeml init DATA`` writes and a newcomer edits.

The data is checked once (the same checks as the gate), and the config says what was decided and
why: the source, the target, the task, the columns training will leave out (ids, constants, empty
columns, free text, a feature that gives the answer away), each with its reason as a comment, then
the settings a newcomer changes first, commented out at their defaults. The text loads with
``load_config`` as it is.

Image files (a folder of class subfolders, or a table with a column of image paths) get the image
settings instead of the table ones: ``features.image.size`` from the files' headers and
``model.type: cnn``, since the default model for data that is not a table flattens the pixels
into an MLP.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import yaml

from forgeml.checks.reading import RawTable, read_source
from forgeml.checks.report import DataReport
from forgeml.checks.runner import check
from forgeml.checks.verdict import flow_scalar
from forgeml.config import (
    AutoConfig,
    CNNConfig,
    EarlyStoppingConfig,
    ImageConfig,
    MLPConfig,
    TrainConfig,
    default_model_type,
)
from forgeml.data.images import ImageError, ImageFiles, open_image, read_file
from forgeml.data.sources import DEFAULT_TARGET

# Why a column is left out, by the finding (or kind) that says so.
LEAVE_OUT = {
    "identifier_column": "an id: unique per row, so a model would memorise it instead of learning",
    "constant_column": "one value in every row: it carries no information",
    "empty_column": "every value is missing",
    "target_leakage": "it alone predicts the target almost perfectly; keep it only if it is known at prediction time",
}
FREE_TEXT = "free text: list it in features.text_columns to tokenize it, or leave it out"
SIZE_SAMPLE = 200  # image headers read to pick features.image.size (spread over the files)
CNN_SIZE = 64  # pixels: the CNN's input size when features.image.size is not set


def starter_config(
    source: str | Path, *, target: str | None = None, test_source: str | Path | None = None
) -> str:
    """YAML text of a config for ``source`` (a table, ``.npz``, ``sklearn:<name>`` or image files), ready to edit.

    Without ``target``, a scikit-learn set or an .npz uses its labels ("target"), a folder of images
    its class folders and a table its last column, and the comment says so. Raises DataError when
    the data cannot be read.
    """
    table = read_source(source)
    folder = table.image_files is not None and table.image_target is not None  # labels = subfolders
    chosen, how = _target(source, target, table)
    report = check(source, target=chosen, test_source=test_source)
    data: dict[str, object] = {"source": str(source)} if folder else {"source": str(source), "target": chosen}
    if test_source is not None:
        data["test_source"] = str(test_source)
    shape = (
        f"{report.rows} images"
        if table.image_files is not None
        else f"{report.rows} rows x {report.columns} columns"
    )
    lines = [
        f"# forgeml config for {source}, written by `forgeml init`. Edit it, then: forgeml run THIS_FILE",
        f"# {shape}; target {chosen!r} ({how}); task: {report.task}",
        yaml.safe_dump({"data": data}, sort_keys=False).rstrip(),
        f"  task: auto  # inferred as {report.task}; set classification or regression to override",
    ]
    if table.image_files is not None:  # the table's other columns are not model inputs
        lines += _image_settings(table.image_files)
    else:
        lines += _features(report, chosen)
        lines += _defaults(report)
    lines += _check_settings(report)
    return "\n".join(lines) + "\n"


def _target(source: str | Path, target: str | None, table: RawTable) -> tuple[str, str]:
    if target is not None:
        return target, "as given"
    if table.image_files is not None and table.image_target is not None:
        return DEFAULT_TARGET, "each image's class is the name of its folder"
    text = str(source)
    if text.startswith("sklearn:") or text.lower().endswith(".npz"):
        return DEFAULT_TARGET, "the labels stored with the data"
    columns = list(table.columns)
    return columns[-1], "the last column; change it if another is the label"


def _features(report: DataReport, target: str) -> list[str]:
    reasons: dict[str, str] = {}
    for finding in report.findings:
        if finding.column is not None and finding.column != target and finding.id in LEAVE_OUT:
            reasons.setdefault(finding.column, LEAVE_OUT[finding.id])
    for column in report.schema:
        if column.kind == "identifier" and column.name != target:  # features.leave_out drops these too
            reasons.setdefault(column.name, LEAVE_OUT["identifier_column"])
        if column.kind == "text" and column.name != target:
            reasons.setdefault(column.name, FREE_TEXT)
    if not reasons:
        return ["features:", "  exclude: []  # every column is used as an input"]
    lines = ["features:", "  exclude:  # columns training leaves out, and why"]
    lines += [f"    - {flow_scalar(name)}  # {why}" for name, why in reasons.items()]
    return lines


def image_size(files: ImageFiles) -> int:
    """``features.image.size`` for these files: the median shorter side, at most :data:`CNN_SIZE`.

    Read from the headers of up to :data:`SIZE_SAMPLE` files spread over the list (no pixels are
    decoded). Larger photos are scaled down to 64 pixels, where the CNN trains in minutes on a CPU;
    smaller ones (28x28 digits) keep their size, since scaling them up adds no detail.
    """
    step = max(1, len(files) // SIZE_SAMPLE)
    sides = []
    for path in files.paths[::step]:
        try:
            with read_file(path) as handle:
                sides.append(min(open_image(handle, path).size))
        except ImageError:  # the check's findings name it; the size comes from the readable files
            continue
    return max(4, min(CNN_SIZE, int(statistics.median(sides)))) if sides else CNN_SIZE


def _image_settings(files: ImageFiles) -> list[str]:
    """Image size, the CNN, and the training settings a newcomer changes first (commented out)."""
    image, model = ImageConfig(), CNNConfig()
    train, stopping = TrainConfig(), EarlyStoppingConfig()
    return [
        "features:",
        "  image:",
        f"    size: {image_size(files)}  # pixels; each file is scaled (shorter side) and centre-cropped to it",
        f"#     resize: {image.resize}  # crop | pad (keep the whole picture, black borders) | stretch",
        f"#     channels: {image.channels}  # 1 when every file is grey, else 3 (RGB)",
        "#     augment: {enabled: true, flip: 0.5, crop_scale: 0.8, rotation: 10, jitter: 0.1}"
        "  # off by default: a flip changes what a digit means",
        "model:  # the design document's CNN, trained from scratch",
        f"  type: {model.type}",
        f"#   channels: {model.channels}",
        f"#   dense: {model.dense}",
        "# train:",
        f"#   epochs: {train.epochs}",
        f"#   batch_size: {train.batch_size}",
        f"#   learning_rate: {train.learning_rate}",
        f"#   early_stopping: {{patience: {stopping.patience}}}",
    ]


def _defaults(report: DataReport) -> list[str]:
    """The settings changed most often, commented out at their defaults (the model's for this data)."""
    train, stopping = TrainConfig(), EarlyStoppingConfig()
    if default_model_type(str(report.source)) == "auto":
        auto = AutoConfig()
        lines = [
            "# model:  # for a table: auto, boosted trees and networks trained within train.time_budget, then ensembled",
            f"#   type: {auto.type}  # or gbm (LightGBM alone), or mlp (one network)",
            f"#   candidates: [{', '.join(auto.candidates)}]",
            "# train:",
            f"#   time_budget: {train.time_budget:g}  # seconds for all candidates together",
        ]
    else:
        model = MLPConfig()
        lines = [
            "# model:  # a multilayer perceptron by default",
            f"#   type: {model.type}",
            f"#   hidden: {model.hidden}",
            f"#   dropout: {model.dropout}",
            "# train:",
            f"#   epochs: {train.epochs}",
            f"#   batch_size: {train.batch_size}",
            f"#   learning_rate: {train.learning_rate}",
            f"#   early_stopping: {{patience: {stopping.patience}}}",
        ]
    return lines


def _check_settings(report: DataReport) -> list[str]:
    """The check section (live when the target leaks), and a first line naming any blocking findings."""
    lines: list[str] = []
    blocking = {f.id for f in report.blocking}
    if "target_leakage" in blocking:  # its columns are in features.exclude, where the gate cannot see them
        lines += [
            "check:  # the data gate; ids in allow are accepted, thresholds change when a finding blocks",
            "  allow: [target_leakage]  # the leaking columns are left out in features.exclude above",
            "#   thresholds: {}",
        ]
        blocking.discard("target_leakage")
    else:
        lines += [
            "# check:  # the data gate; ids in allow are accepted, thresholds change when a finding blocks",
            "#   allow: []",
            "#   thresholds: {}",
        ]
    if blocking:
        ids = ", ".join(sorted(blocking))
        lines.insert(
            0,
            f"# The data has blocking findings ({ids}): `forgeml check` on this config prints how to fix them.",
        )
    return lines
