"""The deploy verbs: ``forgeml predict``, ``forgeml export``, ``forgeml serve``, ``forgeml verify``, ``forgeml sign``.

Each handler parses its arguments, calls the API function of the same name and prints a summary.
Nothing heavy is imported until a verb runs. Every serve setting (:class:`forgeml.config.ServeConfig`)
is a flag generated from its field (``max_queue`` -> ``--max-queue``); so are the checks a bundle
must pass before serve or predict loads it (:class:`forgeml.bundle.integrity.TrustOptions`:
``--expect-digest``, ``--verify-key``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from forgeml.bundle.integrity import TRUST_FLAGS, TrustOptions
from forgeml.cli.options import add_option_flags, add_set_flag, given
from forgeml.config import ServeConfig


def register_predict(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml predict`` (batch prediction) to the CLI."""
    predict = commands.add_parser("predict", help="batch prediction with a bundle")
    predict.add_argument("bundle", type=Path, help="a bundle folder, e.g. runs/digits_cnn/bundle")
    predict.add_argument(
        "source", metavar="input", type=Path, help="CSV, Parquet, JSON Lines, .npz or a folder of images"
    )
    predict.add_argument(
        "-o", "--output", type=Path, required=True, help="output file: .csv, .parquet or .jsonl"
    )
    add_option_flags(predict, TrustOptions, flags=TRUST_FLAGS)
    predict.set_defaults(handler=_predict)


def register_deploy(commands: argparse._SubParsersAction) -> None:
    """Add export, serve and verify to the CLI."""
    export = commands.add_parser("export", help="write model.onnx (with its preprocessing) into a bundle")
    export.add_argument(
        "run_or_bundle", metavar="run", type=Path, help="a run folder (runs/<name>) or a bundle folder"
    )
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    export.set_defaults(handler=_export)

    serve = commands.add_parser("serve", help="serve a bundle over HTTP (FastAPI + uvicorn)")
    serve.add_argument("bundle", type=Path, help="a bundle folder, e.g. runs/digits_cnn/bundle")
    serve.add_argument("--config", type=Path, help="a forgeml config whose `serve:` section to use")
    add_set_flag(serve, "max_queue=64 or serve.request_timeout_s=5 (value read as YAML)")
    add_option_flags(
        serve.add_argument_group("serve settings (the bundle's kind decides which apply)"), ServeConfig
    )
    add_option_flags(
        serve.add_argument_group("checked before the port opens"), TrustOptions, flags=TRUST_FLAGS
    )
    serve.set_defaults(handler=_serve)

    sign = commands.add_parser("sign", help="sign a bundle with OpenSSF model-signing (key mode, offline)")
    sign.add_argument("bundle", type=Path, help="a bundle folder; model.sig is written into it")
    sign.add_argument(
        "--key", type=Path, required=True, help="elliptic-curve private key (PEM), e.g. private.pem"
    )
    sign.set_defaults(handler=_sign)

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

    The bundle's kind decides which settings exist and their defaults (a language-model server has
    more), so they are checked once the bundle is read (:func:`forgeml.config.serve_config`).
    """
    import yaml

    from forgeml.errors import ConfigError

    values: dict[str, Any] = {}
    for override in args.overrides:
        key, sep, text = override.partition("=")
        if not sep:
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. max_queue=64.")
        key = key.strip().removeprefix("serve.")
        if key == "config":  # api.serve's own keyword: name the flag that takes a config file
            raise ConfigError(
                "--set config=...: serve.config is not a serve setting; pass a config file with --config FILE."
            )
        values[key] = yaml.safe_load(text)
    return values | given(args, ServeConfig)


def _predict(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.cli import console

    summary = api.predict(args.bundle, args.source, args.output, **given(args, TrustOptions))
    console.print(f"wrote {summary.rows} predictions to {summary.output} ({summary.engine})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.bundle.integrity import bundle_digest
    from forgeml.cli import console

    path = api.export(args.run_or_bundle, format=args.format)
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB); bundle.json updated")
    console.print(f"bundle digest: {bundle_digest(path.parent)}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.cli import console

    signature = api.sign(args.bundle, key=args.key)
    console.print(f"wrote {signature}; check it with forgeml serve {args.bundle} --verify-key PUBLIC_KEY")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """``--config``'s serve section (the keys it sets), then ``--set``, then the flags; :func:`forgeml.api.serve` checks them."""
    from forgeml import api
    from forgeml.config import load_config

    section = load_config(args.config).serve if args.config is not None else None
    api.serve(args.bundle, config=section, **(serve_settings(args) | given(args, TrustOptions)))
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
