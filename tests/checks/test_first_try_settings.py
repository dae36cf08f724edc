"""Settings a newcomer reaches for on the first run (issue #17, item 8).

* ``--set model.hidden=[128,64]`` (the README's own example) on a config without a ``model:``
  section failed with "unable to extract tag using discriminator 'type'";
* early stopping ended a run without a word: now a console line, the run's log and the bundle's
  metrics say at which epoch it stopped and why.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml
from checks_fixtures import TARGET, clean_frame
from rich.console import Console

from forgeml import api
from forgeml.config import MLPConfig, load_config


def _config(tmp_path: Path, **train: object) -> Path:
    clean_frame().to_csv(tmp_path / "data.csv", index=False)
    config = {
        "name": "first",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "data.csv", "target": TARGET},
        "train": {"epochs": 2, **train},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_set_inside_a_section_the_config_leaves_out(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path), ["model.hidden=[128,64]"])
    assert isinstance(config.model, MLPConfig) and config.model.hidden == [128, 64]
    assert load_config(_config(tmp_path), ["model.dropout=0.1"]).model.hidden == MLPConfig().hidden


def test_early_stopping_says_when_and_why(tmp_path: Path) -> None:
    # min_delta so large that no epoch after the first counts as an improvement: stops at epoch 2
    path = _config(tmp_path, epochs=10, early_stopping={"patience": 1, "min_delta": 1e9})
    out = io.StringIO()
    # one network: with submodels the first epochs tie on the error and the kept epoch moves
    run = api.train(
        load_config(path, ["model.type=mlp", "model.submodels=1"]), console=Console(file=out, width=200)
    )
    said = out.getvalue()
    assert "early stopping at epoch 2 of 10" in said and "patience=1" in said and "epoch 1" in said
    manifest = json.loads((run.bundle_path / "bundle.json").read_text())
    assert manifest["metrics"]["stopped"].startswith("early stopping at epoch 2")
