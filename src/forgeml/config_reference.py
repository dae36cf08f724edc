"""The config reference (docs/config.md), generated from the schema so it cannot drift from it.

``python -m forgeml.config_reference > docs/config.md`` rewrites it; ``tests/core/test_docs.py``
fails when the committed page differs from what this prints. It walks :class:`forgeml.config.Config`
generically: nested sections become their own tables, a union of sections keyed by ``type`` (the
model) becomes one table per type, and ``Optional`` sections say that ``null`` turns them off.

What a key does comes from ``Field(description=...)`` when set, otherwise from the ``# comment``
written beside the field in config.py (pydantic keeps no comments, so the class source is read
with :mod:`ast` and :mod:`tokenize`). A base-layer module: it imports only :mod:`forgeml.config`.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
from collections.abc import Iterator
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from forgeml import config as config_module
from forgeml.config import Config

COMMAND = "python -m forgeml.config_reference > docs/config.md"
HEADER = f"""# Config reference

<!-- Generated from forgeml.config by `{COMMAND}`; do not edit by hand. -->

One YAML file configures a whole job. Unknown keys are errors (with a "did you mean"), every value
is checked once when the file is read, and relative paths resolve against the config file's folder.
Any key can be overridden on the command line: `--set train.learning_rate=3e-4`.
A section left out takes the defaults below; where a section's type says `or null`, `null` turns it off.
"""
_UNION_TYPES = (Union, types.UnionType)
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :class:`~forgeml.x.Y` -> `forgeml.x.Y`
_TAG_LIKE = re.compile(r"<(?=[A-Za-z/!])")  # `<name>` would start an HTML tag; `< 1` would not


def render(root: type[BaseModel] = Config) -> str:
    """The whole reference as Markdown: the top-level keys, one table per section, the kind rules."""
    lines = [HEADER, "## Top level", "", *_describe_class(root), *_table(root, prefix="")]
    for name, field in root.model_fields.items():
        lines += _section_blocks(name, field.annotation, level=2)
    if root is Config:
        lines += _kind_blocks(getattr(config_module, "KIND_RULES", {}))
        lines += _kind_blocks(getattr(config_module, "TYPE_RULES", {}), title="Model type")
    return "\n".join(lines).rstrip() + "\n"


def _kind_blocks(rules: dict[str, dict[str, dict[str, Any]]], title: str = "Model kind") -> list[str]:
    """Defaults that depend on the kind of model, and the keys a kind never reads (an error if set).

    ``rules`` maps a kind to ``{"defaults": {section path: {key: value}}, "foreign": {path: keys}}``;
    the schema's own defaults above are the ones a kind without an entry here gets.
    """
    lines: list[str] = []
    for kind, rule in rules.items():
        defaults, foreign = rule.get("defaults", {}), rule.get("foreign", {})
        if not (defaults or foreign):
            continue
        lines += [f"## {title} `{kind}`", "", *(_types_of_kind(kind) if title == "Model kind" else [])]
        if defaults:
            lines += ["Defaults that differ from the tables above (a key you set wins):", ""]
            lines += [
                f"- `{_key(path, key)}`: `{_compact(value)}`"
                for path, keys in defaults.items()
                for key, value in keys.items()
            ]
            lines.append("")
        if foreign:
            unread = ", ".join(
                f"`{_key(path, key)}`" for path, keys in foreign.items() for key in sorted(keys)
            )
            if title != "Model kind":
                unread += f" (besides those of its kind, `{config_module.kind_of(kind)}`)"
            lines += [f"Keys this kind never reads (setting one is an error): {unread}.", ""]
    return lines


def _types_of_kind(kind: str) -> list[str]:
    kind_of = getattr(config_module, "kind_of", None)
    sections = _sections_in(Config.model_fields["model"].annotation) if "model" in Config.model_fields else []
    types = [_type_value(section) for section in sections if "type" in section.model_fields]
    mine = [f"`{name}`" for name in types if kind_of is not None and kind_of(name) == kind]
    return [f"Model types of this kind: {', '.join(mine)}.", ""] if mine else []


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _section_blocks(path: str, annotation: Any, level: int, qualifier: str = "") -> list[str]:
    """Tables for every section reachable through ``annotation`` (none for a plain value)."""
    sections = _sections_in(annotation)
    if not sections:
        return []
    keyed = len(sections) > 1 and all("type" in section.model_fields for section in sections)
    lines: list[str] = []
    if keyed:
        choices = ", ".join(f"`{_type_value(section)}`" for section in sections)
        lines += [f"{'#' * level} `{path}`{qualifier}", "", f"`{path}.type` picks one of: {choices}.", ""]
    for section in sections:
        title = f"`{path}`{qualifier}"
        if keyed:
            title = f"`{path}` (type: `{_type_value(section)}`)"
        elif len(sections) > 1:  # a union of sections with no type key to tell them apart
            title = f"`{path}` as {section.__name__}{qualifier}"
        depth = level + 1 if keyed else level
        lines += [f"{'#' * depth} {title}", "", *_describe_class(section), *_table(section, prefix=path)]
        inner = f" (type: `{_type_value(section)}`)" if keyed else qualifier
        for name, field in section.model_fields.items():
            lines += _section_blocks(f"{path}.{name}", field.annotation, depth + 1, inner)
    return lines


def _table(section: type[BaseModel], prefix: str) -> list[str]:
    rows = ["| key | type | default | constraint | what it does |", "| --- | --- | --- | --- | --- |"]
    for name, field in section.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        constraint = ", ".join(_constraints(field.metadata) + _inner_constraints(field.annotation))
        cells = (
            f"`{key}`",
            _type_text(field.annotation),
            _default_text(field),
            constraint,
            _what(section, name),
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return [*rows, ""]


def _describe_class(section: type[BaseModel]) -> list[str]:
    """The docstring's first paragraph (what a user needs; the rest is for maintainers), as Markdown."""
    doc = section.__dict__.get("__doc__")
    if not doc:
        return []
    summary = inspect.cleandoc(doc).split("\n\n")[0]
    return [_RST_ROLE.sub(r"`\1`", " ".join(summary.split())).replace("``", "`"), ""]


