"""``forgeml serve``: one entry for every bundle; the bundle's kind picks the handler, once.

A ``predictor`` bundle gets the prediction server (:mod:`forgeml.deploy.server.app`), a
``causal_lm`` bundle the OpenAI-compatible one (:mod:`forgeml.deploy.server.lm_app`). Settings come
in layers (a config's serve section, then ``--set`` and flags, or keyword arguments), later layers
winning, and are checked against the kind's own settings before the port is bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgeml.bundle.manifest import bundle_kind
from forgeml.config import CAUSAL_LM, PREDICTOR, serve_config


def serve_bundle(bundle: str | Path, *layers: dict[str, Any]) -> None:
    """Serve ``bundle`` until SIGTERM/SIGINT with the settings of ``layers`` (later ones win)."""
    if bundle_kind(bundle) == CAUSAL_LM:
        from forgeml.deploy.server.lm_runner import lm_serve_config, run_lm_server

        run_lm_server(bundle, lm_serve_config(bundle, *layers))
        return
    from forgeml.deploy.server.runner import run_server

    run_server(bundle, serve_config(PREDICTOR, *layers))
