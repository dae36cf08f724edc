"""The options of ``forgeml tune`` beyond the config (which holds what to search): where, and how many workers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forgeml.errors import ConfigError


class TuneOptions(BaseModel):
    """Flags of ``forgeml tune`` and keywords of ``forgeml.tune`` (one declaration for both)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storage: str | None = Field(
        None,
        description="where the study lives: a journal file, or an SQLAlchemy URL shared by several machines; "
        "default runs/<name>/tune/journal.log",
        examples=["postgresql://user:pass@db/forgeml"],
    )
    jobs: int = Field(
        1, ge=1, le=256, description="worker processes on this machine sharing the study (a whole number >= 1)",
        examples=[2],
    )  # fmt: skip


def tune_options(**values: Any) -> TuneOptions:
    """Validate keyword options; the first problem is one ConfigError naming its flag."""
    try:
        return TuneOptions(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        declared = TuneOptions.model_fields.get(field)
        flag = "--" + field.replace("_", "-")
        if declared is None:
            raise ConfigError(
                f"forgeml tune has no option {field!r}; its options are --storage and --jobs."
            ) from None
        raise ConfigError(
            f"{flag} must be {declared.description}, got {error.get('input')!r}. Pass e.g. {flag} {declared.examples[0]}.",
            key=flag,
        ) from None
