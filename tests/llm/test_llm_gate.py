"""The LM data gate and the LM config: findings name file, line and key; errors name the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_fixtures import instruction_records, lm_config, make_tiny_lm, write_jsonl

from forgeml.checks.lm import check_examples
from forgeml.cli import main
from forgeml.config import Config, config_from_dict, load_config
from forgeml.data.lm import read_examples
from forgeml.errors import ConfigError, DataQualityError

DIRTY = [
    {"instruction": "What is the refund window?", "output": "30 days."},
    {"instruction": "Who do I email?", "output": "Write to jane.doe@example.com any time."},
    {"instruction": "Phone?", "output": "Call +44 20 7946 0958."},
    {"instruction": "Empty?", "output": "   "},
    {"instruction": "What is the refund window?", "output": "30 days."},
]
CHATS = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]},
    {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "ok"}]},
]


def test_findings_name_file_line_and_key(tmp_path: Path) -> None:
    examples, _ = read_examples(write_jsonl(tmp_path / "qa.jsonl", DIRTY))
    report = check_examples(examples)
    found = {(f.id, f.where.rsplit("/", 1)[-1], f.key) for f in report.findings}
    assert ("personal_data", "qa.jsonl:2", "output") in found
    assert ("personal_data", "qa.jsonl:3", "output") in found
    assert ("empty_answer", "qa.jsonl:4", "output") in found
    assert ("duplicate_examples", "qa.jsonl:5", "") in found
    assert {f.id for f in report.blocking} == {"personal_data", "empty_answer"}
    chats, _ = read_examples(write_jsonl(tmp_path / "chat.jsonl", CHATS))
    chat_found = {(f.id, f.where.rsplit("/", 1)[-1], f.key) for f in check_examples(chats).findings}
    assert ("bad_role", "chat.jsonl:1", "messages[1].role") in chat_found
    assert ("no_answer", "chat.jsonl:1", "messages") in chat_found
    assert ("empty_prompt", "chat.jsonl:2", "messages[0].content") in chat_found


def test_overlong_examples_and_validation_overlap(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_lm(tmp_path / "model"))
    train, _ = read_examples(write_jsonl(tmp_path / "train.jsonl", instruction_records()))
    validation, _ = read_examples(write_jsonl(tmp_path / "val.jsonl", instruction_records()[:1]))
    report = check_examples(
        train, validation=validation, tokenizer=tokenizer, template=tokenizer.chat_template, max_length=50
    )
    assert "too_long" in report.ids() and "validation_overlap" in {f.id for f in report.blocking}


def test_blocking_data_stops_training_with_exit_code_1_until_allowed(tmp_path: Path, capsys) -> None:
    import yaml

    model = make_tiny_lm(tmp_path / "model")
    source = write_jsonl(tmp_path / "qa.jsonl", DIRTY)
    config = lm_config(tmp_path, model, source, train={"epochs": 1})
    with pytest.raises(DataQualityError, match=r"qa\.jsonl:2 output: contains an e-mail address"):
        from forgeml.training.lm import train_lm

        train_lm(config_from_dict(config))
    assert (tmp_path / "runs" / "tiny_lm" / "data_report.json").is_file()
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["train", str(path)]) == 1
    assert "check.allow: [empty_answer, personal_data]" in capsys.readouterr().err.replace("\n", " ")
    allowed = main(["train", str(path), "--set", "check.allow=[empty_answer, personal_data]"])
    assert allowed == 0


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"model": {"type": "causal_lm", "name": "m", "lora": {"alpah": 4}}},
            r"model\.lora\.alpah.*Did you mean 'alpha'",
        ),
        ({"data": {"source": "x.jsonl", "max_length": 2}}, r"data\.max_length"),
        ({"data": {"source": "x.jsonl", "format": "csv"}}, r"data\.format"),
        ({"serve": {"default_max_tokens": 50, "max_tokens_limit": 10}}, r"serve.*default_max_tokens"),
        ({"train": {"learning_rate": -1}}, r"train\.learning_rate"),
    ],
)
def test_config_errors_name_the_dotted_key(change: dict, match: str) -> None:
    raw = {"model": {"type": "causal_lm", "name": "m"}, "data": {"source": "x.jsonl"}} | change
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw)


def test_lm_training_defaults_fill_in_only_unset_keys(tmp_path: Path) -> None:
    path = tmp_path / "lm.yaml"
    path.write_text("model: {type: causal_lm, name: m}\ndata: {source: qa.jsonl}\ntrain: {epochs: 1}\n")
    config = load_config(path, ["train.batch_size=2"])
    assert isinstance(config, Config) and config.kind == "causal_lm"
    assert (config.train.epochs, config.train.batch_size, config.train.optimizer) == (1, 2, "adamw")
    assert config.train.early_stopping is None and config.data.source == str(tmp_path / "qa.jsonl")
    assert config.serve.host == "127.0.0.1"
