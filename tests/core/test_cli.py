"""The real CLI (fresh processes for the main path, main() in-process for error cases): the user's path from a CSV to predictions, and every bad input
from the spine issue ending in one clear line and exit code 2."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import forgeml, make_mixed_table, mixed_table_config, write_config
from forgeml.cli import main


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def in_process(capsys: pytest.CaptureFixture[str], *args: object) -> Result:
    """The same main() the console script runs, in this process: the error paths without a 4 s start-up each."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())
    assert message.startswith("error:")
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One `forgeml run` in a real process, shared by the tests that read its run folder."""
    folder = tmp_path_factory.mktemp("cli")
    result = forgeml("run", mixed_table_config(folder))
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "tiny", result.stdout


def test_csv_with_numeric_and_categorical_columns_trains_and_predicts(
    trained_run: tuple[Path, str], tmp_path: Path
) -> None:
    run, stdout = trained_run
    assert "Epoch 1/15, Loss:" in stdout and "accuracy" in stdout
    assert {"config.yaml", "history.csv", "metrics.json", "bundle"} <= {p.name for p in run.iterdir()}
    new = make_mixed_table(20, seed=9).drop(columns="churned")
    new.loc[0, "city"] = "marseille"  # a category never seen in training
    new.loc[1, "age"] = None  # a missing number is imputed
    new.to_csv(tmp_path / "new.csv", index=False)
    result = forgeml("predict", run / "bundle", tmp_path / "new.csv", "-o", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 20 and set(out["prediction"]) <= {"yes", "no"}
    np.testing.assert_allclose(out["probability_yes"] + out["probability_no"], 1.0, atol=1e-9)
    assert (out["prediction"] == "yes").mean() not in (0.0, 1.0)  # the model tells rows apart


def test_evaluate_a_run_folder_and_another_file(
    trained_run: tuple[Path, str], tmp_path: Path, capsys
) -> None:
    run, _ = trained_run
    (run / "metrics.json").unlink()
    result = in_process(capsys, "evaluate", run)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and (run / "metrics.json").is_file()
    make_mixed_table(40, seed=3).to_csv(tmp_path / "holdout.csv", index=False)
    result = in_process(capsys, "evaluate", run, "--data", tmp_path / "holdout.csv")
    assert result.returncode == 0, result.stderr
    assert (run / "metrics-holdout.json").is_file()


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("train.learning_rat=0.1", ["unknown key 'train.learning_rat'", "Did you mean 'learning_rate'"]),
        ("train.learning_rate=-0.01", ["train.learning_rate", "greater than 0", "-0.01"]),
        (
            "data.target=label",
            ["target column 'label' not found", "Columns are: age, income, city, plan, churned"],
        ),
        ("data.source=missing.csv", ["missing.csv: file not found"]),
    ],
)
def test_bad_config_and_data_exit_2_with_one_line(
    tiny_config: Path, override: str, fragments: list[str], capsys
) -> None:
    _one_line_error(in_process(capsys, "train", tiny_config, "--set", override), *fragments)


def test_ragged_csv_is_stopped_by_the_gate_with_exit_1(tmp_path: Path, capsys) -> None:
    (tmp_path / "ragged.csv").write_bytes(b"a,b,y\n1,2,0\n3,4\n5,6,1\n")
    config = write_config(tmp_path / "c.yaml", str(tmp_path / "ragged.csv"), data={"target": "y"})
    result = in_process(capsys, "train", config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[unparseable_rows]" in result.stderr and "line 3 (expected 3 fields, found 2)" in result.stderr


def test_missing_targets_block_training_until_allowed(tmp_path: Path, capsys) -> None:
    table = make_mixed_table(120)
    table.loc[[4, 9], "churned"] = None
    table.to_csv(tmp_path / "data.csv", index=False)
    config = write_config(
        tmp_path / "c.yaml", str(tmp_path / "data.csv"), data={"target": "churned"}, train={"epochs": 2}
    )
    blocked = in_process(capsys, "train", config)
    assert (
        blocked.returncode == 1 and "[missing_target]" in blocked.stderr and "check.allow" in blocked.stderr
    )
    assert not (tmp_path / "runs" / "tiny" / "bundle").exists()  # refused before the first epoch
    allowed = in_process(capsys, "train", config, "--set", "check.allow=[missing_target]")
    assert allowed.returncode == 0, allowed.stderr
    assert "Epoch 1/2" in allowed.stdout and (tmp_path / "runs" / "tiny" / "bundle" / "bundle.json").is_file()


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"a,b,y\n1,2,0\n3,4\n", ["ragged.csv, line 3: expected 3 fields", "found 2"]),
        (b"", ["ragged.csv: the file is empty (0 bytes)"]),
    ],
)
def test_bad_files_exit_2_without_the_gate(
    tmp_path: Path, content: bytes, fragments: list[str], capsys
) -> None:
    (tmp_path / "ragged.csv").write_bytes(content)
    config = write_config(
        tmp_path / "c.yaml", str(tmp_path / "ragged.csv"), data={"target": "y"}, check={"enabled": False}
    )
    _one_line_error(in_process(capsys, "train", config), *fragments)


def test_text_in_a_numeric_column_at_predict_time(trained_run: tuple[Path, str], tmp_path: Path) -> None:
    rows = make_mixed_table(5).drop(columns="churned").astype({"age": object})
    rows.loc[3, "age"] = "forty"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    output = tmp_path / "out.csv"
    output.write_text("previous results\n")
    result = forgeml("predict", trained_run[0] / "bundle", tmp_path / "bad.csv", "-o", output)
    _one_line_error(result, "bad.csv: column 'age', row 4: 'forty' is not a number")
    assert output.read_text() == "previous results\n"  # nothing already written is lost


def test_missing_input_column_at_predict_time(trained_run: tuple[Path, str], tmp_path: Path, capsys) -> None:
    make_mixed_table(5).drop(columns=["churned", "city"]).to_csv(tmp_path / "rows.csv", index=False)
    result = in_process(
        capsys, "predict", trained_run[0] / "bundle", tmp_path / "rows.csv", "-o", tmp_path / "o.csv"
    )
    _one_line_error(result, "missing input column: city")


def test_tampered_bundle_exits_2(trained_run: tuple[Path, str], tmp_path: Path, capsys) -> None:
    bundle = Path(shutil.copytree(trained_run[0] / "bundle", tmp_path / "bundle"))
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))
    make_mixed_table(5).to_csv(tmp_path / "rows.csv", index=False)
    result = in_process(capsys, "predict", bundle, tmp_path / "rows.csv", "-o", tmp_path / "o.csv")
    _one_line_error(result, "checksum mismatch")


def test_verbose_shows_the_traceback(tiny_config: Path, capsys) -> None:
    result = in_process(capsys, "--verbose", "train", tiny_config, "--set", "data.source=missing.csv")
    assert result.returncode == 2 and "Traceback" in result.stderr
