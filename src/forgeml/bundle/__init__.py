"""Bundles: the one folder format every trained model is shipped in, and what reads it back.

It sits between ``models`` and ``training``: training writes bundles, and evaluation, compression
and deploy read them without importing one another. :mod:`~forgeml.bundle.manifest` is the format
(``kind``, version, checksums); :func:`read_bundle` is the one reader, dispatching on the kind to
:mod:`~forgeml.bundle.predictive` (a network that maps rows to predictions, with its features) or
:mod:`~forgeml.bundle.causal_lm` (a language model and its tokenizer). The
:class:`~forgeml.bundle.predictor.Predictor` (ONNX Runtime or PyTorch), feeds encoding and ONNX
export live here too, because compression builds and measures bundles with them.

Names are imported on first use (PEP 562): the CLI imports this package to dispatch a verb, and
that must not import torch.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.bundle.causal_lm import LMBundle, read_lm_bundle, write_lm_bundle
    from forgeml.bundle.manifest import bundle_kind, read_manifest, verify_files
    from forgeml.bundle.predictive import Bundle, read_predictor_bundle, write_bundle
    from forgeml.bundle.predictor import Predictor

_HOMES = {
    "bundle_kind": "manifest",
    "read_manifest": "manifest",
    "verify_files": "manifest",
    "Bundle": "predictive",
    "read_predictor_bundle": "predictive",
    "write_bundle": "predictive",
    "LMBundle": "causal_lm",
    "read_lm_bundle": "causal_lm",
    "write_lm_bundle": "causal_lm",
    "Predictor": "predictor",
}
__all__ = [
    "Bundle",
    "LMBundle",
    "Predictor",
    "bundle_kind",
    "read_bundle",
    "read_lm_bundle",
    "read_manifest",
    "read_predictor_bundle",
    "verify_files",
    "write_bundle",
    "write_lm_bundle",
]


def read_bundle(path: str | Path) -> Bundle | LMBundle:
    """Verify and load the bundle at ``path``, whatever its kind (the manifest's ``kind`` decides)."""
    from forgeml.bundle.manifest import bundle_kind

    if bundle_kind(path) == "causal_lm":
        from forgeml.bundle.causal_lm import read_lm_bundle

        return read_lm_bundle(path)
    from forgeml.bundle.predictive import read_predictor_bundle

    return read_predictor_bundle(path)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"forgeml.bundle.{_HOMES[name]}"), name)
