"""Bad input to ``forgeml compress``: one clear line naming the flag and the fix, exit 2, nothing left behind."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

import forgeml
from conftest import forgeml as run_cli
from conftest import mixed_table_config
from forgeml.cli import main
from forgeml.compression import compress_options
from forgeml.errors import BundleError, ConfigError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained run on the mixed table (numeric + categorical), one thread."""
    folder = tmp_path_factory.mktemp("compress_errors")
    config = mixed_table_config(folder, train={"epochs": 5, "threads": 1})
    return forgeml.train(config, console=Console(file=io.StringIO())).path


def _leftovers(run: Path) -> list[str]:
    return sorted(entry.name for entry in run.iterdir() if "compressed" in entry.name)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--prune", "1.0"], "--prune"),
        (["--prune", "-0.1"], "--prune"),
        (["--prune", "half"], "--prune"),
        (["--quantize", "int4"], "--quantize"),
        (["--distill-width", "1.5"], "--distill-width"),
        (["--quantize", "int8", "--max-drop", "-1"], "--max-drop"),
        ([], "nothing to compress"),
    ],
)
def test_a_bad_flag_is_one_line_exit_2_and_leaves_nothing(
    tiny_run: Path, flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compress", str(tiny_run), *flags]) == 2  # the CLI's own handler, in this process
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], stderr
    assert "Traceback" not in stderr and "e.g." in lines[0]
    assert _leftovers(tiny_run) == []


@pytest.mark.slow
def test_a_student_that_does_not_fit_the_task_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    """In a real process, as a user runs it: exit 2, one line, before any variant is built."""
    student = tmp_path / "student.yaml"
    student.write_text("model:\n  type: cnn\n  channels: [4]\n", encoding="utf-8")
    result = run_cli("compress", tiny_run, "--distill", student, "--quantize", "int8")
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert line.count("\n") == 0 and "--distill" in line and "model.type" in line and "Traceback" not in line
    assert _leftovers(tiny_run) == []


def test_a_malformed_student_names_its_key(tiny_run: Path, tmp_path: Path) -> None:
    student = tmp_path / "student.yaml"
    student.write_text("model:\n  type: mlp\n  hidden: [0]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--distill .*model\.hidden"):
        forgeml.compress(tiny_run, distill=student)
    with pytest.raises(ConfigError, match="--distill .*not found"):
        forgeml.compress(tiny_run, distill=tmp_path / "missing.yaml")


def test_not_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", str(tmp_path), "--quantize", "int8"]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_options_name_their_flag() -> None:
    with pytest.raises(ConfigError, match="--prune must be a fraction in"):
        compress_options(prune=1.0)
    with pytest.raises(ConfigError, match="--quantize must be one of int8, dynamic, static, fp16"):
        compress_options(quantize="int4")
    with pytest.raises(ConfigError, match="--prune-method"):
        compress_options(prune=0.5, prune_method="random")
    with pytest.raises(ConfigError, match="alternatives"):
        compress_options(distill="student.yaml", distill_width=0.5)
    assert compress_options(distill=0.5).distill_width == 0.5
    assert compress_options(prune="0.5").prune == 0.5  # the CLI passes text


@pytest.mark.slow
def test_a_failure_midway_keeps_the_previous_compressed_folder(
    tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variants are staged: a quantizer failure after other bundles were built changes nothing."""
    from forgeml.compression import variants

    previous = forgeml.compress(tiny_run, quantize="fp16")
    before = sorted(path.name for path in previous.folder.iterdir())

    def broken(*args: object, **kwargs: object) -> None:
        raise BundleError("ONNX Runtime could not quantize this model (simulated).")

    monkeypatch.setattr(variants, "quantize_file", broken)
    with pytest.raises(BundleError, match="simulated"):
        forgeml.compress(tiny_run, quantize="int8")  # the baseline bundle is built, then int8 fails
    assert sorted(path.name for path in previous.folder.iterdir()) == before
    assert _leftovers(tiny_run) == ["compressed"]
    shutil.rmtree(previous.folder)
