"""Run the LM app under uvicorn, with the deploy runner's graceful SIGTERM handling (readiness 503, drain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn

from forgeml.bundle.causal_lm import read_lm_manifest
from forgeml.config import CAUSAL_LM, ServeConfig, serve_config
from forgeml.errors import ConfigError


def lm_serve_config(bundle: str | Path, *layers: dict[str, Any]) -> ServeConfig:
    """The bundle's own serve settings (from its training config), then each layer's (later ones win).

    An unknown name in a layer (``--set`` on the command line) is a ConfigError naming it.
    """
    saved = dict(read_lm_manifest(Path(bundle)).get("serve") or {})
    return serve_config(CAUSAL_LM, saved, *layers)


def run_lm_server(bundle: str | Path, config: ServeConfig) -> None:
    """Serve an LM bundle until SIGTERM/SIGINT; checksums are verified before the port is bound."""
    from forgeml.deploy.server.lm_app import create_lm_app
    from forgeml.deploy.server.runner import _Server, read_api_key, uvicorn_options

    if config.workers != 1:
        raise ConfigError(
            "serve.workers must be 1 for a language model (each worker would hold its own copy); "
            "raise serve.max_concurrent for more generations at once.",
            key="serve.workers",
        )
    app = create_lm_app(bundle, config, api_key=read_api_key(config.api_key_file))
    _Server(uvicorn.Config(app, **uvicorn_options(config))).run()
