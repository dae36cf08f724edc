"""The deploy stage: bundles, the Predictor, batch prediction.

``write_bundle`` / ``read_bundle`` are the format; ``Predictor`` is the one inference path.
The names are imported on first use (PEP 562): the CLI registers the deploy verbs from
``forgeml.deploy.command``, and importing this package must not pull in torch for ``--help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.deploy.bundle import Bundle, read_bundle, write_bundle
    from forgeml.deploy.predict import predict_file
    from forgeml.deploy.predictor import Predictor

_HOMES = {
    "Bundle": "forgeml.deploy.bundle",
    "read_bundle": "forgeml.deploy.bundle",
    "write_bundle": "forgeml.deploy.bundle",
    "predict_file": "forgeml.deploy.predict",
    "Predictor": "forgeml.deploy.predictor",
}
__all__ = ["Bundle", "Predictor", "predict_file", "read_bundle", "write_bundle"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
