"""The docs stay true: the config reference matches the schema, links resolve, the README is short.

The config reference is generated (``python -m forgeml.config_reference > docs/config.md``); these
tests fail when it is stale, when a README command names a verb the CLI lacks, or when a link
points nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from forgeml.checks.catalogue import CHECKS
from forgeml.cli import build_parser
from forgeml.config import Config
from forgeml.config_reference import COMMAND, render

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIG_PAGE = DOCS / "config.md"
README_LINE_LIMIT = 200
# [text](target) with an optional "title"; images too. Targets with a scheme or a bare #anchor are not files.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
VERB = re.compile(r"(?<![\w.\[-])forgeml ([a-z][a-z_-]*)")  # `forgeml run`, not `pip install forgeml[text]`
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)  # fenced blocks and inline code: where commands are


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _sections(annotation: Any) -> list[type[BaseModel]]:
    members = get_args(annotation) if get_origin(annotation) in (Union, type(int | None)) else (annotation,)
    return [member for member in members if isinstance(member, type) and issubclass(member, BaseModel)]


def test_config_reference_is_current() -> None:
    assert CONFIG_PAGE.read_text(encoding="utf-8") == render(), (
        f"docs/config.md is stale: the config schema changed. Regenerate it with `{COMMAND}`."
    )


def test_config_reference_covers_every_section_and_model_type() -> None:
    page = CONFIG_PAGE.read_text(encoding="utf-8")
    for name, field in Config.model_fields.items():
        assert f"`{name}`" in page, f"top-level key {name} is missing from docs/config.md"
        for section in _sections(field.annotation):
            for key in section.model_fields:
                assert f"`{name}.{key}`" in page, f"{name}.{key} is missing from docs/config.md"
            type_field = section.model_fields.get("type")
            if type_field is not None and get_origin(type_field.annotation) is Literal:
                (model_type,) = get_args(type_field.annotation)
                assert f"(type: `{model_type}`)" in page, f"{name}.type {model_type} has no table"


def test_readme_fits_on_a_screen() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_LINE_LIMIT, f"README.md has {lines} lines; keep it under {README_LINE_LIMIT}"


def test_readme_test_command_is_what_ci_runs() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci_command in README.read_text(encoding="utf-8"), (
        f"README.md's test command differs from .ci/run's; copy this line into it:\n{ci_command}"
    )


@pytest.mark.parametrize("page", _pages(), ids=lambda page: page.name)
def test_relative_links_point_to_files(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"


def test_readme_verbs_exist_in_the_cli() -> None:
    commands = next(action.choices for action in build_parser()._actions if getattr(action, "choices", None))
    code = " ".join(CODE.findall(README.read_text(encoding="utf-8")))
    mentioned = set(VERB.findall(code))
    assert mentioned, "README.md names no `forgeml <verb>`"
    assert mentioned <= set(commands), f"README.md names verbs the CLI lacks: {mentioned - set(commands)}"


def test_every_check_id_is_documented() -> None:
    page = (DOCS / "data-checks.md").read_text(encoding="utf-8")
    missing = [check_id for check_id in CHECKS if f"`{check_id}`" not in page]
    assert not missing, f"docs/data-checks.md lacks check ids {missing}; add them to its catalogue table"
