"""The OpenAI-compatible server for an LM bundle: chat and text completions, streamed or whole.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``,
``GET /health/live``, ``GET /health/ready`` (503 until the model is loaded, and once shutdown
starts), ``GET /metrics``, and ``GET /`` (a chat page with no external assets). The deploy stage's
pieces are reused unchanged: the :class:`~forgeml.deploy.server.guard.Guard` (API key, body limits,
request ids, the one error shape), :class:`~forgeml.deploy.server.metrics.Metrics` and the uvicorn
runner's graceful SIGTERM handling.

At most ``serve.max_concurrent`` generations run at once (each in a worker thread), and
``serve.max_queue`` more may wait; beyond that a request gets 503 with ``Retry-After``. Each
request has ``serve.request_timeout_s`` in all (waiting included): then a 504, or an error event
on a stream, and its worker stops at the next token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from forgeml.bundle.causal_lm import read_lm_bundle, read_lm_manifest
from forgeml.config import CAUSAL_LM, ServeConfig, serve_config
from forgeml.deploy.server.guard import BodyTooLarge, Guard, error_body
from forgeml.deploy.server.lm_page import render_chat_page
from forgeml.deploy.server.lm_schema import (
    ChatRequest,
    CompletionRequest,
    GenerationFields,
    RequestProblem,
    decode_body,
)
from forgeml.deploy.server.metrics import Metrics
from forgeml.deploy.server.probes import add_probe_routes
from forgeml.models.generate import Completion, Control, Sampling, TextGenerator

logger = logging.getLogger(__name__)
_END = object()


class Overloaded(Exception):
    """Every generation slot and queue place is taken."""


class Slots:
    """At most ``limit`` generations at once, ``queue`` more waiting, the rest refused at once."""

    def __init__(self, limit: int, queue: int) -> None:
        self.limit, self.queue = limit, queue
        self.admitted = 0
        self._semaphore = asyncio.Semaphore(limit)

    async def acquire(self, timeout: float) -> None:
        if self.admitted >= self.limit + self.queue:
            raise Overloaded
        self.admitted += 1
        try:
            await asyncio.wait_for(self._semaphore.acquire(), max(timeout, 0.0))
        except BaseException:
            self.admitted -= 1
            raise

    def release(self) -> None:
        self._semaphore.release()
        self.admitted -= 1

    @property
    def waiting(self) -> int:
        return max(0, self.admitted - self.limit)


@dataclass
class LMServerState:
    """What the routes share; ``draining`` is set by the runner on SIGTERM (readiness goes 503)."""

    bundle_path: Path
    manifest: dict[str, Any]
    config: ServeConfig
    metrics: Metrics = field(default_factory=Metrics)
    generator: TextGenerator | None = None
    template: str = ""
    context: int = 2048
    slots: Slots | None = None
    executor: ThreadPoolExecutor | None = None
    ready: bool = False
    draining: bool = False
    not_ready_reason: str = "loading the model"

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("name") or self.bundle_path.resolve().parent.name or "forgeml-lm")


def create_lm_app(
    bundle_path: str | Path, config: ServeConfig | None = None, *, api_key: str | None = None
) -> Any:
    """The ASGI app for one LM bundle (FastAPI inside the Guard); checksums are verified here, at once."""
    config = config or serve_config(CAUSAL_LM)
    path = Path(bundle_path)
    state = LMServerState(path, read_lm_manifest(path), config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(_load, state)
        state.slots = Slots(config.max_concurrent, config.max_queue)
        state.executor = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="generate")
        state.ready = True
        yield
        state.ready = False
        state.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="forgeml: language model",
        lifespan=lifespan,
        docs_url="/docs" if config.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if config.docs else None,
    )
    app.state.forgeml = state

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completion")
    async def chat(request: Request) -> Response:
        return await _handle(state, request, ChatRequest)

    @app.post("/v1/completions", summary="OpenAI-compatible text completion")
    async def completions(request: Request) -> Response:
        return await _handle(state, request, CompletionRequest)

    @app.get("/v1/models", summary="The one model this server serves")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": state.model_id, "object": "model", "created": 0, "owned_by": "forgeml"}],
        }

    add_probe_routes(app, state, config, error=_error)

    @app.get("/", summary="Chat page", response_class=HTMLResponse)
    async def page() -> Response:
        return HTMLResponse(
            render_chat_page(state.model_id, api_key_required=api_key is not None),
            headers={
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
            },
        )

    _install_handlers(app)
    return Guard(app, max_body_bytes=config.max_body_bytes, api_key=api_key, metrics=state.metrics)


def _load(state: LMServerState) -> None:
    started = time.perf_counter()
    if state.config.threads:  # 0 keeps torch's default (one per core), shared by the concurrent generations
        import torch

        torch.set_num_threads(state.config.threads)
    bundle = read_lm_bundle(state.bundle_path)
    state.generator = TextGenerator(bundle.model, bundle.tokenizer)
    state.template = bundle.template
    state.context = int(getattr(bundle.model.config, "max_position_embeddings", 2048) or 2048)
    state.generator.complete([_any_token(bundle.tokenizer)], Sampling(max_new_tokens=1))  # warm up
    state.metrics.model_load_seconds = time.perf_counter() - started
    logger.info("language model loaded in %.2fs", state.metrics.model_load_seconds)


def _any_token(tokenizer: Any) -> int:
    for value in (tokenizer.bos_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


async def _handle(state: LMServerState, request: Request, kind: type[GenerationFields]) -> Response:
    request_id = request.state.request_id
    if not state.ready or state.draining:
        reason = "shutting down" if state.draining else state.not_ready_reason
        return _error(503, "not_ready", reason, request_id, retry=True)
    started = time.perf_counter()
    try:
        body, prompt, sampling = await _decode(state, request, kind)
    except RequestProblem as problem:
        state.metrics.reject(problem.code)
        return _error(problem.status, problem.code, problem.message, request_id, param=problem.field)
    except ClientDisconnect:
        return Response(status_code=400)
    assert state.slots is not None
    deadline = started + state.config.request_timeout_s
    try:
        await state.slots.acquire(deadline - time.perf_counter())
    except Overloaded:
        state.metrics.reject("queue_full")
        return _error(
            503, "overloaded", "every generation slot is busy; retry shortly.", request_id, retry=True
        )
    except TimeoutError:
        state.metrics.reject("timeout")
        return _timeout(state, request_id)
    control = Control(deadline=deadline)
    chat = isinstance(body, ChatRequest)
    if body.stream:
        # The worker starts now, not when the body is first read: its end releases the slot even if
        # the client is gone before the first byte (it stops by the deadline at the latest).
        queue, result = _start_stream(state, prompt, sampling, control, request_id)
        return StreamingResponse(
            _events(state, queue, result, control, chat, request_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await _whole(state, prompt, sampling, control, chat, request_id)


async def _decode(
    state: LMServerState, request: Request, kind: type[GenerationFields]
) -> tuple[GenerationFields, list[int], Sampling]:
    """decode_request: the media type here, then the body (see :func:`decode_body`)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise RequestProblem(415, "unsupported_media_type", "send the request as application/json.")
    assert state.generator is not None
    return decode_body(
        await request.body(),
        kind,
        tokenizer=state.generator.tokenizer,
        template=state.template,
        config=state.config,
        context=state.context,
    )


