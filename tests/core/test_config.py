from pathlib import Path

import pytest

from conftest import write_config
from forgeml.config import load_config
from forgeml.errors import ConfigError


def test_loads_and_applies_overrides(tiny_config: Path) -> None:
    config = load_config(tiny_config, ["train.learning_rate=3e-4", "model.hidden=[8, 4]"])
    assert config.train.learning_rate == pytest.approx(3e-4)
    assert config.model.hidden == [8, 4]


def test_relative_source_resolves_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = write_config(tmp_path / "sub" / "c.yaml", "data.csv", data={"target": "y"})
    assert load_config(path).data.source == str((tmp_path / "sub" / "data.csv").resolve())


def test_unknown_key_is_named_with_a_suggestion(tiny_config: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown key 'train.learning_rat'.*Did you mean 'learning_rate'"
    ) as caught:
        load_config(tiny_config, ["train.learning_rat=0.1"])
    assert caught.value.key == "train.learning_rat"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.learning_rate=-0.1", "train.learning_rate"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.epochs=-1", "train.epochs"),
        ("train.learning_rate=.nan", "train.learning_rate"),
        ("train.learning_rate=fast", "train.learning_rate"),
        ("seed=4294967296", "seed"),
        ("model.type=rnn", "model"),
    ],
)
def test_bad_values_name_the_dotted_key(tiny_config: Path, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(tiny_config, [override])


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    path.write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    assert not marker.exists()


def test_missing_file_and_missing_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "c.yaml").write_text("name: x\n")
    with pytest.raises(ConfigError, match="data is required"):
        load_config(tmp_path / "c.yaml")


def test_split_must_leave_training_rows(tiny_config: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.split"):
        load_config(tiny_config, ["data.split.validation=0.5", "data.split.test=0.45"])
