"""The processes of a run (one, or DDP under torchrun), their random generators (seeding, saving, restoring), and the
signals that ask them to stop (StopSignals)."""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig

from sentibert.device import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup_processes(trainer: DictConfig) -> Processes:
    """One process, or DDP when torchrun started several (WORLD_SIZE, RANK, LOCAL_RANK are torchrun's)."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if trainer.strategy not in ("auto", "ddp"):
        raise ValueError(f"trainer.strategy={trainer.strategy!r}: choose auto or ddp")
    if trainer.strategy == "ddp" and world_size == 1:
        raise RuntimeError("trainer.strategy=ddp needs several processes: "
                           "torchrun --nproc_per_node N -m sentibert.commands.train ...")
    device = pick_device(trainer.device)
    if world_size == 1:
        return Processes(0, 1, device)
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = trainer.backend if trainer.backend != "auto" else "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return Processes(dist.get_rank(), world_size, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's generator


def rng_state(mlm_generator: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, gauss),  # plain values: loadable with weights_only
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mlm": mlm_generator.get_state(),
    }


def set_rng_state(state: dict, mlm_generator: torch.Generator) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    mlm_generator.set_state(state["mlm"])


class StopSignals:
    """While active (`with`), SIGTERM (Slurm's preemption, `kill`) and SIGINT (Ctrl-C) ask training to stop after the
    current step, with a checkpoint, instead of killing it; a second signal acts at once, as it would have."""
    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # asked twice: stop now, as without this handler
            signal.signal(signum, self.previous[signum] or signal.SIG_DFL)  # None: set outside Python
            signal.raise_signal(signum)
            return
        self.signum = signum
        log.warning("%s: stopping after this step, with a checkpoint (send it again to stop at once)",
                    signal.Signals(signum).name)

    @classmethod
    def ignore_in_worker(cls, worker_id: int) -> None:
        """A DataLoader's worker_init_fn: the main process decides when to stop (a forked worker would inherit its
        handler, and Ctrl-C reaches every process of the terminal's group)."""
        for signum in cls.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def requested(self, procs: Processes) -> bool:
        """Whether a signal asked to stop; under DDP, whether any rank was asked, so that all stop at one step."""
        if procs.world_size == 1:
            return self.signum is not None
        asked = torch.tensor([self.signum is not None], dtype=torch.int32, device=procs.device)
        dist.all_reduce(asked, op=dist.ReduceOp.MAX)
        return bool(asked.item())
