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


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class CompressOptions(BaseModel):
    """The variants to build; ``distill`` is a student config file or a width factor of the teacher.

    Each field is a ``forgeml compress`` flag (``max_drop`` -> ``--max-drop``, help from its
    description) and a keyword of ``forgeml.compress``; a description reads after "must be".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prune: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(
        None,
        description="a fraction in [0, 1) of each layer's neurons/channels (or weights) to remove",
        examples=[0.5],
    )
    prune_method: Literal["structured", "global", "layer"] = Field(
        "structured", description=f"one of {', '.join(PRUNE_METHODS)}", examples=["structured"]
    )
    finetune_epochs: Annotated[int, Field(ge=0)] = Field(
        5, description="a whole number >= 0 of fine-tuning epochs after pruning", examples=[5]
    )
    quantize: Literal["int8", "dynamic", "static", "fp16"] | None = Field(
        None,
        description=f"one of {', '.join(QUANTIZE_MODES)} (int8: static for CNNs, dynamic otherwise)",
        examples=["int8"],
    )
    distill: Path | None = Field(
        None,
        description="a student YAML file whose model section the run is distilled into",
        examples=["examples/digits_cnn_student.yaml"],
    )
    distill_width: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None,
        description="a width factor in (0, 1] of the teacher: distil into its architecture scaled",
        examples=[0.5],
    )
    temperature: Annotated[float, Field(gt=0.0)] = Field(
        4.0, description="a number > 0: the distillation temperature", examples=[4]
    )
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.7, description="a weight in [0, 1] on the teacher's outputs", examples=[0.7]
    )
    max_drop: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        None,
        description="a metric drop in [0, 1]: chain the methods and recommend the smallest variant within it",
        examples=[0.01],
    )
    calibration_rows: Annotated[int, Field(gt=0)] = Field(
        512, description="a whole number > 0 of training rows that calibrate static int8", examples=[512]
    )

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
        if field not in CompressOptions.model_fields and "--distill" in str(error["msg"]):
            raise ConfigError(
                "--distill and --distill-width are alternatives: pass a student file or a width factor, not both.",
                key="--distill",
            ) from None
        if field not in CompressOptions.model_fields:
            raise ConfigError(
                "nothing to compress: pass --prune AMOUNT, --quantize MODE, --distill student.yaml or "
                "--distill-width FACTOR (e.g. forgeml compress runs/<name> --quantize int8).",
                key="compress",
            ) from None
        flag, declared = _flag(field), CompressOptions.model_fields[field]
        example = f"{flag} {declared.examples[0]}" if declared.examples else flag
        raise ConfigError(
            f"{flag} must be {declared.description}, got {error.get('input')!r}. Pass e.g. {example}.",
            key=flag,
        ) from None
