"""The OpenAI-compatible endpoints' wire format: requests validated (decode_body) before any token is
generated, and the response bodies (whole, streamed chunks, the model list).

A parameter the server does not implement is refused with a 400 naming it, as OpenAI refuses an
unknown parameter: silently ignoring ``logprobs`` or ``frequency_penalty`` would answer a different
question than the one asked. Only what cannot change the answer is accepted and ignored: ``user``
(an end-user id) and ``frequency_penalty``/``presence_penalty`` at their default, 0. A field it does
implement with a bad value (a wrong type, ``seed: -1``, ``temperature: 3``) is a 422 naming that
field, never a 500. Types are strict, as in OpenAI's API: ``true`` is not a number, ``"5"`` not an
integer.

Why our own models and not the ``openai`` package's: its request parameters are TypedDicts (no
bounds, no validation: ``temperature``, ``n``, ``max_tokens`` against the server's limit and the
context length are ours to check anyway, with errors naming the field), and its response classes
(``ChatCompletion``, ``ChatCompletionChunk``, ``Completion``, ``CompletionUsage``) are permissive
pydantic models (``extra="allow"``, nearly every field optional) that would prove little while
making the server import the client SDK: 30 MB installed and 0.54 s to import (it pulls its own
HTTP stack) for four small dictionaries. They also do not describe every answer the API sends:
``CompletionChoice.finish_reason`` is typed as required, but a streamed text-completion chunk
carries ``null`` there until its last chunk. So the bodies are built here as plain dictionaries,
and ``tests/llm/test_llm_server.py`` checks every shape against ``openai``'s models (a dev
dependency) and drives a real server with the official client.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from forgeml.config import ServeConfig
from forgeml.data.lm import prompt_ids
from forgeml.deploy.server.errors import RequestError
from forgeml.models.generate import Completion, Sampling

# Unknown keys are refused (400); no type coercion (``max_tokens: true`` is not 1).
STRICT = ConfigDict(extra="forbid", strict=True)
SEED_MAX = 2**63 - 1  # a torch.Generator seed is 64 bits; OpenAI's seed is a signed 64-bit integer
# An OpenAI parameter that has no effect on the answer at this value: accepted, and ignored.
NoEffect = Annotated[float, Field(ge=0.0, le=0.0, description="accepted at 0 only (not implemented)")]


# What ``content`` accepts (a string, or OpenAI's text parts, which the validator joins), for the OpenAPI document.
TEXT_OR_PARTS = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
                "required": ["type", "text"],
            },
        },
    ]
}


class ChatMessage(BaseModel):
    model_config = STRICT

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, WithJsonSchema(TEXT_OR_PARTS)]

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, value: object) -> object:
        """OpenAI's list-of-parts content: the text parts joined (other part types are refused)."""
        if isinstance(value, list):
            texts = []
            for part in value:
                if (
                    not isinstance(part, dict)
                    or part.get("type") != "text"
                    or not isinstance(part.get("text"), str)
                ):
                    raise ValueError("only text content parts ({'type': 'text', 'text': ...}) are supported")
                texts.append(part["text"])
            return "".join(texts)
        return value


class GenerationFields(BaseModel):
    """What both endpoints share; ``max_tokens`` is checked against the server's limit separately."""

    model_config = STRICT

    model: str | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    stop: str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=4)] | None = None
    seed: Annotated[int, Field(ge=0, le=SEED_MAX)] | None = None
    stream: bool = False
    n: Annotated[int, Field(ge=1, le=1)] = 1
    user: str | None = None
    frequency_penalty: NoEffect | None = None
    presence_penalty: NoEffect | None = None

    def sampling(self, default_max_tokens: int) -> Sampling:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return Sampling(
            max_new_tokens=self.max_tokens or default_max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(s for s in stop if s),
            seed=self.seed,
        )


class ChatRequest(GenerationFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None  # the newer name of max_tokens


class CompletionRequest(GenerationFields):
    prompt: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=1)]
    )


