"""The deploy stage: bundles, the Predictor, batch prediction.

``write_bundle`` / ``read_bundle`` are the format; ``Predictor`` is the one inference path.
"""

from __future__ import annotations

from forgeml.deploy.bundle import Bundle, read_bundle, write_bundle
from forgeml.deploy.predict import predict_file
from forgeml.deploy.predictor import Predictor

__all__ = ["Bundle", "Predictor", "predict_file", "read_bundle", "write_bundle"]