async def _whole(
    state: LMServerState, prompt: list[int], sampling: Sampling, control: Control, chat: bool, request_id: str
) -> Response:
    assert state.generator is not None and state.slots is not None
    loop = asyncio.get_running_loop()
    state.metrics.inflight += 1
    future = loop.run_in_executor(state.executor, state.generator.complete, prompt, sampling, control)
    future.add_done_callback(lambda _: _finished(state))
    try:
        # the worker stops itself at the deadline; the grace second covers a long prompt's first pass
        remaining = control.deadline - time.perf_counter() + 1.0
        completion = await asyncio.wait_for(asyncio.shield(future), max(remaining, 0.0))
    except TimeoutError:
        control.cancelled.set()
        return _timeout(state, request_id)
    except asyncio.CancelledError:
        control.cancelled.set()
        raise
    if completion.finish_reason == "timeout":
        return _timeout(state, request_id)
    return JSONResponse(_whole_body(state, completion, chat, request_id))


def _finished(state: LMServerState) -> None:
    state.metrics.inflight -= 1
    state.metrics.batch(1)
    assert state.slots is not None
    state.slots.release()


def _whole_body(state: LMServerState, completion: Completion, chat: bool, request_id: str) -> dict[str, Any]:
    finish = "length" if completion.finish_reason == "length" else "stop"
    choice: dict[str, Any] = (
        {"index": 0, "message": {"role": "assistant", "content": completion.text}, "finish_reason": finish}
        if chat
        else {"index": 0, "text": completion.text, "logprobs": None, "finish_reason": finish}
    )
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": state.model_id,
        "choices": [choice],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }


