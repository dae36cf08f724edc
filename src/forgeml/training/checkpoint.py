"""Checkpoints: the whole training state in one file, written atomically, loaded without unpickling code.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (so ``torch.load`` with
``weights_only=True`` reads it): model, optimizer, scheduler and grad-scaler states, the loop's
position (epoch, global step, the epoch's permutation and how far into it), callback states, the
RNG states of Python, NumPy and torch, and the fingerprints of the config and the training data.

Files live in ``runs/<name>/checkpoints/``: ``step-00000120.pt`` (the last ``keep`` of them) and
``best.pt``. Each is written to a hidden ``.tmp`` file, fsynced, then renamed, so a crash leaves
either the old set or the new file complete; leftover ``.tmp`` files are removed on the next start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from forgeml.atomic import write_failed
from forgeml.errors import ConfigError, DataError, UnsafeArtifactError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
# Keys whose change does not alter the trained weights: resuming with them changed is allowed.
IGNORED_CONFIG_KEYS = (
    "name",
    "output_dir",
    "check.",
    "evaluate.",
    "card.",
    "serve.",
    "tune.",  # how to search, not what one run trains
    "track.",
    "train.threads",
    "train.resume",
    "train.tensorboard",
    "train.csv_log",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.device",
    "train.allocator",
    "train.profile_steps",
)
# Fault injection for the crash tests: kill this process between the temp write and the rename.
KILL_IN_WRITE_ENV = "FORGEML_FAULT_KILL_IN_CHECKPOINT"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def relevant_config(config: dict[str, Any]) -> dict[str, str]:
    """The flattened config keys that shape the weights, each value as JSON text (comparable, storable)."""
    return {
        key: json.dumps(value, sort_keys=True)
        for key, value in sorted(flatten(config).items())
        if not any(
            key == ignored or (ignored.endswith(".") and key.startswith(ignored))
            for ignored in IGNORED_CONFIG_KEYS
        )
    }


def data_fingerprint(tensors: list[torch.Tensor]) -> str:
    """sha256 of the training tensors' shapes, dtypes and bytes (what the model actually saw)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        contiguous = tensor.detach().cpu().contiguous()
        digest.update(f"{contiguous.dtype}{tuple(contiguous.shape)}".encode())
        # the buffer itself, not .tobytes(): a memory-mapped image split is read, never copied whole
        digest.update(contiguous.view(torch.uint8).numpy() if contiguous.numel() else b"")
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and every CUDA device) generator states, as weights-only types."""
    numpy_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class Fingerprints:
    """What a checkpoint must match to be resumed: the config keys that matter and the data hash."""

    config: dict[str, str]
    data: str

    def check(self, payload: dict[str, Any], *, force: bool, source: Path) -> None:
        """ConfigError naming the changed keys, unless ``force`` (then a warning)."""
        saved: dict[str, str] = payload["config"]
        # Keys on one side only come from a forgeml version that added or removed an option: not a change.
        changed = sorted(k for k in saved.keys() & self.config.keys() if saved[k] != self.config[k])
        problems = [f"config keys changed: {', '.join(changed)}"] if changed else []
        if payload["data_fingerprint"] != self.data:
            problems.append("the training data changed (its sha256 differs)")
        if not problems:
            return
        message = f"{source}: cannot resume, {'; '.join(problems)}."
        if force:
            logger.warning("%s Resuming anyway (--force-resume).", message)
            return
        raise ConfigError(
            f"{message} Undo the change, start a fresh run (another name or without --resume), "
            "or pass --force-resume to continue with the new settings.",
            key=changed[0] if changed else None,
        )


class CheckpointStore:
    """The checkpoint folder of one run: save atomically, keep the last ``keep``, find the newest good one."""

    def __init__(self, directory: Path, *, keep: int) -> None:
        self.directory = directory
        self.keep = keep

    def step_files(self) -> list[Path]:
        """Complete step checkpoints, oldest first (temp files are never listed)."""
        return sorted(self.directory.glob("step-*.pt")) if self.directory.is_dir() else []

    def clean_temporary(self) -> None:
        for leftover in self.directory.glob(".*.tmp") if self.directory.is_dir() else []:
            logger.warning("removing %s, left by an interrupted checkpoint write", leftover)
            leftover.unlink(missing_ok=True)

    def clear(self) -> None:
        """A fresh run: forget the checkpoints of an earlier run with this name."""
        for path in [*self.step_files(), self.directory / "best.pt"]:
            path.unlink(missing_ok=True)
        self.clean_temporary()

    def save(self, payload: dict[str, Any], *, best: bool = False) -> Path:
        path = self.directory / f"step-{payload['global_step']:08d}.pt"
        _atomic_save(payload, path)
        if best:
            _atomic_save(payload, self.directory / "best.pt")
        for old in self.step_files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint that reads back whole; a corrupt one is skipped with a warning."""
        for path in reversed(self.step_files()):
            try:
                return load_checkpoint(path), path
            except Exception as exc:  # a torn or corrupt file: fall back to the one before
                logger.warning("checkpoint %s is unreadable (%s); trying the previous one", path, exc)
        return None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with the weights-only unpickler (never runs code from the file)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler met a global it will not build
        lines = [
            line.strip()
            for line in str(exc).splitlines()
            if "global" in line.lower() and "weights_only" not in line
        ]
        reason = lines[0][:200] if lines else "a global outside the weights-only allowlist"
        raise UnsafeArtifactError(
            f"{path}: refused, not loaded: it is a pickle that needs more than tensors and plain values "
            f"to load, so loading it could run code ({reason}). Resume only from checkpoints forgeml wrote."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable checkpoint ({_first_line(exc)}).", path=str(path)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: not a forgeml checkpoint (format {FORMAT_VERSION}).", path=str(path))
    return payload


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if os.environ.get(KILL_IN_WRITE_ENV) == str(payload["global_step"]):
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: a crash with the temp file written
        os.replace(temporary, path)
        _fsync_folder(path.parent)
    except OSError as exc:  # disk full mid-write: the temporary goes, the last good checkpoint stays
        temporary.unlink(missing_ok=True)
        kept = "the previous checkpoints are intact, so --resume continues from the last one"
        raise write_failed(path, exc, existed=path.exists(), kept=kept) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
