"""What ``forgeml compress`` was asked to build, checked once, with errors that name the flag.

These are per-command options rather than a ``compress:`` section of the run's config: the run's
config describes how a model was trained, while compression is tried on a finished run, often
several times with different budgets, and leaves the run's config untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forgeml.errors import ConfigError

QUANTIZE_MODES = ("int8", "dynamic", "static", "fp16")
PRUNE_METHODS = ("structured", "global", "layer")

# field -> (flag, what it accepts, an example to copy)
_FLAGS: dict[str, tuple[str, str, str]] = {
    "prune": (
        "--prune",
        "a fraction in [0, 1) of each layer's neurons/channels (or weights) to remove",
        "--prune 0.5",
    ),
    "prune_method": ("--prune-method", f"one of {', '.join(PRUNE_METHODS)}", "--prune-method structured"),
    "finetune_epochs": ("--finetune-epochs", "a whole number >= 0", "--finetune-epochs 5"),
    "quantize": ("--quantize", f"one of {', '.join(QUANTIZE_MODES)}", "--quantize int8"),
    "distill": ("--distill", "a student YAML file", "--distill examples/digits_cnn_student.yaml"),
    "distill_width": ("--distill-width", "a width factor in (0, 1] of the teacher", "--distill-width 0.5"),
    "temperature": ("--temperature", "a number > 0", "--temperature 4"),
    "alpha": ("--alpha", "a weight in [0, 1] on the teacher's outputs", "--alpha 0.7"),
    "max_drop": ("--max-drop", "a metric drop in [0, 1]", "--max-drop 0.01"),
    "calibration_rows": ("--calibration-rows", "a whole number > 0", "--calibration-rows 512"),
}


class CompressOptions(BaseModel):
    """The variants to build; ``distill`` is a student config file or a width factor of the teacher."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prune: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    prune_method: Literal["structured", "global", "layer"] = "structured"
    finetune_epochs: Annotated[int, Field(ge=0)] = 5
    quantize: Literal["int8", "dynamic", "static", "fp16"] | None = None
    distill: Path | None = None
    distill_width: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    temperature: Annotated[float, Field(gt=0.0)] = 4.0
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.7
    max_drop: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    calibration_rows: Annotated[int, Field(gt=0)] = 512

    @model_validator(mode="after")
    def _something_to_build(self) -> CompressOptions:
        if self.distill is not None and self.distill_width is not None:
            raise ValueError("--distill and --distill-width are alternatives; pass one of them")
        if self.prune is None and self.quantize is None and not self.distills:
            raise ValueError("nothing to build")
        return self

    @property
    def distills(self) -> bool:
        return self.distill is not None or self.distill_width is not None


def compress_options(**values: Any) -> CompressOptions:
    """Validate keyword options; the first problem becomes one ConfigError naming its flag and the fix.

    ``distill`` may also be a number: the width factor (``forgeml.compress(run, distill=0.5)``).
    """
    if isinstance(values.get("distill"), int | float) and not isinstance(values.get("distill"), bool):
        values["distill_width"] = values.pop("distill")
    try:
        return CompressOptions(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        if field not in _FLAGS and "--distill" in str(error["msg"]):
            raise ConfigError(
                "--distill and --distill-width are alternatives: pass a student file or a width factor, not both.",
                key="--distill",
            ) from None
        if field not in _FLAGS:
            raise ConfigError(
                "nothing to compress: pass --prune AMOUNT, --quantize MODE, --distill student.yaml or "
                "--distill-width FACTOR (e.g. forgeml compress runs/<name> --quantize int8).",
                key="compress",
            ) from None
        flag, expected, example = _FLAGS[field]
        raise ConfigError(
            f"{flag} must be {expected}, got {error.get('input')!r}. Pass e.g. {example}.", key=flag
        ) from None
