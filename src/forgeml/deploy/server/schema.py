"""Request and response models built from the bundle's input schema (``bundle.json``).

One pydantic model per bundle, made with ``pydantic.create_model``: it drives both request
validation (pydantic-core's strict JSON parser: no NaN/Infinity literals, bounded nesting depth)
and the OpenAPI document, so the docs cannot drift from what the server accepts.

Wire format of ``POST /v1/predict``: ``{"rows": [{<column>: value, ...}, ...]}``.

- numeric columns: a JSON number or ``null`` (null is imputed as in training); strings, booleans,
  NaN and infinities are refused.
- categorical columns: a string (or an integer for integer-coded columns) or ``null``.
- text columns: a string or ``null`` (the empty text); numbers, booleans and lists are refused (422
  naming ``rows[i].<column>``). The fitted tokenizer truncates a long text to the trained length;
  there is no separate length limit: the body limit (``serve.max_body_bytes``, 413) bounds it.
- images (image models): ``"image"`` is nested lists ``[C][H][W]`` (or ``[H][W]`` for one channel)
  of numbers on the training data's pixel scale, or ``{"dtype": "uint8"|"float32", "shape": [...],
  "base64": "..."}`` holding the raw little-endian array bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    create_model,
)

from forgeml.deploy.server.errors import RequestError
from forgeml.errors import DataError

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:(//|/)")


class EncodedImage(BaseModel):
    """A raw array in base64: ``shape`` (C, H, W) or (H, W), ``dtype`` uint8 or float32, little-endian."""

    model_config = ConfigDict(extra="forbid", strict=True)
    dtype: Literal["uint8", "float32"]
    shape: Annotated[list[Annotated[int, Field(ge=1, le=65536)]], Field(min_length=2, max_length=3)]
    base64: str


ImageInput = list[list[list[Number]]] | list[list[Number]] | EncodedImage


@dataclass(frozen=True)
class RequestSchema:
    """The request model for one bundle, and how to turn a validated request into records and images."""

    model: type[BaseModel]
    categorical: tuple[str, ...]
    image_shape: tuple[int, ...] | None

    @classmethod
    def from_manifest(cls, input_schema: dict[str, Any], *, max_rows: int) -> RequestSchema:
        fields: dict[str, Any] = {}
        categorical = []
        for index, column in enumerate(input_schema["columns"]):
            name = column["name"]
            if column["kind"] == "numeric":
                kind: Any = Number | None
                text = "a number, or null to impute it"
            elif column["kind"] == "text":
                kind = StrictStr | None
                text = "free text (truncated to the trained length), or null for none"
            else:
                categorical.append(name)
                kind = StrictStr | StrictInt | None
                text = f"one of the trained categories ({', '.join(map(str, column['categories'][:20]))})"
            fields[f"field_{index}"] = (kind, Field(alias=name, description=text))
        image = input_schema.get("image")
        if image is not None:
            fields["image"] = (ImageInput, Field(description=f"pixels of shape {image['shape']} (C, H, W)"))
        row = create_model("Row", __config__=ConfigDict(extra="forbid", populate_by_name=False), **fields)
        request = create_model(
            "PredictRequest",
            __config__=ConfigDict(extra="forbid"),
            rows=(list[row], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
        )
        return cls(request, tuple(categorical), None if image is None else tuple(image["shape"]))

    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.model)

    def decode(
        self, adapter: TypeAdapter[Any], body: bytes
    ) -> tuple[list[dict[str, Any]], np.ndarray | None]:
        """Records (column -> value) and images ``(N, C, H, W)`` float32, or RequestError."""
        try:
            request = adapter.validate_json(body)
        except ValidationError as exc:
            raise _request_error(exc.errors(include_url=False)) from None
        records = [row.model_dump(by_alias=True, exclude={"image"}) for row in request.rows]
        for index, record in enumerate(records):
            for column in self.categorical:
                value = record.get(column)
                if isinstance(value, str) and URL.match(value):
                    raise RequestError(
                        400,
                        "url_not_allowed",
                        f"rows[{index}].{column}: URLs are not fetched or accepted.",
                        f"rows[{index}].{column}",
                        index,
                    )
        images = None
        if self.image_shape is not None:
            images = np.stack([self._image(row.image, index) for index, row in enumerate(request.rows)])
        return records, images

    def _image(self, value: Any, row: int) -> np.ndarray:
        field = f"rows[{row}].image"
        if isinstance(value, EncodedImage):
            try:
                data = base64.b64decode(value.base64, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(
                    422, "invalid_image", f"{field}.base64: not valid base64.", field, row
                ) from None
            dtype = np.dtype(value.dtype).newbyteorder("<")
            if len(data) != int(np.prod(value.shape)) * dtype.itemsize:
                raise RequestError(
                    422,
                    "invalid_image",
                    f"{field}: {len(data)} bytes do not hold a {value.dtype} array of shape {value.shape}.",
                    field,
                    row,
                )
            array = np.frombuffer(data, dtype=dtype).reshape(value.shape).astype(np.float32)
        else:
            try:
                array = np.asarray(value, dtype=np.float32)
            except ValueError:  # ragged nested lists
                raise RequestError(
                    422, "invalid_image", f"{field}: rows of the image differ in length.", field, row
                ) from None
        assert self.image_shape is not None
        if array.ndim == 2 and self.image_shape[0] == 1:
            array = array[None]
        if tuple(array.shape) != self.image_shape:
            raise RequestError(
                422,
                "wrong_shape",
                f"{field}: shape {list(array.shape)}, expected {list(self.image_shape)} (C, H, W).",
                field,
                row,
            )
        if not np.isfinite(array).all():
            raise RequestError(422, "not_finite", f"{field}: NaN or infinite pixel values.", field, row)
        return array


def data_error(exc: DataError) -> RequestError:
    """An encoding error (e.g. an unseen category) as a 422 naming the row (0-based) and field."""
    row = None if exc.row is None else exc.row - 1
    field = None if row is None else f"rows[{row}]" + (f".{exc.column}" if exc.column else "")
    return RequestError(422, "invalid_value", str(exc), field, row)


def _request_error(errors: list[dict[str, Any]]) -> RequestError:
    first = errors[0]
    if first["type"] == "json_invalid":
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        if "number out of range" in message:  # e.g. a 5000-digit integer: a bad value, not bad JSON
            return RequestError(422, "number_out_of_range", f"request body: {message}.")
        return RequestError(400, "invalid_json", f"the body is not valid JSON ({message}).")
    for error in errors:
        name = str(error["loc"][-1]) if error["loc"] else ""
        url_value = isinstance(error.get("input"), str) and URL.match(error["input"])
        if error["type"] == "extra_forbidden" and ("url" in name.lower() or url_value):
            path = _path(error["loc"])
            return RequestError(
                400, "url_not_allowed", f"{path}: URLs are not fetched or accepted.", path, _row(error["loc"])
            )
    path = _path(first["loc"])
    kind = {
        "missing": "missing_field",
        "extra_forbidden": "unknown_field",
        "finite_number": "not_finite",
    }.get(first["type"], "wrong_type" if first["type"].endswith("_type") else "invalid_value")
    more = f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return RequestError(
        422, kind, f"{path or 'body'}: {first['msg']}{more}.", path or None, _row(first["loc"])
    )


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("list[list[list[float]]]", "list[list[float]]", "EncodedImage", "str", "int", "float"):
            continue  # union-member names pydantic puts in the location
        else:
            text += f".{part}" if text else str(part)
    return text


def _row(loc: tuple[Any, ...]) -> int | None:
    return loc[1] if len(loc) > 1 and loc[0] == "rows" and isinstance(loc[1], int) else None
