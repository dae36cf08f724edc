"""Flags generated from the pydantic model that declares a verb's options, so each option is declared once.

A field ``max_drop`` becomes ``--max-drop`` with the field's description (and first example) as its
help. Values stay text: the model checks them, so a bad value gets the same one-line error from the
CLI and from Python, naming the flag. A flag left out is not passed at all, so the model's default
(or the bundle kind's default, for serve settings) applies.
"""

from __future__ import annotations

import argparse
from typing import Any, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def flag_of(name: str) -> str:
    """The flag of a field: ``max_drop`` -> ``--max-drop``."""
    return "--" + name.replace("_", "-")


def add_option_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    *,
    flags: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """One flag per field of ``model`` (``flags`` renames some, e.g. ``{"output": ("-o", "--output")}``)."""
    for name, field in model.model_fields.items():
        names = (flags or {}).get(name, (flag_of(name),))
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_text(field)}
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction if field.default is True else "store_true"
        else:
            kwargs["metavar"] = names[-1].lstrip("-").replace("-", "_").upper()
        if get_origin(field.annotation) is list:
            kwargs["action"] = "append"
        parser.add_argument(*names, **kwargs)


def given(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of ``model`` a command line set, as keyword arguments."""
    values = {name: getattr(args, name, None) for name in model.model_fields}
    return {name: value for name, value in values.items() if value is not None}


def help_text(field: FieldInfo) -> str:
    """The field's description, its first example and its default, escaped for argparse's % formatting."""
    text = field.description or ""
    if field.examples and field.examples[0] != field.default:
        text += f" (e.g. {field.examples[0]})"
    if not _unset(field.default):
        text += f"; default {field.default}"
    return text.replace("%", "%%")


def _unset(default: object) -> bool:
    """A default that means "not given" (None, off, empty), which help need not repeat."""
    return default is None or default is False or default is PydanticUndefined or default == []


def add_set_flag(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable): a config-style key, for what the flags do not name."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a setting, e.g. {example}",
    )
