"""LM data: reading the three formats, the answer-only label mask, templates, truncation, packing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from llm_fixtures import QA, instruction_records, make_tiny_lm, write_jsonl

from forgeml.data.lm import (
    DEFAULT_CHAT_TEMPLATE,
    IGNORE_INDEX,
    chat_template,
    encode_all,
    encode_example,
    pack,
    prompt_ids,
    read_examples,
)
from forgeml.errors import DataError
from forgeml.models.causal_lm import answer_loss

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    folder = make_tiny_lm(tmp_path_factory.mktemp("tiny_lm_data"))
    return folder, AutoTokenizer.from_pretrained(folder)


def _learned(tokenizer, encoded) -> str:
    return tokenizer.decode(
        [i for i, label in zip(encoded.ids, encoded.labels, strict=True) if label != IGNORE_INDEX]
    )


def test_label_mask_covers_exactly_the_answer_and_its_end_token(tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    examples, data_format = read_examples(write_jsonl(tmp_path / "qa.jsonl", instruction_records()))
    assert data_format == "instruction" and len(examples) == len(QA)
    template = chat_template(tokenizer, None)
    encoded = encode_example(examples[0], tokenizer, template, 512)
    question, answer = QA[0]
    assert _learned(tokenizer, encoded) == f"{answer}<|im_end|>\n"
    # every prompt token is masked, and the prompt is exactly what the server feeds at inference
    prompt = prompt_ids(tokenizer, template, [{"role": "user", "content": question}])
    assert list(encoded.ids[: len(prompt)]) == prompt
    assert set(encoded.labels[: len(prompt)]) == {IGNORE_INDEX}
    assert all(
        label == token
        for token, label in zip(encoded.ids[len(prompt) :], encoded.labels[len(prompt) :], strict=True)
    )


def test_multi_turn_chat_learns_every_assistant_turn_and_no_user_turn(tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    chat = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye."},
        ]
    }
    examples, data_format = read_examples(write_jsonl(tmp_path / "chat.jsonl", [chat]))
    assert data_format == "chat"
    encoded = encode_example(examples[0], tokenizer, chat_template(tokenizer, None), 512)
    assert _learned(tokenizer, encoded) == "Hello.<|im_end|>\nGoodbye.<|im_end|>\n"


def test_default_template_when_the_tokenizer_has_none(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_lm(tmp_path / "plain", chat_template=None))
    assert chat_template(tokenizer, None) == DEFAULT_CHAT_TEMPLATE
    examples, _ = read_examples(write_jsonl(tmp_path / "qa.jsonl", instruction_records()))
    encoded = encode_example(examples[1], tokenizer, DEFAULT_CHAT_TEMPLATE, 512)
    assert _learned(tokenizer, encoded) == f"{QA[1][1]}<|im_end|>\n"  # the eos token closes the answer


def test_text_format_learns_every_token_and_input_joins_the_instruction(tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    examples, data_format = read_examples(write_jsonl(tmp_path / "text.jsonl", [{"text": "abc def"}]))
    encoded = encode_example(examples[0], tokenizer, chat_template(tokenizer, None), 512)
    assert data_format == "text" and encoded.labels == encoded.ids and len(encoded.ids) == 8  # 7 chars + eos
    record = {"instruction": "Translate", "input": "chat", "output": "cat"}
    examples, _ = read_examples(write_jsonl(tmp_path / "i.jsonl", [record]))
    assert examples[0].messages[0].content == "Translate\n\nchat"


def test_truncation_and_packing(tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    template = chat_template(tokenizer, None)
    examples, _ = read_examples(write_jsonl(tmp_path / "qa.jsonl", instruction_records()))
    cut = encode_example(examples[0], tokenizer, template, 40)
    assert cut.truncated and len(cut.ids) == 40
    encoded = [encode_example(example, tokenizer, template, 200) for example in examples]
    packed = pack(encoded, 200)
    assert len(packed) < len(encoded) and all(len(row.ids) <= 200 for row in packed)
    assert sum(len(row.ids) for row in packed) == sum(len(row.ids) for row in encoded)
    tensors = encode_all(examples, tokenizer, template, 200, packing=True)
    unpacked = encode_all(examples, tokenizer, template, 200)
    assert tensors.answer_tokens == unpacked.answer_tokens and len(tensors) == len(packed)
    assert (tensors.labels[tensors.attention_mask == 0] == IGNORE_INDEX).all()


def test_answer_loss_matches_the_hugging_face_loss(tiny, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder, tokenizer = tiny
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    examples, _ = read_examples(write_jsonl(tmp_path / "qa.jsonl", instruction_records()))
    data = encode_all(examples[:4], tokenizer, chat_template(tokenizer, None), 200)
    with torch.no_grad():
        output = model(input_ids=data.input_ids, attention_mask=data.attention_mask, labels=data.labels)
        ours = answer_loss(output.logits, data.labels)
    torch.testing.assert_close(ours, output.loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ('{"instruction": "q", "output": "a"}\n{"instruction": "q", \n', r"qa\.jsonl:2: not valid JSON"),
        ('{"instruction": "q"}\n', r"qa\.jsonl:1: output must be a string.*missing"),
        ('{"messages": "hello"}\n', r"qa\.jsonl:1: messages must be a list"),
        (
            '{"messages": [{"role": "user", "content": 3}]}\n',
            r"qa\.jsonl:1: messages\[0\]\.content must be a string",
        ),
        ("[1, 2]\n", r"qa\.jsonl:1: expected a JSON object"),
        ('{"question": "q"}\n', r"qa\.jsonl:1: cannot tell the format"),
        ("", r"no examples"),
    ],
)
def test_unreadable_lines_name_the_file_line_and_key(tmp_path: Path, lines: str, match: str) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(lines, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_examples(path)
