"""The blocking message ends with what to paste, and pasting it works (issue #17, item 1).

Each test builds data that blocks, takes the command lines from the DataQualityError exactly as
printed, runs them with the venv's ``forgeml`` in a subprocess, points the config at the cleaned
file and trains. Before, the printed command had no ``--target`` (so conflicting labels stayed),
``--fix`` kept train/test overlap, and the next run blocked on the same findings.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from checks_fixtures import TARGET, clean_frame

from forgeml import api
from forgeml.checks import gate
from forgeml.config import load_config
from forgeml.errors import DataQualityError

FORGEML = str(Path(sys.executable).parent / "forgeml")


def _config(tmp_path: Path, data: dict, *, model: dict | None = None, **check: object) -> Path:
    config = {
        "name": "first",
        "output_dir": str(tmp_path / "runs"),
        "data": data,
        **({"model": model} if model else {}),
        "train": {"epochs": 2, "batch_size": 32},
        "check": check,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _blocked(path: Path) -> str:
    config = load_config(path)
    with pytest.raises(DataQualityError) as caught:
        gate(config.data, config.check)
    return str(caught.value)


def _commands(message: str) -> list[str]:
    return [line.strip() for line in message.splitlines() if line.strip().startswith("forgeml ")]


def _dirty_train_and_test(tmp_path: Path) -> tuple[Path, Path]:
    """Conflicting labels on 10% of rows, a missing label, and 20 test rows copied from training."""
    frame = clean_frame(400, seed=3)
    flipped = frame.iloc[:20].copy()
    flipped[TARGET] = np.where(flipped[TARGET] == "yes", "no", "yes")
    frame = pd.concat([frame, flipped], ignore_index=True)
    frame.loc[30, TARGET] = ""
    frame.loc[31, "city"] = "=cmd|' /C calc'!A0"  # a formula payload that --fix must escape
    test = pd.concat([clean_frame(100, seed=4), frame.iloc[100:120]], ignore_index=True)
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    frame.to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    return train_path, test_path


def test_the_printed_command_yields_data_that_trains(tmp_path: Path) -> None:
    train_path, test_path = _dirty_train_and_test(tmp_path)
    config = _config(tmp_path, {"source": str(train_path), "target": TARGET, "test_source": str(test_path)})
    message = _blocked(config)
    assert "3 blocking problems" in message
    assert {"conflicting_labels", "missing_target", "train_test_overlap"} <= {
        word.strip("[]") for word in message.split() if word.startswith("[")
    }
    commands = _commands(message)
    assert commands and message.rstrip().endswith(commands[-1])
    assert f"--target {TARGET}" in commands[-1] and "--test" in commands[-1]
    for command in commands:
        done = subprocess.run([FORGEML, *shlex.split(command)[1:]], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    cleaned = Path(shlex.split(commands[-1])[-1])
    assert cleaned == tmp_path / "train.clean.csv"
    # the test file is untouched: the overlapping rows left the training copy
    assert pd.read_csv(test_path).shape[0] == 120
    written = cleaned.read_text()
    assert "'=cmd|' /C calc'!A0" in written and "\n=cmd" not in written
    # one small network: without model:, auto trains its candidates for up to train.time_budget (50 s of
    # the suite on 2 cores); what is tested is that the cleaned data passes the gate and trains
    data = {"source": str(cleaned), "target": TARGET, "test_source": str(test_path)}
    run = api.train(load_config(_config(tmp_path, data, model={"type": "mlp", "hidden": [16]})))
    assert run.bundle_path.is_dir()


def test_a_finding_no_fix_repairs_ends_with_its_allow_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.random((60, 8, 8)).astype(np.float32)
    images[5, 1, 1] = np.nan
    source = tmp_path / "images.npz"
    np.savez(source, x=images, y=np.arange(60) % 3)
    config = _config(tmp_path, {"source": str(source)})
    message = _blocked(config)
    assert "1 blocking problem," in message  # singular
    last = message.rstrip().splitlines()[-1].strip()
    assert last == "check: {allow: [non_finite_pixels]}"
    raw = yaml.safe_load(config.read_text())
    raw.update(yaml.safe_load(last))
    config.write_text(yaml.safe_dump(raw))
    loaded = load_config(config)
    assert gate(loaded.data, loaded.check).passed
