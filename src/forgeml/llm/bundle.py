"""LM bundles: the merged model as safetensors, its tokenizer and generation config, and a manifest.

``bundle.json`` (format ``forgeml-lm-bundle``) records the base model, the LoRA settings, the chat
template, the metrics, the serving limits, library versions and the sha256 of every other file.
Loading checks every checksum first (a changed, missing or extra file is refused), refuses pickle
formats outright and never runs code from the bundle (``trust_remote_code=False``).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from torch import nn

from forgeml import atomic
from forgeml.deploy.bundle import UNSAFE_SUFFIXES as UNSAFE_SUFFIXES  # re-exported: it was defined here
from forgeml.deploy.bundle import verify_files
from forgeml.errors import BundleError
from forgeml.llm.config import LMConfig

FORMAT = "forgeml-lm-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
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
    path: Path, model: nn.Module, tokenizer: Any, config: LMConfig, *, template: str, metrics: dict[str, Any]
) -> Path:
    """Write the bundle atomically (a half-written bundle never replaces a good one)."""
    with atomic.replace_folder(path) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.chat_template = template  # serving renders chats exactly as training did
        tokenizer.save_pretrained(staging)
        files = sorted(p for p in staging.iterdir() if p.is_file())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": config.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task": {"kind": "causal_lm"},
            "model": {
                "base": config.model.name,
                "gguf_file": config.model.gguf_file,
                "lora": None if config.model.lora is None else config.model.lora.model_dump(mode="json"),
                "architecture": type(model).__name__,
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "chat_template": template,
            "data": {"format": config.data.format, "max_length": config.data.max_length},
            "metrics": metrics,
            "serve": config.serve.model_dump(mode="json"),
            "versions": {name: version(name) for name in ("forgeml", "torch", "transformers", "safetensors")}
            | {"python": platform.python_version()},
            "files": {file.name: {"sha256": _sha256(file), "bytes": file.stat().st_size} for file in files},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def is_lm_bundle(path: str | Path) -> bool:
    """True when ``path`` holds a bundle.json of format forgeml-lm-bundle."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_lm_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked: format, version, and every file's sha256 (no file missing or extra)."""
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: not a bundle ({MANIFEST} is missing).") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{file}: unreadable manifest ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{file}: not a forgeml language-model bundle.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{file}: LM bundle format version {manifest.get('format_version')!r}; this forgeml reads "
            f"{FORMAT_VERSION}. Re-export the bundle."
        )
    verify_files(path, manifest, weights=WEIGHTS)
    return manifest


def read_lm_bundle(path: str | Path) -> LMBundle:
    """Verify, then load the model (safetensors only, no remote code) and the tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    manifest = read_lm_manifest(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise BundleError(
            f"{path}: the model or tokenizer does not load ({str(exc).splitlines()[0]})."
        ) from None
    return LMBundle(model.eval(), tokenizer, str(manifest.get("chat_template") or ""), manifest, path)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
