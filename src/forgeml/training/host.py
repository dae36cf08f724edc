"""Host-side speed settings for the training loop: the C allocator and the image memory layout.

Why the allocator: glibc returns any freed block above its mmap threshold (at most 32 MiB, raised
dynamically) to the OS, and trims the heap top past 128 KiB. A training step frees and re-allocates
the same activation buffers every step, so by default the process page-faults them back in each
time: about 1.9 million page faults for a few epochs of the document's CNN. ``mallopt`` (the
run-time form of ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``) makes glibc keep them.
The cost: memory freed after training stays mapped in this process until it exits.

Why channels-last: oneDNN's CPU convolutions run natively in NHWC; NCHW inputs are reordered on
every call, forward and backward.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Literal

import torch
from torch import nn

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit (HEAP_MAX_SIZE / 2)
_tuned = False


def tune_allocator() -> bool:
    """Tell glibc to keep freed buffers for reuse; True when it took effect (Linux with glibc only).

    Process-wide and one-way; calling it again does nothing.
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; TRIM takes an int, so the largest positive one stands for "never".
    applied = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not applied:
        logger.debug("mallopt refused the allocator settings; using the system defaults")
    _tuned = applied
    return applied


MemoryFormat = Literal["auto", "on", "off"]


def wants_channels_last(setting: MemoryFormat, model: nn.Module, device: torch.device) -> bool:
    """``auto``: on for a model with 2-D convolutions on the CPU (where it was measured to pay)."""
    if setting == "off":
        return False
    has_conv = any(isinstance(module, nn.Conv2d) for module in model.modules())
    return has_conv and (setting == "on" or device.type == "cpu")
