"""Starting a job of several processes on this machine, in one ``torch.distributed`` process group.

:func:`launch` spawns N processes, joins them through a file store and returns rank 0's result; when one
process dies or raises, the others are stopped and :class:`DistributedJobFailed` names the rank and how.
:func:`init_from_env` joins the group torchrun describes instead (several machines). Every collective has
a timeout, so a silent rank makes the job fail instead of hang.

Light on purpose: it imports torch and the standard library only, so a spawned process that runs a
function of a light module (e.g. :mod:`ytrec_lib.studies.allreduce`) does not import the whole package.
Used by :mod:`ytrec_lib.distributed` (the candidate model on N processes) and
:mod:`ytrec_lib.studies.allreduce` (the cost of an all-reduce).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException, ProcessExitedException

BACKEND = "gloo"
"""The process-group backend: gloo all-reduces the sparse gradients of the embedding tables."""

DEFAULT_TIMEOUT_S = 120.0
"""Seconds a collective (all-reduce, barrier) waits for the other ranks before the job fails."""

WHAT_TO_DO = ("rerun the command; if a rank keeps dying, run with --nproc 1 to see its own error, or "
              "check that machine's memory and the network between the machines")
"""The advice every failure of a distributed job ends with."""


class DistributedJobFailed(RuntimeError):
    """A distributed job stopped because a rank died, raised or stopped answering (the message names it)."""


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` in ``[0, size)``; rank 0 writes. ``group``: the process
    group of the ``size`` ranks (None: the default group, every process of the job)."""

    rank: int
    size: int
    group: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.size:
            raise ValueError(f"World: rank must be in [0, {self.size}), got {self.rank}")

    @property
    def writes(self) -> bool:
        """Whether this rank writes results (rank 0)."""
        return self.rank == 0


def init_from_env(timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``
    in the environment), with ``timeout_s`` on every collective; returns this rank's :class:`World`."""
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(f"init_from_env: {', '.join(missing)} not set; start this command with torchrun "
                         "(see README, 'Training on several processes') or use --nproc N")
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    dist.init_process_group(BACKEND, rank=world.rank, world_size=world.size,
                            timeout=timedelta(seconds=float(timeout_s)))
    return world


def launched_by_torchrun() -> bool:
    """Whether this process is a rank started by torchrun (its environment names the job)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def leave_group() -> None:
    """Leave the process group: first free what the rank's work left in reference cycles (a DDP reducer
    keeps gloo's worker threads), so that they are not torn down at interpreter exit, where a rank could
    abort with "terminate called without an active exception" (SIGABRT) after finishing its work."""
    gc.collect()
    dist.destroy_process_group()


def _entry(rank: int, size: int, folder: str, fn: Callable[..., Any], args: tuple[Any, ...],
           timeout_s: float, threads: int) -> None:
    """What each spawned process runs: join the group through a file store, run ``fn(world, *args)``;
    rank 0 saves the result for :func:`launch`. A rank that finished ends at once (``os._exit(0)``),
    skipping the interpreter's teardown of gloo's threads; one that raised ends as spawn reports it."""
    torch.set_num_threads(int(threads))
    world = World(rank, size)
    store = dist.FileStore(str(Path(folder) / "store"), size)
    dist.init_process_group(BACKEND, store=store, rank=rank, world_size=size,
                            timeout=timedelta(seconds=float(timeout_s)))
    try:
        result = fn(world, *args)
        if world.writes:
            torch.save({"result": result}, Path(folder) / "result.pt")
    finally:
        leave_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def launch(fn: Callable[..., Any], nproc: int, *args: Any, timeout_s: float = DEFAULT_TIMEOUT_S,
           threads: int = 1) -> Any:
    """Run ``fn(world, *args)`` on ``nproc`` new processes (spawned, ``threads`` torch threads each) in
    one gloo process group; returns rank 0's result (tensors, numbers, strings, lists and dicts).

    ``fn`` must be importable (a module-level function). When a process dies or raises, the others are
    stopped and :class:`DistributedJobFailed` says which rank and how; collectives wait at most
    ``timeout_s`` seconds for a silent rank.
    """
    if int(nproc) < 1:
        raise ValueError(f"launch: nproc must be >= 1, got {nproc}")
    with tempfile.TemporaryDirectory(prefix="ytrec-ddp-") as folder:
        ctx = mp.start_processes(_entry, args=(int(nproc), folder, fn, args, timeout_s, threads),
                                 nprocs=int(nproc), join=False, start_method="spawn")
        try:
            while not ctx.join():
                pass
        except ProcessException as err:
            raise DistributedJobFailed(failure_message(err, [p.exitcode for p in ctx.processes])) from None
        return torch.load(Path(folder) / "result.pt", weights_only=True)["result"]


def failure_message(err: ProcessException, exitcodes: Sequence[int | None]) -> str:
    """One message for a failed job: the rank that failed first and how (a signal, an exit status or
    its exception's last line), the ranks killed by a signal, and what to do."""
    rank = err.error_index
    if isinstance(err, ProcessExitedException) and err.signal_name:
        how = f"was killed by {err.signal_name}"
    elif isinstance(err, ProcessExitedException):
        how = f"exited with status {err.exit_code}"
    else:
        last = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        how = f"raised {last[-1].strip()[:300] if last else 'an exception'}"
    killed = [f"rank {r} was killed by {signal.Signals(-code).name}" for r, code in enumerate(exitcodes)
              if r != rank and code is not None and code < 0 and -code != signal.SIGTERM]
    more = "".join(f"; {k}" for k in killed)
    return (f"distributed job of {len(exitcodes)} processes failed: rank {rank} {how}{more}; the other ranks "
            f"were stopped; {WHAT_TO_DO}")


__all__ = ["BACKEND", "DEFAULT_TIMEOUT_S", "WHAT_TO_DO", "DistributedJobFailed", "World", "init_from_env",
           "launched_by_torchrun", "leave_group", "launch", "failure_message"]
