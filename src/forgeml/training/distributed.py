"""Several processes (DDP, launched by torchrun): who am I, which rows are mine, and the launcher.

``forgeml train CONFIG --nproc N`` starts ``python -m torch.distributed.run`` as a subprocess; each
worker it spawns runs ``forgeml train CONFIG`` again and finds ``WORLD_SIZE``/``RANK`` in its
environment. Every rank draws the same global permutation per epoch and takes its slice of each
global batch, so the global batch stays ``train.batch_size`` and the result matches one process.
Only rank 0 writes files and prints. torchrun restarts (``--max-restarts``) resume from the last
checkpoint on their own: ``TORCHELASTIC_RESTART_COUNT`` > 0 turns resume on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import FrameType

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

# torchrun flags passed through as they are: (our option name, torchrun's)
PASS_THROUGH = (
    ("nnodes", "--nnodes"),
    ("node_rank", "--node-rank"),
    ("master_addr", "--master-addr"),
    ("master_port", "--master-port"),
    ("rdzv_endpoint", "--rdzv-endpoint"),
    ("max_restarts", "--max-restarts"),
)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job; ``world_size == 1`` is an ordinary single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's part of one global batch: every ``world_size``-th row from ``rank``."""
        return rows[self.rank :: self.world_size]

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (so all ranks stop at the same step)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=_reduce_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def sum(self, value: torch.Tensor) -> float:
        """``value`` summed over all ranks, read back to the host (once per epoch)."""
        if self.distributed:
            value = value.detach().to(_reduce_device(), copy=True)
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return float(value)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _reduce_device() -> torch.device:
    """NCCL reduces CUDA tensors only; gloo takes CPU tensors."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )


def ranks_from_environment() -> Ranks:
    return Ranks(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def is_restart() -> bool:
    """True in a worker that torchrun restarted after a failure (it must continue, not start over)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def init_process_group(ranks: Ranks, device: torch.device) -> None:
    """Join the job's process group: NCCL between GPUs, gloo on the CPU."""
    if ranks.distributed and not dist.is_initialized():
        store, _, _ = next(dist.rendezvous("env://", rank=ranks.rank, world_size=ranks.world_size))
        # After a torchrun restart the job may share the store with its dead predecessors; without a
        # per-attempt prefix a new rank can read an old peer address and fail with "Connection refused".
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"forgeml/attempt_{attempt}", store)
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            store=store,
            rank=ranks.rank,
            world_size=ranks.world_size,
        )
        # Reductions across ranks use tensors on the process's device.
        if device.type == "cuda":
            torch.cuda.set_device(device)


def torchrun_command(nproc: int, worker_args: list[str], options: dict[str, object]) -> list[str]:
    """``python -m torch.distributed.run ... -m forgeml <worker_args>`` for :func:`launch`."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    for name, flag in PASS_THROUGH:
        value = options.get(name)
        if value is not None:
            command.append(f"{flag}={value}")
    if options.get("rdzv_endpoint") is not None:
        command.append("--rdzv-backend=c10d")
    elif not options.get("nnodes") or options.get("nnodes") in (1, "1"):
        command.append("--standalone")  # one machine: a free local port, no rendezvous server
    return [*command, "-m", "forgeml", *worker_args]


def launch(command: list[str]) -> int:
    """Run torchrun in a child process, forwarding SIGTERM/SIGINT to it; its exit code is ours."""
    logger.info("launching: %s", " ".join(command))
    child = subprocess.Popen(command)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code if code >= 0 else 128 - code
