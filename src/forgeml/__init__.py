"""forgeml: from raw data to a deployed, compressed model with one config file and one command.

The public API mirrors the CLI verbs::

    import forgeml
    forgeml.check("examples/digits_cnn.yaml")           # forgeml check
    run = forgeml.train("examples/digits_cnn.yaml")      # forgeml train
    metrics = forgeml.evaluate(run)                     # forgeml evaluate
    forgeml.compress(run, quantize="int8", max_drop=0.01)  # forgeml compress
    forgeml.predict(run.bundle_path, "in.npz", "out.csv")  # forgeml predict
    forgeml.load(run.bundle_path).predict(rows)

A verb's flags and its function's keywords are the same options (tests/core/test_cli_options.py).
Names are imported on first use so ``import forgeml`` (and ``forgeml explain``) stay fast.
The stage packages are named ``training`` and ``evaluation`` (not ``train``/``evaluate``) so that
importing them never shadows the functions ``forgeml.train`` and ``forgeml.evaluate``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
_API = {
    *("run", "check", "train", "evaluate", "compare", "compress", "export", "predict", "load", "serve"),
    *("verify", "plan", "init", "sign", "tune", "Run"),
}
__all__ = [*sorted(_API), "load_config"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module("forgeml.api"), name)
    if name == "load_config":
        return import_module("forgeml.config").load_config
    raise AttributeError(f"module 'forgeml' has no attribute {name!r}")
