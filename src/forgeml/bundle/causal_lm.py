"""Bundles of kind ``causal_lm``: the merged model as safetensors, its tokenizer and generation config.

``bundle.json`` (:mod:`forgeml.bundle.manifest`) records the base model, the LoRA settings, the chat
template, the metrics, the serving limits, library versions and the sha256 of every other file.
Loading checks every checksum first (a changed, missing or extra file is refused), refuses pickle
formats outright and never runs code from the bundle (``trust_remote_code=False``).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from torch import nn

from forgeml import atomic
from forgeml.bundle.manifest import MANIFEST, file_record, header, read_manifest, verify_files
from forgeml.config import CAUSAL_LM, CausalLMConfig, Config, config_json
from forgeml.errors import BundleError
from forgeml.extras import require

WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class LMBundle:
    """A loaded LM bundle: the model (eval mode), its tokenizer, chat template and manifest."""

    model: nn.Module
    tokenizer: Any
    template: str
    manifest: dict[str, Any]
    path: Path


def write_lm_bundle(
    path: Path, model: nn.Module, tokenizer: Any, config: Config, *, template: str, metrics: dict[str, Any]
) -> Path:
    """Write the bundle atomically (a half-written bundle never replaces a good one)."""
    with atomic.replace_folder(path) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.chat_template = template  # serving renders chats exactly as training did
        tokenizer.save_pretrained(staging)
        files = sorted(p for p in staging.iterdir() if p.is_file())
        model_config = config.model
        assert isinstance(model_config, CausalLMConfig)  # the training stage writes language models only
        manifest = header(CAUSAL_LM) | {
            "name": config.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task": {"kind": "causal_lm"},
            "model": {
                "base": model_config.name,
                "gguf_file": model_config.gguf_file,
                "lora": None if model_config.lora is None else model_config.lora.model_dump(mode="json"),
                "architecture": type(model).__name__,
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "chat_template": template,
            "data": {"format": config.data.format, "max_length": config.data.max_length},
            "metrics": metrics,
            "serve": config_json(config)["serve"],
            "versions": {name: version(name) for name in ("forgeml", "torch", "transformers", "safetensors")}
            | {"python": platform.python_version()},
            "files": {file.name: file_record(file) for file in files},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def read_lm_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked: format, kind, version, and every file's sha256 (no file missing or extra)."""
    manifest = read_manifest(path, kind=CAUSAL_LM)
    verify_files(path, manifest, weights=WEIGHTS)
    return manifest


def read_lm_bundle(path: str | Path) -> LMBundle:
    """Verify, then load the model (safetensors only, no remote code) and the tokenizer."""
    path = Path(path)
    manifest = read_lm_manifest(path)
    transformers = require("transformers", "llm", "serving a causal_lm bundle")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path, trust_remote_code=False, use_safetensors=True
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"{path}: the model or tokenizer does not load ({str(exc).splitlines()[0]})."
        ) from None
    return LMBundle(model.eval(), tokenizer, str(manifest.get("chat_template") or ""), manifest, path)