def _sections_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections a field holds: itself, or the members of its union (None left out)."""
    if _is_section(annotation):
        return [annotation]
    if get_origin(annotation) in _UNION_TYPES:
        return [member for member in get_args(annotation) if _is_section(member)]
    return []


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_value(section: type[BaseModel]) -> str:
    (value,) = get_args(section.model_fields["type"].annotation)
    return str(value)


def _type_text(annotation: Any) -> str:
    """A reader's name for a type: choices for a Literal, 'or null', 'list of', 'section'."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Annotated:
        return _type_text(args[0])
    if origin is Literal:
        return " | ".join(f"`{value}`" for value in args)
    if origin in _UNION_TYPES:
        sections = _sections_in(annotation)
        if len(sections) > 1:
            return "one of the types below"
        return " or ".join(_type_text(member) for member in args)
    if origin in (list, tuple, set):
        return "list of " + (_type_text(args[0]) if args else "values")
    if origin is dict:
        return "mapping"
    if _is_section(annotation):
        return "section (below)"
    return getattr(annotation, "__name__", str(annotation))


def _inner_constraints(annotation: Any) -> list[str]:
    """Constraints written inside the type (``Annotated[float, Field(gt=0)] | None``)."""
    found: list[str] = []
    for member in get_args(annotation):
        if get_origin(member) is Annotated:
            for extra in get_args(member)[1:]:
                metadata = extra.metadata if isinstance(extra, FieldInfo) else [extra]
                found += [
                    f"each {text}" if get_origin(annotation) is list else text
                    for text in _constraints(metadata)
                ]
        elif get_args(member):
            found += _inner_constraints(member)
    return found


def _constraints(metadata: list[Any]) -> list[str]:
    symbols = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    found = []
    for item in metadata:
        found += [f"{sign} {_number(getattr(item, key))}" for key, sign in symbols.items() if _has(item, key)]
        if isinstance(item, annotated_types.MinLen | annotated_types.MaxLen):
            found.append(f"{type(item).__name__.lower().replace('len', ' length')} {item}")
        if getattr(item, "pattern", None):
            found.append(f"matches `{item.pattern}`")
    return found


def _has(item: Any, key: str) -> bool:
    return getattr(item, key, None) is not None


def _number(value: Any) -> str:
    return f"{value:,}".replace(",", "_") if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def _default_text(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        if value != type(value)():  # say only what differs from the section's own defaults
            changed = _changed(value.model_dump(mode="json"), type(value)().model_dump(mode="json"))
            return f"the defaults below, except `{_compact(changed)}`"
        return f"type `{value.type}`" if "type" in type(value).model_fields else "the defaults below"
    return f"`{_compact(value)}`" if not isinstance(value, str) else (f"`{value}`" if value else '`""`')


def _changed(value: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if default.get(key) != item}


def _compact(value: Any) -> str:
    return "null" if value is None else json.dumps(value, separators=(", ", ": "))


def _cell(text: str) -> str:
    # A `|` inside a Markdown table cell ends the cell unless escaped, even inside backticks; `<name>`
    # outside backticks would be read as an HTML tag and vanish.
    parts = text.replace("\n", " ").replace("|", "\\|").split("`")
    for index in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[index] = _TAG_LIKE.sub("&lt;", parts[index])
    return "`".join(parts)


def _what(section: type[BaseModel], name: str) -> str:
    description = section.model_fields[name].description
    return " ".join(description.split()) if description else _source_comment(section, name)


def _source_comment(section: type[BaseModel], name: str) -> str:
    """The comment written with the field: beside it, else the comment lines just above it."""
    for owner in section.__mro__:
        comments = _field_comments(owner)
        if name in comments:
            return comments[name]
    return ""


@cache
def _field_comments(owner: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(owner))
    except (OSError, TypeError):  # a class built at run time has no source
        return {}
    comments = _comments_by_line(source)
    found = {}
    (definition,) = ast.parse(source).body
    for node in definition.body if isinstance(definition, ast.ClassDef) else []:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = _comment_for(node, comments)
    return found


def _comment_for(node: ast.AnnAssign, comments: dict[int, tuple[str, bool]]) -> str:
    end = node.end_lineno or node.lineno
    beside = [text for line, (text, alone) in comments.items() if node.lineno <= line <= end and not alone]
    if beside:
        return " ".join(beside)
    above: list[str] = []
    line = node.lineno - 1
    while line in comments and comments[line][1]:  # a block of whole-line comments right above
        above.insert(0, comments[line][0])
        line -= 1
    return " ".join(above)


def _comments_by_line(source: str) -> dict[int, tuple[str, bool]]:
    """Line number -> (comment text, whether the comment is the whole line)."""
    found = {}
    for token in _tokens(source):
        if token.type == tokenize.COMMENT:
            alone = not token.line[: token.start[1]].strip()
            found[token.start[0]] = (token.string.lstrip("#").strip(), alone)
    return found


def _tokens(source: str) -> Iterator[tokenize.TokenInfo]:
    return tokenize.generate_tokens(io.StringIO(source).readline)


if __name__ == "__main__":
    sys.stdout.write(render())
