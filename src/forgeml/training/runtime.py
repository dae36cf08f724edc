"""Where and how the loop runs: device, precision, determinism, and stopping cleanly on a signal."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from types import FrameType

import torch

from forgeml.config import TrainConfig
from forgeml.errors import ConfigError, ForgeError

logger = logging.getLogger(__name__)

# Exit codes of a run stopped by a signal after its checkpoint was written: the shell convention 128 + N.
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class TrainingInterrupted(ForgeError):
    """SIGTERM or SIGINT stopped training after the current step; a checkpoint was written."""

    def __init__(self, signum: int, checkpoint: str | None) -> None:
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signal.Signals(signum), 128 + signum)
        where = f"checkpoint {checkpoint}" if checkpoint else "no checkpoint (files are off)"
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after the current step; wrote {where}. "
            "Continue with `forgeml train CONFIG --resume`."
        )


class NonFiniteLoss(ForgeError):
    """The loss became NaN or infinite and ``train.on_nan`` is ``stop``."""


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA when present (this process's local GPU under torchrun), else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "train.device=cuda but no CUDA GPU is visible. Use auto or cpu.", key="train.device"
            )
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device=mps but MPS is not available. Use auto or cpu.", key="train.device")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"train.precision=fp16 needs a CUDA GPU (it uses a grad scaler); this run is on {device.type}. "
            "Use bf16 (CPU and recent GPUs) or fp32.",
            key="train.precision",
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(config: TrainConfig, device: torch.device) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(device.type) if config.precision == "fp16" else None


def enforce_determinism() -> None:
    """PyTorch's reproducibility controls: deterministic kernels, no cuDNN autotuning, no TF32.

    ``CUBLAS_WORKSPACE_CONFIG`` only takes effect before the CUDA context exists, so it is set here,
    before the model moves to the GPU; an op without a deterministic kernel then raises.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


class GracefulStop:
    """While active, the first SIGTERM/SIGINT only sets a flag (the loop checkpoints at the next step
    boundary, so no I/O happens inside the handler); a second one exits at once with 128 + N."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(EXIT_CODES.get(signal.Signals(signum), 128 + signum))
        self.signum = signum
        logger.warning("%s: finishing this step, then writing a checkpoint", signal.Signals(signum).name)

    @contextlib.contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        try:
            for signum in EXIT_CODES:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: signals stay as they were
            self._previous.clear()
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
