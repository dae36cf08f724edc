"""Optional dependencies: the one place a feature imports a package that a pip extra installs.

``pip install forgeml`` carries tabular and image training, evaluation and serving. Heavier
packages that most runs never import come with extras::

    forgeml[text]     transformers (pretrained Hugging Face encoders), peft (their LoRA adapters)
    forgeml[llm]      transformers, peft and gguf (causal language models)
    forgeml[explain]  captum (integrated gradients in the model card)
    forgeml[track]    tensorboard (train.tensorboard event files)
    forgeml[sign]     model-signing (forgeml sign, --verify-key: OpenSSF bundle signatures)
    forgeml[images]   pillow (image files: a folder of photos or a table of image paths)
    forgeml[privacy]  opacus (train.privacy: differentially private training, DP-SGD)

A feature calls :func:`require` where it first needs the package, so a missing extra is one line
naming the ``pip install`` to run (the CLI prints it and exits 2) instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from forgeml.errors import ConfigError


class MissingExtraError(ConfigError):
    """A feature the config asks for needs a package from an extra that is not installed."""

    def __init__(self, message: str, *, extra: str, key: str | None = None) -> None:
        super().__init__(message, key=key)
        self.extra = extra


def require(module: str, extra: str, feature: str, *, key: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``pip install "forgeml[extra]"``.

    ``feature`` says what needs it, in the user's words (``"model.type: pretrained"``); ``key`` is
    the config key that turned the feature on, kept on the error for callers that point at it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError):
            # exc.name is the module actually missing (``tensorboard`` for torch.utils.tensorboard);
            # its top-level package is what pip installs.
            problem = f"{(exc.name or module).split('.')[0]}, which is not installed"
        else:  # installed but broken, e.g. a version the extra's pins would replace
            problem = f"{module}, which fails to import ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        raise MissingExtraError(
            f'{feature} needs {problem}: pip install "forgeml[{extra}]"', extra=extra, key=key
        ) from None
