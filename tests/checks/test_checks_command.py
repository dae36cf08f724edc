"""The ``check`` sub-command through argparse, as forgeml.cli wires it; bad input raises DataError (exit 2)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import yaml
from checks_fixtures import TARGET, clean_frame, mixed_dirty_text, to_csv

from forgeml.cli.check import register_check
from forgeml.errors import ConfigError, DataError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="forgeml")
    register_check(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check", *argv])
    return args.handler(args)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.csv"
    path.write_text(to_csv(clean_frame()))
    return path


@pytest.fixture
def dirty(tmp_path: Path) -> Path:
    path = tmp_path / "dirty.csv"
    path.write_text(mixed_dirty_text())
    return path


def test_clean_exits_0_and_prints_tables(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(clean), "--target", TARGET]) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "inferred schema" in out


def test_dirty_exits_1_with_json_report(
    dirty: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([str(dirty), "--target", TARGET, "--json", "--report-dir", str(tmp_path / "r")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["schema_version"] == 1 and not report["passed"]
    assert {"missing_target", "conflicting_labels"} <= {f["id"] for f in report["findings"]}
    assert (tmp_path / "r" / "data_report.html").is_file()


def test_fix_writes_a_clean_copy_and_exits_0(
    dirty: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fixed.csv"
    assert run([str(dirty), "--target", TARGET, "--fix", "-o", str(out)]) == 0
    assert out.is_file() and (tmp_path / "fixed.csv.fixlog.json").is_file()
    assert "fix log" in capsys.readouterr().out


def test_fix_without_output_is_a_config_error(dirty: Path) -> None:
    with pytest.raises(ConfigError, match="-o"):
        run([str(dirty), "--target", TARGET, "--fix"])


def test_config_positional_uses_data_section_and_allow(dirty: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    allow = ["missing_target", "conflicting_labels", "unparseable_rows", "infinite_values", "class_too_rare"]
    config.write_text(
        yaml.safe_dump({"data": {"source": str(dirty), "target": TARGET}, "check": {"allow": allow}})
    )
    assert run([str(config)]) == 0


def _binary(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _duplicate_header(path: Path) -> None:
    path.write_text("a,b,a\n1,2,3\n")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_binary, "binary"),
        (_empty, "empty"),
        (_duplicate_header, "duplicate column names"),
        (None, "not found"),
    ],
    ids=["binary", "empty", "duplicate_header", "missing_file"],
)
def test_bad_input_is_one_clear_data_error(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "bad.csv"
    if make is not None:
        make(path)
    with pytest.raises(DataError, match=match):
        run([str(path)])


def test_unknown_target_is_a_data_error(clean: Path) -> None:
    with pytest.raises(DataError, match="target column 'nope' not found"):
        run([str(clean), "--target", "nope"])


def test_header_only_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataError, match="no rows"):
        run([str(path)])


def test_terminal_report_groups_a_check_into_one_entry(capsys: pytest.CaptureFixture[str]) -> None:
    """breast_cancer's 23 outlier findings read as one entry naming each column once, in a few lines."""
    from forgeml.checks import check

    report = check("sklearn:breast_cancer", target="target")
    affected = [f.column for f in report.findings if f.id == "outliers"]
    assert len(affected) > 10
    assert run(["sklearn:breast_cancer", "--target", "target"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())  # names may be wrapped across lines
    for name in affected:
        assert len(re.findall(rf"(?<=[:,] ){re.escape(name)} \(", flat)) == 1, name
    assert out.count("outliers") == 1 and "inferred schema" in out
    assert len(out.splitlines()) <= 15
    assert "passed: 0 errors" in out.splitlines()[-1]


def test_schema_flag_adds_the_per_column_table(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(clean), "--target", TARGET]) == 0
    assert "parse rate" not in capsys.readouterr().out
    assert run([str(clean), "--target", TARGET, "--schema"]) == 0
    out = capsys.readouterr().out
    assert "parse rate" in out and "income" in out
