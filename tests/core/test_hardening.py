"""Issue 18, items 4 and 5: bad input is one line and an exit code, and nothing non-finite gets out."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeml.config import load_config
from forgeml.errors import ConfigError

BASE = "data:\n  source: x.csv\n  target: y\nmodel:\n  type: mlp\n"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


def test_a_duplicate_yaml_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _config(tmp_path, "train:\n  epochs: 3\n  epochs: 5\n")
    with pytest.raises(ConfigError, match="'epochs' appears twice") as caught:
        load_config(path)
    assert caught.value.key == "epochs"


@pytest.mark.parametrize("text", ["train:\n  epochs: true\n", "train:\n  batch_size: yes\n", "train:\n  learning_rate: true\n"])
def test_a_bool_is_not_a_number(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="not true/false"):
        load_config(_config(tmp_path, text))


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", 10**26), ("batch_size", 2**20 + 1), ("accumulate", 10**9), ("keep_checkpoints", 10**6)],
)
def test_sizes_have_upper_bounds(tmp_path: Path, key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"train.{key} input should be less than or equal to"):
        load_config(_config(tmp_path, f"train:\n  {key}: {value}\n"))


def test_a_layer_width_has_an_upper_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.mlp.hidden.0|model.hidden"):
        load_config(_config(tmp_path, "  hidden: [100000000]\n"))


def test_yaml_floats_and_plain_ints_still_load(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "train:\n  epochs: 7\n  learning_rate: 1e-3\n  batch_size: 1048576\n"))
    assert (config.train.epochs, config.train.learning_rate, config.train.batch_size) == (7, 1e-3, 2**20)