def decode_body(
    raw: bytes,
    kind: type[GenerationFields],
    *,
    tokenizer: Any,
    template: str,
    config: ServeConfig,
    context: int,
) -> tuple[GenerationFields, list[int], Sampling]:
    """The request body checked (JSON, fields, ``max_tokens`` against the limit, the context length)
    and turned into prompt token ids and sampling settings; RequestError says what is wrong."""
    try:
        body = kind.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        error = errors[0]
        if error["type"] == "json_invalid":
            raise RequestError(400, "invalid_json", f"the body is not valid JSON ({error['msg']}).") from None
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        if unknown:  # first, as OpenAI does: the request asks for something this server cannot do
            name = ".".join(str(part) for part in unknown[0]["loc"])
            raise RequestError(
                400,
                "unknown_parameter",
                f"unrecognized request argument supplied: {name} (this server does not implement it).",
                name,
            ) from None
        where = _field(error["loc"])
        raise RequestError(422, "invalid_request", f"{where}: {error['msg']}", where) from None
    # both names are checked: the document bounds each, so a request that sends a valid
    # max_completion_tokens beside an over-limit max_tokens is still invalid (found by Schemathesis)
    for name in ("max_completion_tokens", "max_tokens"):
        asked = getattr(body, name, None)
        if asked is not None and asked > config.max_tokens_limit:
            raise RequestError(
                422,
                "invalid_request",
                f"{name} must be <= {config.max_tokens_limit}, got {asked}.",
                name,
            )
    max_tokens = getattr(body, "max_completion_tokens", None) or body.max_tokens
    body = body.model_copy(update={"max_tokens": max_tokens})
    prompt = _prompt_ids(body, tokenizer, template, config.max_messages)
    sampling = body.sampling(config.default_max_tokens)
    room = context - len(prompt)
    if room < 1:
        raise RequestError(
            422,
            "context_length_exceeded",
            f"the prompt is {len(prompt)} tokens; the model reads at most {context}.",
            "messages" if isinstance(body, ChatRequest) else "prompt",
        )
    if sampling.max_new_tokens > room:
        sampling = Sampling(room, sampling.temperature, sampling.top_p, sampling.stop, sampling.seed)
    return body, prompt, sampling


def _field(loc: tuple[object, ...]) -> str:
    """The dotted field path, without pydantic's union-member tags (``stop.str`` -> ``stop``)."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, str) and (not part.isidentifier() or part in _TYPE_TAGS):
            break
        parts.append(str(part))
    return ".".join(parts) or "body"


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict"})


def _prompt_ids(body: GenerationFields, tokenizer: Any, template: str, max_messages: int) -> list[int]:
    if isinstance(body, ChatRequest):
        if len(body.messages) > max_messages:
            raise RequestError(422, "invalid_request", f"at most {max_messages} messages.", "messages")
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        try:
            return prompt_ids(tokenizer, template, messages)
        except Exception as exc:  # the template's own checks (jinja raise_exception): bad input, not a bug
            raise RequestError(422, "invalid_request", f"messages: {str(exc)[:200]}", "messages") from None
    assert isinstance(body, CompletionRequest)
    text = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    ids = list(tokenizer(text)["input_ids"]) if text else []
    if not ids:
        raise RequestError(422, "invalid_request", "prompt: must not be empty.", "prompt")
    return ids


# Responses: OpenAI's shapes (see the module docstring for why they are not the openai package's models).


def completion_body(completion: Completion, *, chat: bool, request_id: str, model: str) -> dict[str, Any]:
    """A whole ``chat.completion`` or ``text_completion`` with its token usage."""
    finish = "length" if completion.finish_reason == "length" else "stop"
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": completion.text}, "finish_reason": finish}
        if chat
        else {"index": 0, "text": completion.text, "logprobs": None, "finish_reason": finish}
    )
    return {
        **_identity(chat=chat, stream=False, request_id=request_id, model=model, created=int(time.time())),
        "choices": [choice],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }


def first_chunk(*, request_id: str, model: str, created: int) -> dict[str, Any]:
    """A chat stream's opening chunk: the assistant's role, no text yet."""
    identity = _identity(chat=True, stream=True, request_id=request_id, model=model, created=created)
    return {**identity, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}


def chunk(
    text: str, finish: str | None, *, chat: bool, request_id: str, model: str, created: int
) -> dict[str, Any]:
    """One streamed piece of text, or (with ``finish``) the last chunk, which carries no text."""
    if chat:
        choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    identity = _identity(chat=chat, stream=True, request_id=request_id, model=model, created=created)
    return {**identity, "choices": [choice]}


def models_body(model: str) -> dict[str, Any]:
    """``GET /v1/models``: the one model this server serves."""
    return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "forgeml"}]}


def _identity(*, chat: bool, stream: bool, request_id: str, model: str, created: int) -> dict[str, Any]:
    kind = ("chat.completion.chunk" if stream else "chat.completion") if chat else "text_completion"
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}",
        "object": kind,
        "created": created,
        "model": model,
    }
