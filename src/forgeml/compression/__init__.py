"""The compress stage: pruning, int8/fp16 quantization and distillation, each variant a bundle.

``compress_run(run_dir, options)`` builds every variant ``options`` ask for under
``runs/<name>/compressed/<variant>/``, measures each on the run's test split through the
Predictor (metric, model.onnx size, parameters, 1-row and 256-row latency) and, with
``max_drop``, recommends the smallest within the budget. Modules: ``options`` (the flags),
``prune`` (torch.nn.utils.prune, structured shrinking), ``distill`` (the student and its loss,
trained by the training stage's loop), ``quantize`` (onnxruntime.quantization on the exported
graph), ``variants`` (bundles), ``measure``, ``report`` and ``command`` (``forgeml compress``).

Library choices, and why:

* Pruning: ``torch.nn.utils.prune`` (ships with PyTorch) picks the weights or rows to remove;
  structured pruning then slices them out into a narrower model. torch-pruning would add a
  dependency to find layer couplings we know already for the two architectures whose widths a
  model config can record (mlp, cnn).
* Quantization: ``onnxruntime.quantization`` on the exported ONNX graph: what is measured is what
  the server runs, with no second export of a quantized PyTorch model.
* Distillation: no library; the training stage's ``fit`` with a loss over packed targets.

The package is ``compression``, not ``compress``, for the reason ``training`` and ``evaluation``
are: an imported subpackage would shadow the function ``forgeml.compress``. It comes after
``deploy`` in the import order (tests/core/test_architecture.py) although it runs
before serving in the pipeline: every variant is written, exported and measured with the deploy
stage's bundle writer, ONNX exporter and Predictor, and deploy never needs compress.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.compression.options import QUANTIZE_MODES, CompressOptions, compress_options
    from forgeml.compression.stage import Compression, compress_run

# Imported on first use (PEP 562): the CLI registers ``forgeml compress`` from
# ``forgeml.compression.command``, and that must not import torch for every ``forgeml`` call.
_HOMES = {
    "QUANTIZE_MODES": "forgeml.compression.options",
    "CompressOptions": "forgeml.compression.options",
    "compress_options": "forgeml.compression.options",
    "Compression": "forgeml.compression.stage",
    "compress_run": "forgeml.compression.stage",
}
__all__ = ["QUANTIZE_MODES", "CompressOptions", "Compression", "compress_options", "compress_run"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
