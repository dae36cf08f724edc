"""``forgeml serve``: one entry for every bundle, and one server for every kind.

The server (:func:`forgeml.deploy.server.app.create_app`) picks the handler for the bundle's kind:
prediction for ``predictor`` bundles, OpenAI-compatible chat and completions for ``causal_lm``
ones. Settings come in layers (a config's serve section, then ``--set`` and flags, or keyword
arguments), later layers winning, and are checked against the kind's own settings before the port
is bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def serve_bundle(bundle: str | Path, *layers: dict[str, Any]) -> None:
    """Serve ``bundle`` until SIGTERM/SIGINT with the settings of ``layers`` (later ones win)."""
    from forgeml.deploy.server.runner import run_server, server_config

    run_server(bundle, server_config(bundle, *layers))
