import re
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


# One schema for every kind of model: model.type causal_lm is one more member of the union.
LM = {"model": {"type": "causal_lm", "name": "m"}, "data": {"source": "qa.jsonl"}}


def test_a_language_model_gets_its_kind_defaults_only_for_unset_keys() -> None:
    from forgeml.config import config_from_dict

    config = config_from_dict(LM | {"train": {"epochs": 1}, "model": {**LM["model"], "lora": {"r": 16}}})
    assert config.kind == "causal_lm" and config.name == "lm"
    assert (config.train.epochs, config.train.batch_size, config.train.optimizer) == (1, 4, "adamw")
    assert config.train.early_stopping is None and config.data.split.validation == 0.1
    assert (config.serve.max_queue, config.serve.request_timeout_s) == (8, 120.0)
    assert (config.model.lora.r, config.model.lora.dropout) == (16, 0.05)  # the LM's LoRA dropout
    tabular = config_from_dict({"data": {"source": "t.csv"}, "model": {"type": "pretrained", "lora": {}}})
    assert tabular.kind == "predictor" and tabular.model.lora.dropout == 0.0 and tabular.train.epochs == 20


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"data": {"source": "t.csv", "packing": True}}, "data.packing"),
        ({"data": {"source": "t.csv"}, "serve": {"max_concurrent": 2}}, "serve.max_concurrent"),
        ({"data": {"source": "t.csv"}, "evaluate": {"prompts": ["hi"]}}, "evaluate.prompts"),
        (LM | {"data": {"source": "qa.jsonl", "target": "y"}}, "data.target"),
        (LM | {"features": {"numeric_columns": ["a"]}}, "features"),
        (LM | {"evaluate": {"slices": ["a"]}}, "evaluate.slices"),
    ],
)
def test_a_key_the_kind_never_reads_is_an_error_naming_it(raw: dict, key: str) -> None:
    from forgeml.config import config_from_dict

    with pytest.raises(ConfigError, match=re.escape(key) + " does not apply") as caught:
        config_from_dict(raw)
    assert caught.value.key == key


def test_did_you_mean_descends_into_the_union_member_the_type_names() -> None:
    from forgeml.config import config_from_dict

    with pytest.raises(ConfigError, match=r"model\.gguf_fle.*Did you mean 'gguf_file'"):
        config_from_dict(LM | {"model": {**LM["model"], "gguf_fle": "x"}})
    with pytest.raises(ConfigError, match=r"model\.lora\.rr.*Did you mean 'r'"):
        config_from_dict({"data": {"source": "t.csv"}, "model": {"type": "pretrained", "lora": {"rr": 1}}})


@pytest.mark.parametrize("raw", [{"data": {"source": "t.csv"}}, LM])
def test_a_dumped_config_loads_back_unchanged(raw: dict) -> None:
    import yaml

    from forgeml.config import config_from_dict, dump_config

    config = config_from_dict(raw)
    assert config_from_dict(yaml.safe_load(dump_config(config))) == config


def test_serve_settings_follow_the_bundle_kind() -> None:
    from forgeml.config import serve_config

    assert serve_config("causal_lm").max_queue == 8 and serve_config("predictor").max_queue == 512
    assert serve_config("causal_lm", {"max_queue": 0}).max_queue == 0  # no generation waits
    with pytest.raises(ConfigError, match="at least 1"):
        serve_config("predictor", {"max_queue": 0})  # asyncio.Queue(0) would be unbounded
    with pytest.raises(ConfigError, match="not a setting of the prediction server"):
        serve_config("predictor", {"max_concurrent": 2})
