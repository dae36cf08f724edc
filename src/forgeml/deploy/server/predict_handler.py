"""The ``predictor`` kind's handler: rows in, predictions out, around a Predictor and a micro-batcher.

Routes: ``POST /v1/predict`` (a bare ASGI endpoint, see :mod:`~forgeml.deploy.server.predict_route`),
``GET /v1/metadata`` (input schema, labels, metrics, versions and checksums) and ``GET /`` (the
try-it page). No route loads a model or fetches a URL.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from forgeml.bundle.encode import RecordEncoder
from forgeml.bundle.manifest import verify_files
from forgeml.bundle.predictor import Predictor
from forgeml.config import PREDICTOR
from forgeml.deploy.server.batching import MicroBatcher
from forgeml.deploy.server.codec import Codec
from forgeml.deploy.server.handler import KindHandler, ServerState, response
from forgeml.deploy.server.image_upload import add_image_route
from forgeml.deploy.server.memory import IdleTrimmer, trim_memory
from forgeml.deploy.server.page import render_page
from forgeml.deploy.server.predict_route import PredictEndpoint, encode_response
from forgeml.deploy.server.schema import RequestSchema

if TYPE_CHECKING:
    from forgeml.deploy.server.guard import ASGIApp

logger = logging.getLogger(__name__)


class PredictHandler(KindHandler):
    """Tabular, image and text models: validation from the bundle's input schema, micro-batched calls."""

    kind = PREDICTOR
    json_routes: ClassVar[frozenset[str]] = frozenset({"/v1/predict"})

    def __init__(self, state: ServerState) -> None:
        super().__init__(state)
        verify_files(state.bundle_path, state.manifest)
        self.schema = RequestSchema.from_manifest(
            state.manifest["input_schema"], max_rows=state.config.max_rows
        )
        self.endpoint = PredictEndpoint(self, self.schema)
        self.predictor: Predictor | None = None
        self.encoder: RecordEncoder | None = None
        self.batcher: MicroBatcher | None = None
        # Decodes large bodies and encodes large answers off the event loop (serve.codec: a child
        # process by default, see forgeml.deploy.server.codec).
        self.codec: Codec | None = None
        self.trimmer: IdleTrimmer | None = None  # gives freed memory back after a burst

    @property
    def title(self) -> str:
        return f"forgeml: {self.state.manifest['task']['kind']} model"

    def load(self) -> None:
        config = self.state.config
        threads = config.threads or max(1, _cores() // config.workers)
        predictor = Predictor.from_bundle(
            self.state.bundle_path, threads=threads, unseen=config.unseen_category, spinning=False
        )
        encoder = RecordEncoder(predictor.pipeline, unseen=config.unseen_category)
        warm = {name: np.repeat(array, 2, axis=0) for name, array in _zero_feeds(predictor).items()}
        predictor.run(warm)  # the first call allocates; do it before we say ready
        self.predictor, self.encoder = predictor, encoder
        logger.info("model engine: %s", predictor.engine.name)

    async def start(self) -> None:
        assert self.predictor is not None
        config = self.state.config
        self.batcher = MicroBatcher(
            self.predictor.run,
            self.state.metrics,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
        )
        self.batcher.start()
        self.codec = Codec(
            {
                "decode": self.endpoint.decode_now,
                "encode": functools.partial(encode_response, self.predictor),
                "trim": trim_memory,
            },
            config.codec,
        )
        await asyncio.to_thread(self.codec.start)
        self.trimmer = IdleTrimmer(self.endpoint.busy, self.codec)

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        if self.trimmer is not None:
            self.trimmer.cancel()
        if self.codec is not None:
            self.codec.stop()

    def full(self) -> bool:
        return self.endpoint.full()

    def direct_routes(self) -> dict[tuple[str, str], ASGIApp]:
        return {("POST", "/v1/predict"): self.endpoint}

    def add_routes(self, app: FastAPI) -> None:
        endpoint, manifest = self.endpoint, self.state.manifest

        @app.post(
            "/v1/predict",
            summary="Predict rows",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
                    },
                }
            },
            responses={400: {}, 401: {}, 413: {}, 415: {}, 422: {}, 503: {}, 504: {}},
        )
        async def predict(request: Request) -> Response:
            # Declared for the OpenAPI document; the Guard serves POST /v1/predict itself (see predict_route).
            return response(await endpoint.answer(request.body, request.state.request_id))

        add_image_route(app, self)  # POST /v1/predict/image: uploaded files, for models trained on files

        @app.get("/v1/metadata", summary="Input schema, labels, metrics, versions and checksums")
        async def metadata() -> dict[str, Any]:
            return self.metadata()

        @app.get("/", summary="Try-it page", response_class=HTMLResponse)
        async def page() -> Response:
            return HTMLResponse(render_page(manifest, api_key_required=self.state.api_key_required))

    def metadata(self) -> dict[str, Any]:
        manifest, config = self.state.manifest, self.state.config
        return {
            "task": manifest["task"],
            "input_schema": manifest["input_schema"],
            "metrics": manifest.get("metrics", {}),
            "versions": manifest.get("versions", {}),
            "files": {name: record.get("sha256") for name, record in manifest["files"].items()},
            "bundle_sha256": hashlib.sha256(
                (self.state.bundle_path / "bundle.json").read_bytes()
            ).hexdigest(),
            "engine": None if self.predictor is None else self.predictor.engine.name,
            "onnx": manifest.get("onnx"),
            "limits": {
                "max_rows": config.max_rows,
                "max_body_bytes": config.max_body_bytes,
                "max_batch_size": config.max_batch_size,
                "request_timeout_s": config.request_timeout_s,
                "unseen_category": config.unseen_category,
            },
        }

    def openapi(self, document: dict[str, Any]) -> None:
        """The request schema built from the bundle (the same model that validates requests)."""
        model = self.schema.model.model_json_schema(
            ref_template="#/components/schemas/{model}", by_alias=True
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(model.pop("$defs", {}))
        components["PredictRequest"] = model


def _zero_feeds(predictor: Predictor) -> dict[str, np.ndarray]:
    from forgeml.bundle.onnx_export import example_inputs

    return {name: tensor.numpy()[:1] for name, tensor in example_inputs(predictor.pipeline).items()}


def _cores() -> int:
    from forgeml.bundle.engine import available_cores

    return available_cores()