def _start_stream(
    state: LMServerState, prompt: list[int], sampling: Sampling, control: Control, request_id: str
) -> tuple[asyncio.Queue[object], Completion]:
    """Run the generation in a worker thread that puts text pieces (then ``_END``) on a queue."""
    assert state.generator is not None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    result = Completion()
    generator = state.generator

    def produce() -> None:
        try:
            for piece in generator.stream(prompt, sampling, control, result):
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except Exception as exc:  # reported to the client as an error event; the trace goes to the log
            logger.error("generation %s failed", request_id, exc_info=exc)
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    state.metrics.inflight += 1
    loop.run_in_executor(state.executor, produce).add_done_callback(lambda _: _finished(state))
    return queue, result


async def _events(
    state: LMServerState,
    queue: asyncio.Queue[object],
    result: Completion,
    control: Control,
    chat: bool,
    request_id: str,
) -> AsyncIterator[bytes]:
    """Server-sent events: one chunk per text piece, a last chunk with the finish reason, ``[DONE]``."""
    identity = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": state.model_id,
    }
    try:
        if chat:
            yield _event(
                identity | {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            )
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                yield _event(
                    {
                        "error": {
                            "code": "internal_error",
                            "message": "generation failed",
                            "request_id": request_id,
                        }
                    }
                )
                return
            yield _event(identity | {"choices": [_piece(chat, str(item), None)]})
        if result.finish_reason == "timeout":
            state.metrics.reject("timeout")
            message = f"no complete answer within {state.config.request_timeout_s} s."
            yield _event({"error": {"code": "timeout", "message": message, "request_id": request_id}})
            return
        finish = "length" if result.finish_reason == "length" else "stop"
        yield _event(identity | {"choices": [_piece(chat, "", finish)]})
        yield b"data: [DONE]\n\n"
    finally:
        control.cancelled.set()  # the client left, or we are done: the worker stops at its next token


def _piece(chat: bool, text: str, finish: str | None) -> dict[str, Any]:
    if chat:
        return {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _timeout(state: LMServerState, request_id: str) -> Response:
    state.metrics.reject("timeout")
    return _error(504, "timeout", f"no answer within {state.config.request_timeout_s} s.", request_id)


def _error(
    status: int, code: str, message: str, request_id: str, *, retry: bool = False, **extra: Any
) -> Response:
    # The Guard's one error shape, plus OpenAI's `type` and `param` so its clients read it natively.
    kind = "invalid_request_error" if status < 500 else "server_error"
    headers = {"Retry-After": "1"} if retry else None
    body = error_body(status, code, message, request_id, type=kind, **extra)
    return Response(body, status, headers, media_type="application/json")


def _install_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), request.state.request_id)

    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "")
        logger.error("request %s failed", request_id, exc_info=exc)
        return _error(
            500, "internal_error", "internal error; quote the request id when reporting it.", request_id
        )

    async def too_large(request: Request, exc: Exception) -> Response:
        limit = request.app.state.forgeml.config.max_body_bytes
        request.app.state.forgeml.metrics.reject("content_too_large")
        return _error(
            413, "content_too_large", f"the body is larger than {limit} bytes.", request.state.request_id
        )

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(Exception, unexpected)
