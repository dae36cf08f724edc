"""What ``forgeml check`` (and ``forgeml.check``) was asked to do, declared once.

Each field is a flag of ``forgeml check`` (help from its description) and a keyword of
``forgeml.check``; a config file given as the source fills in what these leave unset.
A base-layer module beside :mod:`forgeml.config` rather than in :mod:`forgeml.checks`: the CLI
builds every verb's parser on each call, and importing that package loads pandas (about half
of ``forgeml --help``'s time).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forgeml.errors import ConfigError

CHECK_FLAGS = {"test_source": ("--test",), "output": ("-o", "--output")}  # where a flag is not --field-name


class CheckOptions(BaseModel):
    """The label, the test file, the accepted ids and the optional clean-up of a data check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str | None = Field(
        None, description="the label column (a config's data.target is used otherwise)"
    )
    test_source: Path | None = Field(None, description="a test file: adds the train/test overlap check")
    allow: list[str] = Field(
        [], description="a check id accepted as it is, repeatable (added to a config's check.allow)"
    )
    fix: bool = Field(False, description="write a cleaned copy to -o and check it")
    output: Path | None = Field(None, description="the cleaned file (.csv, .parquet or .jsonl) for --fix")
    report_dir: Path | None = Field(None, description="also write data_report.json and .html here")


def check_options(**values: object) -> CheckOptions:
    """Validate keyword options; a bad one is a ConfigError naming its flag."""
    try:
        return CheckOptions(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "check"
        flag = CHECK_FLAGS.get(field, ("--" + field.replace("_", "-"),))[-1]
        raise ConfigError(f"{flag}: {error['msg']} (got {error.get('input')!r}).", key=flag) from None
