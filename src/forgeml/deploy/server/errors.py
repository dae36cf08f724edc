"""What the server refuses with, for every kind: the one error body, request errors and overload.

Every 4xx/5xx body is ``{"error": {"code", "message", "request_id", "field", "row", ...}}`` with the
same keys whatever the error (``field`` and ``row`` are null where no field is at fault), so a client
reads one shape; a kind's handler may add keys to every one of its errors (the language-model
handler adds OpenAI's ``type`` and ``param``, so its clients read them).
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


def error_payload(
    code: str,
    message: str,
    request_id: str,
    *,
    field: str | None = None,
    row: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The one error shape: every key always present (null when it does not apply)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "request_id": request_id,
            "field": field,
            "row": row,
            **extra,
        }
    }


def error_body(status: int, code: str, message: str, request_id: str, **extra: Any) -> bytes:
    """:func:`error_payload` as the JSON body of a ``status`` response."""
    return json.dumps(error_payload(code, message, request_id, **extra)).encode()
