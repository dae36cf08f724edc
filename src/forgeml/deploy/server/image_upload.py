"""``POST /v1/predict/image``: image files uploaded as they are, for models trained on image files.

Two bodies, as BentoML's ``Image`` input takes them: ``multipart/form-data`` with one or more file
parts (one row per file, in order; the browser's and ``curl -F file=@cat.jpg`` form), or a raw
``image/jpeg``, ``image/png``, ``image/webp``, ``image/bmp`` or ``image/gif`` body (one row). Any other
content type is a 415. The body limit (``serve.max_body_bytes``, 413) is the Guard's; the pixel
limit is checked from the file's header before its pixels are decoded (413); bytes that are not an
allowed image, or a truncated file, are a 422 naming the part. Each file is decoded by the training
decoder (``forgeml.data.images.decode_bytes``) with the bundle's size, resize policy and channels,
so the server sees exactly the pixels training saw. ``POST /v1/predict`` keeps taking JSON.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from forgeml.data.images import DecodeOptions, ImageError, decode_bytes
from forgeml.deploy.server.errors import Answer, Overloaded, RequestError
from forgeml.deploy.server.handler import response
from forgeml.deploy.server.predict_route import encode_response

if TYPE_CHECKING:
    from forgeml.deploy.server.predict_handler import PredictHandler

PATH = "/v1/predict/image"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif")
MAX_FILES = 64  # parts per multipart request (Starlette's own default is 1000)


def decode_options(manifest: dict[str, Any]) -> DecodeOptions | None:
    """The bundle's decoding options; None for a model not trained on image files."""
    image = (manifest.get("features") or {}).get("image") or {}
    decode = dict(image.get("decode") or {})
    decode.pop("cache", None)
    return DecodeOptions(**decode) if decode else None


def add_image_route(app: FastAPI, handler: PredictHandler) -> None:
    """Declare the upload route when the bundle was trained on image files (else nothing)."""
    options = decode_options(handler.state.manifest)
    if options is None:
        return
    content = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES}
    content["multipart/form-data"] = {
        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
    }

    @app.post(
        PATH,
        summary="Predict uploaded image files",
        openapi_extra={"requestBody": {"required": True, "content": content}},
        responses={400: {}, 401: {}, 413: {}, 415: {}, 422: {}, 503: {}, 504: {}},
    )
    async def predict_image(request: Request) -> Response:
        return response(await _answer(handler, options, request))


async def _answer(handler: PredictHandler, options: DecodeOptions, request: Request) -> Answer:
    state, request_id = handler.state, request.state.request_id
    refusal = state.unavailable(request_id)
    if refusal is not None:
        return refusal
    try:
        uploads = await _uploads(request)
        images = await asyncio.to_thread(_decode_all, uploads, options)
        assert handler.encoder is not None and handler.batcher is not None and handler.predictor is not None
        feeds = handler.encoder.encode([{} for _ in uploads], images)  # uint8, as the graph takes it
    except RequestError as exc:
        return state.refuse(exc, request_id)
    try:
        outputs = await handler.batcher.submit(feeds, len(uploads), state.config.request_timeout_s)
    except Overloaded:
        return state.overloaded(request_id)
    except TimeoutError:
        return state.timed_out(request_id)
    return 200, encode_response(handler.predictor, outputs, request_id), []


async def _uploads(request: Request) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded file, or RequestError (415, 400, 422)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in IMAGE_TYPES:
        return [("body", await request.body())]
    if media != "multipart/form-data":
        raise RequestError(
            415,
            "unsupported_media_type",
            f"send an image file as multipart/form-data or as a raw body of type {', '.join(IMAGE_TYPES)}; "
            f"got {media or 'no content type'!r}. JSON goes to /v1/predict.",
        )
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    except Exception as exc:  # Starlette raises its own MultiPartException (and others) for bad bodies
        raise RequestError(
            400, "invalid_multipart", f"the multipart body cannot be parsed ({exc})."
        ) from None
    files = [(key, value) for key, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise RequestError(422, "missing_field", "the form holds no file part; send one as file=@photo.jpg.")
    return [(f"{key} ({value.filename or 'file'})", await value.read()) for key, value in files]


def _decode_all(uploads: list[tuple[str, bytes]], options: DecodeOptions) -> np.ndarray:
    """``(N, C, H, W)`` uint8, or RequestError naming the first bad part (413 over the pixel limit)."""
    images = []
    for row, (name, data) in enumerate(uploads):
        try:
            images.append(decode_bytes(data, options, name))
        except ImageError as exc:
            status = 413 if exc.kind == "image_too_large" else 422
            raise RequestError(status, exc.kind, str(exc), name, row) from None
    return np.stack(images)
