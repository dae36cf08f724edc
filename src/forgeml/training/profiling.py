"""``forgeml train --profile``: a PyTorch profiler trace of a few steps, as the document's section 7.2 asks.

The trace skips the first steps (one-time allocations, lazy initialisation), records ``steps``
steady-state steps with shapes and memory, and is written by ``tensorboard_trace_handler``: open
it with TensorBoard's profiler plugin (``pip install torch-tb-profiler``, then
``tensorboard --logdir runs/<name>/profile``), or load the ``.pt.trace.json`` file into
``ui.perfetto.dev`` / ``chrome://tracing``. The ten most expensive operators also go to
``top_ops.txt`` beside it, for a first look without a viewer.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from forgeml import atomic
from forgeml.training.callbacks import Callback, TrainState

PROFILE_DIR = "profile"  # under the run folder
SKIPPED_STEPS = 2  # not recorded: first-step allocations and lazy initialisation
WARMUP_STEPS = 1  # profiled but discarded, as torch.profiler recommends


class ProfilerCallback(Callback):
    """Profiles ``steps`` training steps after a short warm-up and writes the trace to ``folder``."""

    def __init__(self, folder: Path, steps: int) -> None:
        self.folder, self.steps = folder, steps
        self._profiler: profile | None = None
        self._remaining = SKIPPED_STEPS + WARMUP_STEPS + steps

    def on_train_begin(self, state: TrainState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        self._profiler = profile(
            activities=activities,
            schedule=schedule(wait=SKIPPED_STEPS, warmup=WARMUP_STEPS, active=self.steps, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(self.folder)),
            record_shapes=True,
            profile_memory=True,
        )
        self._profiler.start()

    def on_step_end(self, state: TrainState) -> None:
        if self._profiler is None:
            return
        self._profiler.step()
        self._remaining -= 1
        if self._remaining == 0:
            self._finish()

    def on_train_end(self, state: TrainState) -> None:
        if self._profiler is not None:  # fewer steps than asked for: keep what was recorded
            self._finish()

    def _finish(self) -> None:
        assert self._profiler is not None
        profiler, self._profiler = self._profiler, None
        profiler.stop()
        try:
            table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
        except (AssertionError, RuntimeError):  # nothing was recorded (the run had too few steps)
            table = "no steps were recorded: the run had fewer steps than the profiler skips.\n"
        atomic.write_text(self.folder / "top_ops.txt", table)
