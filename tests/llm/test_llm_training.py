"""Fine-tuning through the training engine: a tiny model learns its instruction set; LoRA, resume, bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from llm_fixtures import QA, instruction_records, lm_config, make_tiny_lm, trained_tiny_run, write_jsonl

from forgeml.bundle.causal_lm import read_lm_bundle
from forgeml.cli import main
from forgeml.config import config_from_dict
from forgeml.data.lm import encode_all, prompt_ids, read_examples
from forgeml.errors import BundleError
from forgeml.models.causal_lm import answer_token_loss
from forgeml.models.generate import Sampling, TextGenerator
from forgeml.training import TrainingInterrupted
from forgeml.training.lm import train_lm

torch.set_num_threads(1)
LOSS_THRESHOLD = 0.3  # nats per answer token; an untrained model starts near ln(105) = 4.65


@pytest.fixture(scope="module")
def tiny_run():
    return trained_tiny_run()


def _answer(model, tokenizer, template: str, question: str) -> str:
    ids = prompt_ids(tokenizer, template, [{"role": "user", "content": question}])
    return TextGenerator(model, tokenizer).complete(ids, Sampling(max_new_tokens=40)).text


@pytest.mark.slow
def test_tiny_model_learns_its_instruction_set(tiny_run) -> None:
    run, source = tiny_run
    examples, _ = read_examples(source)
    rows = encode_all(examples, run.tokenizer, run.template, 96)
    loss = answer_token_loss(run.model, rows)
    assert run.result.history[0].train_loss > 3.0
    assert loss.loss < LOSS_THRESHOLD, f"answer-token loss {loss.loss:.3f} after training"
    reproduced = [_answer(run.model, run.tokenizer, run.template, q) == a for q, a in QA]
    assert sum(reproduced) >= 6, reproduced
    assert _answer(run.model, run.tokenizer, run.template, QA[1][0]) == QA[1][1]
    # the bundle answers the same, loaded from safetensors only
    bundle = read_lm_bundle(run.bundle_path)
    assert _answer(bundle.model, bundle.tokenizer, bundle.template, QA[1][0]) == QA[1][1]
    manifest = bundle.manifest
    assert {"model.safetensors", "tokenizer.json", "generation_config.json", "config.json"} <= set(
        manifest["files"]
    )
    assert all(len(record["sha256"]) == 64 for record in manifest["files"].values())
    assert main(["evaluate", str(run.path)]) == 0  # forgeml evaluate on an LM run writes report.html
    report = (run.path / "report.html").read_text(encoding="utf-8")
    assert QA[0][0] in report and "perplexity" in report
    samples = json.loads((run.path / "samples.json").read_text())
    assert samples[0]["fine_tuned"] == QA[0][1]


def test_a_tampered_or_extended_bundle_is_refused(tiny_run, tmp_path: Path) -> None:
    import shutil

    run, _ = tiny_run
    copy = tmp_path / "bundle"
    shutil.copytree(run.bundle_path, copy)
    (copy / "notes.txt").write_text("x")
    with pytest.raises(BundleError, match="unexpected file"):
        read_lm_bundle(copy)
    (copy / "notes.txt").unlink()
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        read_lm_bundle(copy)


@pytest.mark.slow
def test_lora_checkpoints_hold_only_adapters_and_resume_exactly(tmp_path: Path, monkeypatch) -> None:
    model = make_tiny_lm(tmp_path / "model")
    source = write_jsonl(tmp_path / "qa.jsonl", instruction_records())

    def config(name: str):
        return config_from_dict(
            lm_config(
                tmp_path,
                model,
                source,
                name=name,
                model={"lora": {"r": 4, "alpha": 8, "dropout": 0.1}},
                train={"epochs": 3, "batch_size": 4, "checkpoint_every": 1, "learning_rate": 1e-2},
                evaluate={"samples": 0},
            )
        )

    straight = train_lm(config("straight"))
    monkeypatch.setenv("FORGEML_FAULT_SIGTERM_AT_STEP", "3")
    with pytest.raises(TrainingInterrupted):
        train_lm(config("resumed"))
    monkeypatch.delenv("FORGEML_FAULT_SIGTERM_AT_STEP")
    checkpoint = sorted((tmp_path / "runs" / "resumed" / "checkpoints").glob("step-*.pt"))[-1]
    saved = torch.load(checkpoint, weights_only=True)["model"]
    assert saved and all("lora_" in key for key in saved), list(saved)[:3]
    resumed = train_lm(config("resumed"), resume=True)
    assert resumed.result.resumed_step == 3
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert (
        straight.metrics["training"]["trainable_parameters"] < straight.metrics["training"]["parameters"] / 5
    )


@pytest.mark.slow
def test_gradient_checkpointing_keeps_gradients_and_bf16_lora_trains(tmp_path: Path) -> None:
    from forgeml.config import CausalLMConfig, LoRAConfig
    from forgeml.models.causal_lm import CausalLMModule, answer_loss, load_model, with_lora

    folder = make_tiny_lm(tmp_path / "model")
    source = write_jsonl(tmp_path / "qa.jsonl", instruction_records())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples, _ = read_examples(source)
    rows = encode_all(examples[:4], tokenizer, tokenizer.chat_template, 96)
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        config = CausalLMConfig(name=str(folder), lora=None, gradient_checkpointing=checkpointing)
        module = CausalLMModule(with_lora(load_model(config), LoRAConfig(r=4, dropout=0.0))).train()
        answer_loss(module(rows.input_ids, rows.attention_mask), rows.labels).backward()
        gradients.append({n: p.grad for n, p in module.named_parameters() if p.requires_grad})
    assert gradients[0].keys() == gradients[1].keys()
    for name, gradient in gradients[0].items():
        torch.testing.assert_close(gradient, gradients[1][name], rtol=1e-4, atol=1e-6, msg=name)
    run = train_lm(
        config_from_dict(
            lm_config(
                tmp_path,
                folder,
                source,
                model={"lora": {"r": 4}, "gradient_checkpointing": True},
                train={"epochs": 1, "batch_size": 4, "precision": "bf16", "accumulate": 2},
                evaluate={"samples": 0},
            )
        )
    )
    assert len(run.result.history) == 1 and all(
        torch.isfinite(torch.tensor(r.train_loss)) for r in run.result.history
    )
