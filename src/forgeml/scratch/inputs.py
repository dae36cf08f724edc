"""Turn what a user typed (``--input 1,0,1``, a weights YAML) into checked numbers for ``forgeml explain``.

This is the one place where text becomes numbers for the scratch engine; every mistake raises
``ConfigError`` with one line that names the option or YAML key and says how to fix it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from forgeml.errors import ConfigError

Vector = tuple[float, ...]
Matrix = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class LayerWeights:
    """One dense layer's parameters: ``weight`` is (outputs x inputs), ``bias`` has one value per output."""

    weight: Matrix
    bias: Vector


# The document's section 4.3 example, with W_out as the 1x2 matrix it must be (the document prints 1x1).
DOCUMENT_WEIGHTS: tuple[LayerWeights, ...] = (
    LayerWeights(weight=((0.1, 0.2, 0.3), (0.4, 0.5, 0.6)), bias=(0.1, 0.2)),
    LayerWeights(weight=((0.1, 0.2), (0.3, 0.4)), bias=(0.1, 0.2)),
    LayerWeights(weight=((0.1, 0.1),), bias=(0.1,)),
)


def to_number(value: object, *, key: str, example: str, where: str = "") -> float:
    """Return ``value`` as a finite float, or raise ``ConfigError`` naming ``key`` with an example fix.

    ``where`` (a file name) prefixes the message when the value came from a file.
    """
    prefix = f"{where}: " if where else ""
    problem = "is not a number"
    # YAML reads yes/no/true as booleans; a weight of True is a typo, not 1.0.
    if not isinstance(value, bool):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
        else:
            if math.isfinite(number):
                return number
            problem = "is not finite"
    raise ConfigError(f"{prefix}{key}: {value!r} {problem}. Write a number, e.g. {example}.", key=key)


def parse_numbers(values: str | Sequence[object], *, key: str, example: str) -> Vector:
    """Read ``"1,0,1"`` (or a sequence of numbers) into a tuple of floats; empty input is an error."""
    items = [item.strip() for item in values.split(",")] if isinstance(values, str) else list(values)
    if not items or items == [""]:
        raise ConfigError(
            f"{key}: no values given. Pass comma-separated numbers, e.g. {key} {example}.", key=key
        )
    return tuple(to_number(item, key=key, example=f"{key} {example}") for item in items)


def parse_names(values: str | Sequence[str], *, key: str) -> tuple[str, ...]:
    """Read ``"relu,sigmoid"`` (or a sequence of names) into lower-case names."""
    items = values.split(",") if isinstance(values, str) else list(values)
    names = tuple(str(item).strip().lower() for item in items)
    if not names or "" in names:
        raise ConfigError(f"{key}: empty name in {values!r}. Pass e.g. {key} relu,sigmoid,sigmoid.", key=key)
    return names


def positive_number(value: object, *, key: str, example: str) -> float:
    """Return ``value`` as a float > 0 (learning rates, epsilons), else raise ``ConfigError``."""
    number = to_number(value, key=key, example=f"{key} {example}")
    if number <= 0:
        raise ConfigError(f"{key} must be > 0, got {number!r}. Pass e.g. {key} {example}.", key=key)
    return number


def load_weights(path: str | os.PathLike[str]) -> tuple[LayerWeights, ...]:
    """Read a weights YAML (``layers: [{weight: [[..]], bias: [..]}, ...]``) with ``yaml.safe_load``.

    safe_load never builds Python objects from tags, so a weights file cannot run code.
    """
    file = Path(path)
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"--weights: cannot read {file}: {exc.strerror}. Check the path.", key="--weights"
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"--weights: {file} is not valid YAML{at}: {problem}. Only plain numbers and lists are allowed.",
            key="--weights",
        ) from exc
    return weights_from_mapping(document, source=str(file))


def weights_from_mapping(document: object, *, source: str = "weights") -> tuple[LayerWeights, ...]:
    """Check the parsed YAML's structure and turn it into ``LayerWeights``; shapes are checked later."""
    if not isinstance(document, dict) or set(document) != {"layers"}:
        got = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise ConfigError(
            f"{source}: expected exactly one top-level key 'layers', got {got}. "
            "See examples/explain_weights.yaml.",
            key="layers",
        )
    layers = document["layers"]
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"{source}: 'layers' must be a non-empty list of {{weight, bias}}.", key="layers")
    return tuple(_layer(entry, f"layers[{index}]", source) for index, entry in enumerate(layers))


def _layer(entry: object, key: str, source: str) -> LayerWeights:
    if not isinstance(entry, dict) or set(entry) != {"weight", "bias"}:
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ConfigError(f"{source}: {key} must have exactly the keys bias and weight, got {got}.", key=key)
    weight, bias = entry["weight"], entry["bias"]
    if not isinstance(weight, list) or not weight or not all(isinstance(row, list) for row in weight):
        raise ConfigError(
            f"{source}: {key}.weight must be a list of rows, e.g. [[0.1, 0.2], [0.3, 0.4]].",
            key=f"{key}.weight",
        )
    if len({len(row) for row in weight}) != 1 or not weight[0]:
        lengths = [len(row) for row in weight]
        raise ConfigError(
            f"{source}: {key}.weight rows have lengths {lengths}; every row needs the same number of values.",
            key=f"{key}.weight",
        )
    if not isinstance(bias, list) or not bias:
        raise ConfigError(
            f"{source}: {key}.bias must be a list of numbers, e.g. [0.1, 0.2].", key=f"{key}.bias"
        )
    matrix = tuple(
        tuple(
            to_number(v, key=f"{key}.weight[{r}][{c}]", example="0.1", where=source)
            for c, v in enumerate(row)
        )
        for r, row in enumerate(weight)
    )
    vector = tuple(
        to_number(v, key=f"{key}.bias[{i}]", example="0.1", where=source) for i, v in enumerate(bias)
    )
    return LayerWeights(matrix, vector)


def check_shapes(
    inputs: Vector, target: Vector, activations: Sequence[str], weights: Sequence[LayerWeights], source: str
) -> None:
    """Check that the layers chain (rows of one = columns of the next) and fit input, target, activations."""
    if len(activations) != len(weights):
        raise ConfigError(
            f"--activations: {len(activations)} given but {source} has {len(weights)} layers; "
            "pass one activation per layer.",
            key="--activations",
        )
    first_rows, first_columns = len(weights[0].weight), len(weights[0].weight[0])
    if first_columns != len(inputs):
        raise ConfigError(
            f"--input: {len(inputs)} values given but layers[0].weight in {source} is "
            f"{first_rows}x{first_columns}; "
            f"pass {first_columns} values, or --weights whose first matrix has {len(inputs)} columns.",
            key="--input",
        )
    width = len(inputs)
    for index, layer in enumerate(weights):
        rows, columns = len(layer.weight), len(layer.weight[0])
        key = f"layers[{index}].weight"
        if columns != width:
            raise ConfigError(
                f"{source}: {key} is {rows}x{columns} but layers[{index - 1}] outputs {width} values, "
                f"so it must be {rows}x{width} (one column per input); fix the matrix.",
                key=key,
            )
        if len(layer.bias) != rows:
            raise ConfigError(
                f"{source}: layers[{index}].bias has {len(layer.bias)} values but {key} has {rows} rows; "
                "give one bias per row.",
                key=f"layers[{index}].bias",
            )
        width = rows
    if len(target) != width:
        raise ConfigError(
            f"--target: {len(target)} values given but the network has {width} output(s); pass {width}.",
            key="--target",
        )
