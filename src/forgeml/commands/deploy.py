"""The deploy verbs' parsers: ``forgeml export``, ``forgeml serve``, ``forgeml verify``.

Part of the CLI (it imports :mod:`forgeml.api` and :mod:`forgeml.cli`), so no stage imports it.

Each handler parses its arguments, calls the API function of the same name and prints a summary.
Nothing heavy is imported until a verb runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register_deploy(commands: argparse._SubParsersAction) -> None:
    """Add export, serve and verify to the CLI."""
    export = commands.add_parser("export", help="write model.onnx (with its preprocessing) into a bundle")
    export.add_argument("run", type=Path, help="a run folder (runs/<name>) or a bundle folder")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    export.set_defaults(handler=_export)

    serve = commands.add_parser("serve", help="serve a bundle over HTTP (FastAPI + uvicorn)")
    serve.add_argument("bundle", type=Path, help="a bundle folder, e.g. runs/digits_cnn/bundle")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--api-key-file", type=Path, help="file holding the API key clients must send")
    serve.add_argument("--config", type=Path, help="a forgeml config whose `serve:` section to use")
    serve.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a serve setting, e.g. max_queue=64 or serve.request_timeout_s=5",
    )
    serve.set_defaults(handler=run_serve)

    verify = commands.add_parser(
        "verify", help="compare server, Predictor and PyTorch outputs on a data file"
    )
    verify.add_argument("bundle", type=Path, help="a bundle folder")
    verify.add_argument("--data", required=True, help="rows to replay: a file or sklearn:<name>")
    verify.add_argument("--url", help="a running server (default: start one on a free loopback port)")
    verify.add_argument("--rows", type=int, help="only the first N rows")
    verify.add_argument("--tolerance", type=float, default=1e-5, help="largest accepted difference")
    verify.set_defaults(handler=_verify)


def serve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` overrides (values read as YAML, ``serve.`` optional), then the flags; not validated.

    The bundle's kind decides which settings exist (a language-model server has more), so they
    are checked once the bundle is read (:func:`forgeml.config.serve_config`).
    """
    import yaml

    from forgeml.errors import ConfigError

    values: dict[str, Any] = {}
    for override in args.overrides:
        key, sep, text = override.partition("=")
        if not sep:
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. max_queue=64.")
        values[key.strip().removeprefix("serve.")] = yaml.safe_load(text)
    flags = {"host": args.host, "port": args.port, "workers": args.workers, "api_key_file": args.api_key_file}
    return values | {
        key: str(value) if isinstance(value, Path) else value
        for key, value in flags.items()
        if value is not None
    }


def _export(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.cli import console

    path = api.export(args.run, format=args.format)
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB); bundle.json updated")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """``forgeml serve``: ``--config``'s serve section (the keys it sets), then ``--set``, then the flags.

    It calls :func:`forgeml.deploy.serving.serve_bundle`, which :func:`forgeml.api.serve` wraps,
    rather than ``forgeml.serve(bundle, **settings)``: a ``--set bundle=...`` would collide with that
    function's parameters instead of being reported as an unknown setting.
    """
    from forgeml.config import load_config
    from forgeml.deploy.serving import serve_bundle

    section = load_config(args.config).serve.model_dump(exclude_unset=True) if args.config is not None else {}
    serve_bundle(args.bundle, section, serve_settings(args))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.cli import console

    report = api.verify(args.bundle, data=args.data, url=args.url, rows=args.rows)
    for name, value in report.differences.items():
        console.print(f"{name}: max |difference| {value:.3g}")
    verdict = "OK" if report.max_difference <= args.tolerance else "MISMATCH"
    console.print(
        f"{verdict}: {report.rows} rows via {report.url} ({report.engine}); largest difference "
        f"{report.max_difference:.3g} (tolerance {args.tolerance:g})"
    )
    return 0 if verdict == "OK" else 1
