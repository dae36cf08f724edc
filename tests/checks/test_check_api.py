"""``forgeml.check`` takes what ``forgeml check`` takes: a config file, ``fix``/``output``, ``allow``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from checks_fixtures import TARGET, mixed_dirty_text
from rich.console import Console

import forgeml
from forgeml.errors import ConfigError


@pytest.fixture
def dirty(tmp_path: Path) -> Path:
    path = tmp_path / "dirty.csv"
    path.write_text(mixed_dirty_text())
    return path


def test_a_config_supplies_source_target_and_allow(dirty: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": str(dirty), "target": TARGET}}))
    blocked = forgeml.check(config)
    assert not blocked.passed and blocked.target == TARGET
    allowed = forgeml.check(config, allow=sorted({finding.id for finding in blocked.blocking}))
    assert allowed.passed


def test_fix_writes_a_clean_copy_and_checks_it(dirty: Path, tmp_path: Path) -> None:
    out, said = tmp_path / "fixed.csv", io.StringIO()
    report = forgeml.check(
        dirty, target=TARGET, fix=True, output=out, report_dir=tmp_path / "r", console=Console(file=said)
    )
    assert report.source == str(out) and out.is_file() and (tmp_path / "r" / "data_report.html").is_file()
    assert "fix log" in said.getvalue()
    with pytest.raises(ConfigError, match="-o"):
        forgeml.check(dirty, fix=True)


def test_an_unknown_option_is_a_config_error(dirty: Path) -> None:
    with pytest.raises(ConfigError, match="--no-such"):
        forgeml.check(dirty, no_such=1)
