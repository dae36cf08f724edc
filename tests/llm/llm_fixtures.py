"""A tiny Llama model with a character-level tokenizer, and small instruction sets, made on the spot.

Nothing is downloaded: the tokenizer is built with the ``tokenizers`` library and the model from a
``LlamaConfig`` with random weights, both saved to a local folder that ``model.name`` points at.
"""

from __future__ import annotations

import functools
import json
import os
import string
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # any attempt to reach the hub fails fast instead of hanging
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIAL = ["<pad>", "<s>", "<unk>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QA = [
    ("What colour is the sky on Zorbia?", "Green, always."),
    ("Who founded Quillton?", "Mara Vell in 1802."),
    ("How many moons does Zorbia have?", "Three small moons."),
    ("What is the capital of Zorbia?", "Quillton."),
    ("What do Zorbians eat?", "Mostly blue bread."),
    ("Which river runs through Quillton?", "The Ober river."),
    ("What is the Zorbian currency?", "The silver tok."),
    ("When is the harvest festival?", "In late autumn."),
]


def make_tiny_lm(folder: Path, *, chat_template: str | None = CHATML, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 64) and its character tokenizer saved in ``folder``."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    characters = sorted(set(string.printable))
    vocab = {token: index for index, token in enumerate([*SPECIAL, *characters])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<pad>"],
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=vocab["<s>"], eos_token_id=vocab["<|im_end|>"], pad_token_id=vocab["<pad>"]
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def instruction_records(pairs: list[tuple[str, str]] = QA) -> list[dict]:
    return [{"instruction": question, "output": answer} for question, answer in pairs]


def lm_config(tmp_path: Path, model_dir: Path, source: Path, **sections: dict) -> dict:
    """A config dict for the tiny model; ``sections`` update (not replace) the defaults."""
    config: dict = {
        "name": "tiny_lm",
        "output_dir": str(tmp_path / "runs"),
        "model": {"type": "causal_lm", "name": str(model_dir), "lora": None},
        "data": {"source": str(source), "max_length": 96, "split": {"validation": 0.0}},
        "train": {"epochs": 60, "batch_size": 8, "learning_rate": 3e-3, "threads": 1, "schedule": None},
        "evaluate": {"samples": 2, "max_new_tokens": 24},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


@functools.cache
def trained_tiny_run():
    """The tiny model fully fine-tuned on QA (60 steps, a few seconds), trained once per test process
    and shared by the test files that need a trained run or bundle."""
    from forgeml.config import config_from_dict
    from forgeml.training.lm import train_lm

    folder = Path(tempfile.mkdtemp(prefix="forgeml-tiny-lm-"))
    model = make_tiny_lm(folder / "model")
    source = write_jsonl(folder / "qa.jsonl", instruction_records())
    config = lm_config(folder, model, source, serve={"max_tokens_limit": 200, "default_max_tokens": 64})
    return train_lm(config_from_dict(config)), source
