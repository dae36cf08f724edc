"""What ``forgeml compress`` can do for boosted trees (``model.type: gbm``): say so before any work.

Every compression method here rewrites a network's weights: ``--prune`` removes neurons, channels or
weights, ``--quantize`` stores weights as int8 or fp16, ``--distill`` trains a smaller network from
the teacher's outputs, and ``--max-drop`` chains those three. A LightGBM model has none of them to
remove: its size is the number of trees and leaves, which training sets. So each of these options
is refused on a gbm run, naming the flag, before the ``compressed/`` folder is touched.
"""

from __future__ import annotations

from forgeml.compression.options import CompressOptions
from forgeml.config import AUTO, GBM, Config
from forgeml.errors import ConfigError

# flag -> what it would change, in the words of the refusal
_NETWORK_ONLY = {
    "prune": "--prune removes a network's neurons, channels or weights",
    "quantize": "--quantize stores a network's weights as int8 or fp16",
    "distill": "--distill trains a smaller network from a network's outputs",
    "distill_width": "--distill-width scales a network's layer widths",
    "max_drop": "--max-drop chains prune, distill and quantize",
}


def refuse_for_trees(config: Config, options: CompressOptions) -> None:
    """A ConfigError naming the first option that cannot apply to a gbm run; nothing for networks."""
    if config.model.type not in (GBM, AUTO):  # auto's ensemble holds boosted trees too
        return
    for name, meaning in _NETWORK_ONLY.items():
        if getattr(options, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{flag} does not apply to boosted trees (model.type {config.model.type}): {meaning}, and a LightGBM model "
                "has none. For smaller or faster trees, retrain with a lower model.max_rounds or "
                "model.num_leaves; `forgeml export` already serves them through ONNX Runtime.",
                key=flag,
            )
