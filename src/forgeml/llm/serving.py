"""Run the LM app under uvicorn, with the deploy runner's graceful SIGTERM handling (readiness 503, drain)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import uvicorn

from forgeml.config import ServeConfig
from forgeml.errors import ConfigError
from forgeml.llm.bundle import read_lm_manifest
from forgeml.llm.config import LMServeConfig


def lm_serve_config(
    bundle: str | Path, config: ServeConfig | None, settings: dict[str, Any]
) -> LMServeConfig:
    """The bundle's own serve settings (from its training config), then ``config``'s explicit fields, then ``settings``.

    An unknown name in ``settings`` (``--set`` on the command line) is a ConfigError naming it.
    """
    _refuse_unknown(settings)
    manifest = read_lm_manifest(Path(bundle))
    values = dict(manifest.get("serve") or {})
    if config is not None:
        values |= config.model_dump(exclude_unset=True)
    values |= settings
    try:
        return LMServeConfig.model_validate(values)
    except ValueError as exc:
        error = exc.errors()[0]  # type: ignore[attr-defined]
        if not error["loc"]:  # a rule across fields: its message names them, the input is every setting
            rule = error["msg"].removeprefix("Value error, ")
            raise ConfigError(
                f"serve: {rule}. Set both with --set or in the serve section.", key="serve"
            ) from None
        key = "serve." + ".".join(map(str, error["loc"]))
        raise ConfigError(f"{key}: {error['msg']} (got {error.get('input')!r}).", key=key) from None


def _refuse_unknown(settings: dict[str, Any]) -> None:
    known = list(LMServeConfig.model_fields)
    for key in settings:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"serve.{key} is not a setting of the language-model server.{hint} "
                f"The settings are: {', '.join(sorted(known))}.",
                key=f"serve.{key}",
            )


def run_lm_server(bundle: str | Path, config: LMServeConfig) -> None:
    """Serve an LM bundle until SIGTERM/SIGINT; checksums are verified before the port is bound."""
    # the deploy runner's graceful shutdown and uvicorn settings
    from forgeml.deploy.server.runner import _Server, read_api_key, uvicorn_options
    from forgeml.llm.server import create_lm_app

    if config.workers != 1:
        raise ConfigError(
            "serve.workers must be 1 for a language model (each worker would hold its own copy); "
            "raise serve.max_concurrent for more generations at once.",
            key="serve.workers",
        )
    app = create_lm_app(bundle, config, api_key=read_api_key(config.api_key_file))
    _Server(uvicorn.Config(app, **uvicorn_options(config))).run()
