"""The deploy stage: batch prediction, ``forgeml verify``, the HTTP server and its try-it page.

The bundle format and the Predictor live one layer down in :mod:`forgeml.bundle` (compression needs
them too); they are re-exported here because deploying is where users look for them. Names are
imported on first use (PEP 562): importing this package must not pull in torch for ``--help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.bundle import read_bundle
    from forgeml.bundle.predictive import Bundle, write_bundle
    from forgeml.bundle.predictor import Predictor
    from forgeml.deploy.predict import predict_file

_HOMES = {
    "Bundle": "forgeml.bundle.predictive",
    "read_bundle": "forgeml.bundle",
    "write_bundle": "forgeml.bundle.predictive",
    "predict_file": "forgeml.deploy.predict",
    "Predictor": "forgeml.bundle.predictor",
}
__all__ = ["Bundle", "Predictor", "predict_file", "read_bundle", "write_bundle"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
