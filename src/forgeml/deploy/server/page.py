"""The try-it page at ``GET /``: one self-contained HTML file built from the bundle's input schema.

Tabular models get a form (a number box per numeric column, a text box with the trained
categories as suggestions per categorical column, a wide text box per text column). Image models get a drop zone / file input that
takes a PNG (decoded in the browser through a canvas, turned grey and scaled to the trained shape
and pixel scale) or a ``.npy`` array. Either way the page calls ``/v1/predict`` and shows the
prediction with its class probabilities; a model trained on image files gets the dropped photo itself
at ``/v1/predict/image``, decoded by the server exactly as in training. No external assets, no inline event handlers from data.
The markup, style and script are ``templates/try_page.*``.
"""

from __future__ import annotations

from typing import Any

from forgeml import templates


def render_page(manifest: dict[str, Any], *, api_key_required: bool) -> str:
    """The page for this bundle (``templates/try_page.html.j2``; its schema is embedded as JSON)."""
    schema = manifest["input_schema"]
    image_state = manifest.get("features", {}).get("image") or {}
    data = {
        "columns": schema["columns"],
        "image": schema.get("image"),
        "image_scale": float(image_state.get("scale", 1.0)),
        "upload": bool(image_state.get("decode")),  # trained on image files: the file goes to /v1/predict/image
        "labels": manifest["task"]["labels"],
    }
    return templates.render(
        "try_page.html.j2", schema=data, kind=manifest["task"]["kind"], api_key_required=api_key_required
    )
