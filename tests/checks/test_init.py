"""``forgeml init DATA`` writes the starter config a newcomer edits (issue #17, item 9).

An error message told users to run ``forgeml init`` before it existed. The config names the source,
the target and the task, leaves out ids, constants and free text with the reason as a comment, shows
the usual settings commented out at their defaults, and loads as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checks_fixtures import TARGET, clean_frame

import forgeml
from forgeml.cli import main
from forgeml.config import MLPConfig, TrainConfig, load_config
from forgeml.errors import ConfigError


def _table(folder: Path) -> Path:
    frame = clean_frame()
    frame.insert(0, "customer_id", [f"C-{1000 + i}" for i in range(len(frame))])
    frame["country"] = "fr"
    rng = np.random.default_rng(0)
    frame["review"] = [
        " ".join(rng.choice(["good", "slow", "kind staff", "would return"], 8)) for _ in range(len(frame))
    ]
    path = folder / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_starter_config_explains_itself_and_loads(tmp_path: Path) -> None:
    source = _table(tmp_path)
    text = forgeml.init(source, target=TARGET)
    assert "task: auto  # inferred as classification" in text
    assert (
        "- customer_id  # an id" in text
        and "- country  # one value" in text
        and "- review  # free text" in text
    )
    # a table trains auto by default, so its settings are the ones shown; an .npz gets the MLP's
    assert "#   type: auto" in text and f"#   time_budget: {TrainConfig().time_budget:g}" in text
    digits = tmp_path / "digits.npz"
    np.savez(digits, x=np.zeros((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 2)
    images = forgeml.init(digits)
    assert f"#   epochs: {TrainConfig().epochs}" in images and f"#   hidden: {MLPConfig().hidden}" in images
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.data.target == TARGET and config.features.exclude == ["customer_id", "country", "review"]


def test_without_a_target_a_table_uses_its_last_column(tmp_path: Path) -> None:
    text = forgeml.init(_table(tmp_path))
    assert "target: review" in text and "the last column" in text


def test_the_cli_verb_writes_the_file_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = _table(tmp_path), tmp_path / "forgeml.yaml"
    assert main(["init", str(source), "--target", TARGET, "-o", str(output)]) == 0
    assert "wrote" in capsys.readouterr().out and load_config(output).data.target == TARGET
    assert main(["init", str(source), "-o", str(output)]) == 2
    with pytest.raises(ConfigError, match="exists"):
        forgeml.init(source, output=output)
