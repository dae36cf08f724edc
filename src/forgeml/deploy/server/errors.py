"""What the server refuses with, for every kind: the one error body, request errors and overload.

Every 4xx/5xx body is ``{"error": {"code", "message", "request_id", ...}}``; a kind's handler may add
fields (the language-model handler adds OpenAI's ``type`` and ``param``, so its clients read them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]  # status, JSON body, extra headers
RETRY = [(b"retry-after", b"1")]


@dataclass(frozen=True)
class RequestError(Exception):
    """A client mistake: HTTP status, a stable code, a message, and where (field path, row index)."""

    status: int
    code: str
    message: str
    field: str | None = None
    row: int | None = None


class Overloaded(Exception):
    """Every place is taken (the prediction queue, or the generation slots and their queue): 503."""


def error_body(status: int, code: str, message: str, request_id: str, **extra: Any) -> bytes:
    """The one error shape of every 4xx/5xx: ``{"error": {"code", "message", "request_id", ...}}``."""
    details = {key: value for key, value in extra.items() if value is not None}
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id, **details}}
    ).encode()
