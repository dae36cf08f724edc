"""The ``causal_lm`` kind's handler: OpenAI-compatible chat and text completions, streamed or whole.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models`` and ``GET /``
(a chat page with no external assets); the server adds the probes, metrics, the Guard and the
drain, as for every kind.

At most ``serve.max_concurrent`` generations run at once (each in a worker thread), and
``serve.max_queue`` more may wait; beyond that a request gets the server's 503 with
``Retry-After``. Each request has ``serve.request_timeout_s`` in all (waiting included): then a
504, or an error event on a stream, and its worker stops at the next token. New generations are
refused once SIGTERM arrives: one may take longer than the drain allows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from forgeml.bundle.causal_lm import WEIGHTS, read_lm_bundle
from forgeml.bundle.manifest import verify_files
from forgeml.config import CAUSAL_LM
from forgeml.deploy.server.errors import Overloaded, RequestError
from forgeml.deploy.server.handler import KindHandler, ServerState, response
from forgeml.deploy.server.lm_page import render_chat_page
from forgeml.deploy.server.lm_schema import (
    ChatRequest,
    CompletionRequest,
    GenerationFields,
    chunk,
    completion_body,
    decode_body,
    first_chunk,
    models_body,
)
from forgeml.models.generate import Completion, Control, Sampling, TextGenerator

logger = logging.getLogger(__name__)
_END = object()
CHAT_PAGE_POLICY = "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"


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


class LMHandler(KindHandler):
    """A language model and its tokenizer behind OpenAI's chat and completions endpoints."""

    kind = CAUSAL_LM
    single_worker = (
        "serve.workers must be 1 for a language model (each worker would hold its own copy); "
        "raise serve.max_concurrent for more generations at once."
    )
    refuse_while_draining = True
    json_routes: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions", "/v1/completions"})

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        verify_files(state.bundle_path, state.manifest, weights=WEIGHTS)
        self.generator: TextGenerator | None = None
        self.template = ""
        self.context = 2048
        self.slots: Slots | None = None
        self.executor: ThreadPoolExecutor | None = None

    @property
    def title(self) -> str:
        return "forgeml: language model"

    @property
    def model_id(self) -> str:
        path = self.state.bundle_path
        return str(self.state.manifest.get("name") or path.resolve().parent.name or "forgeml-lm")

    def load(self) -> None:
        if self.state.config.threads:  # 0 keeps torch's default (one per core), shared by the generations
            import torch

            torch.set_num_threads(self.state.config.threads)
        bundle = read_lm_bundle(self.state.bundle_path)
        self.generator = TextGenerator(bundle.model, bundle.tokenizer)
        self.template = bundle.template
        self.context = int(getattr(bundle.model.config, "max_position_embeddings", 2048) or 2048)
        self.generator.complete([_any_token(bundle.tokenizer)], Sampling(max_new_tokens=1))  # warm up

    async def start(self) -> None:
        config = self.state.config
        self.slots = Slots(config.max_concurrent, config.max_queue)
        self.executor = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="generate")

    async def stop(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def full(self) -> bool:
        return self.slots is not None and self.slots.admitted >= self.slots.limit + self.slots.queue

    def error_fields(self, status: int) -> dict[str, Any]:
        # OpenAI's `type` and `param`, so its clients read our errors natively.
        return {"type": "invalid_request_error" if status < 500 else "server_error", "param": None}

    def problem_fields(self, problem: RequestError) -> dict[str, Any]:
        # `param` is OpenAI's name for the field at fault
        return {"field": problem.field, "row": problem.row, "param": problem.field}

    def add_routes(self, app: FastAPI) -> None:
        @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completion", **_documented("Chat"))
        async def chat(request: Request) -> Response:
            return await self.handle(request, ChatRequest)

        @app.post("/v1/completions", summary="OpenAI-compatible text completion", **_documented("Completion"))
        async def completions(request: Request) -> Response:
            return await self.handle(request, CompletionRequest)

        @app.get("/v1/models", summary="The one model this server serves")
        async def models() -> dict[str, Any]:
            return models_body(self.model_id)

        @app.get("/", summary="Chat page", response_class=HTMLResponse)
        async def page() -> Response:
            return HTMLResponse(
                render_chat_page(self.model_id, api_key_required=self.state.api_key_required),
                headers={"Content-Security-Policy": CHAT_PAGE_POLICY},
            )

    def openapi(self, document: dict[str, Any]) -> None:
        """The request bodies: the same models that validate them, ``max_tokens`` bounded by the server's limit."""
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in (("ChatRequest", ChatRequest), ("CompletionRequest", CompletionRequest)):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            limit = self.state.config.max_tokens_limit
            for key in ("max_tokens", "max_completion_tokens"):
                if key in schema["properties"]:
                    schema["properties"][key]["anyOf"][0]["maximum"] = limit
            components[name] = schema

    async def handle(self, request: Request, kind: type[GenerationFields]) -> Response:
        """decode_request -> admission -> generate -> encode_response, for either endpoint."""
        state = self.state
        request_id = request.state.request_id
        refusal = state.unavailable(request_id)
        if refusal is not None:
            return response(refusal)
        started = time.perf_counter()
        assert self.generator is not None and self.slots is not None
        try:
            body, prompt, sampling = decode_body(
                await request.body(),
                kind,
                tokenizer=self.generator.tokenizer,
                template=self.template,
                config=state.config,
                context=self.context,
            )
        except RequestError as problem:
            return response(state.refuse(problem, request_id))
        except ClientDisconnect:
            return Response(status_code=400)
        deadline = started + state.config.request_timeout_s
        try:
            await self.slots.acquire(deadline - time.perf_counter())
        except Overloaded:
            return response(state.overloaded(request_id))
        except TimeoutError:
            return response(state.timed_out(request_id))
        control = Control(deadline=deadline)
        chat = isinstance(body, ChatRequest)
        if body.stream:
            # The worker starts now, not when the body is first read: its end releases the slot even if
            # the client is gone before the first byte (it stops by the deadline at the latest).
            queue, result = self._start_stream(prompt, sampling, control, request_id)
            return StreamingResponse(
                self._events(queue, result, control, chat, request_id),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await self._whole(prompt, sampling, control, chat, request_id)

    async def _whole(
        self, prompt: list[int], sampling: Sampling, control: Control, chat: bool, request_id: str
    ) -> Response:
        assert self.generator is not None
        loop = asyncio.get_running_loop()
        self.state.metrics.inflight += 1
        future = loop.run_in_executor(self.executor, self.generator.complete, prompt, sampling, control)
        future.add_done_callback(lambda _: self._finished())
        try:
            # the worker stops itself at the deadline; the grace second covers a long prompt's first pass
            remaining = control.deadline - time.perf_counter() + 1.0
            completion = await asyncio.wait_for(asyncio.shield(future), max(remaining, 0.0))
        except TimeoutError:
            control.cancelled.set()
            return response(self.state.timed_out(request_id))
        except asyncio.CancelledError:
            control.cancelled.set()
            raise
        if completion.finish_reason == "timeout":
            return response(self.state.timed_out(request_id))
        return JSONResponse(
            completion_body(completion, chat=chat, request_id=request_id, model=self.model_id)
        )

    def _finished(self) -> None:
        self.state.metrics.inflight -= 1
        self.state.metrics.batch(1)
        assert self.slots is not None
        self.slots.release()

    def _start_stream(
        self, prompt: list[int], sampling: Sampling, control: Control, request_id: str
    ) -> tuple[asyncio.Queue[object], Completion]:
        """Run the generation in a worker thread that puts text pieces (then ``_END``) on a queue."""
        assert self.generator is not None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        result = Completion()
        generator = self.generator

        def produce() -> None:
            try:
                for piece in generator.stream(prompt, sampling, control, result):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as exc:  # reported to the client as an error event; the trace goes to the log
                logger.error("generation %s failed", request_id, exc_info=exc)
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        self.state.metrics.inflight += 1
        loop.run_in_executor(self.executor, produce).add_done_callback(lambda _: self._finished())
        return queue, result

    async def _events(
        self,
        queue: asyncio.Queue[object],
        result: Completion,
        control: Control,
        chat: bool,
        request_id: str,
    ) -> AsyncIterator[bytes]:
        """Server-sent events: one chunk per text piece, a last chunk with the finish reason, ``[DONE]``."""
        created = int(time.time())
        # Once the stream has begun its status line (200) is out: an error travels as an event, in the
        # one error shape.
        try:
            if chat:
                yield _event(first_chunk(request_id=request_id, model=self.model_id, created=created))
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    yield _event(
                        self.state.error_payload(500, "internal_error", "generation failed", request_id)
                    )
                    return
                yield _event(
                    chunk(
                        str(item),
                        None,
                        chat=chat,
                        request_id=request_id,
                        model=self.model_id,
                        created=created,
                    )
                )
            if result.finish_reason == "timeout":
                self.state.metrics.reject("timeout")
                message = f"no complete answer within {self.state.config.request_timeout_s} s."
                yield _event(self.state.error_payload(504, "timeout", message, request_id))
                return
            finish = "length" if result.finish_reason == "length" else "stop"
            yield _event(
                chunk("", finish, chat=chat, request_id=request_id, model=self.model_id, created=created)
            )
            yield b"data: [DONE]\n\n"
        finally:
            control.cancelled.set()  # the client left, or we are done: the worker stops at its next token


def _documented(kind: str) -> dict[str, Any]:
    """The route's request body (a component :meth:`LMHandler.openapi` adds) and its answers: JSON, or
    server-sent events with ``stream: true``; the errors the handler and the Guard send."""
    body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{kind}Request"}}}}
    return {
        "openapi_extra": {"requestBody": {"required": True, **body}},
        "responses": {
            200: {"content": {"application/json": {}, "text/event-stream": {}}},
            **dict.fromkeys((400, 401, 413, 415, 422, 503, 504), {}),
        },
    }


def _any_token(tokenizer: Any) -> int:
    for value in (tokenizer.bos_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
