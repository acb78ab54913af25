"""Resumable training state: the Checkpoints of a run directory (written atomically, only the latest kept), the
config fingerprint that `resume=true` compares (`check_resume`), and who may train in a run directory
(`own_run_dir`)."""
from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from sentibert import runs
from sentibert.io import atomic_write_json, atomic_write_text, process_lock, wrapped_os_error
from sentibert.models.checkpoint import CheckpointError
from sentibert.training.processes import Processes

log = logging.getLogger(__name__)
FINGERPRINT_FILE = "config.json"  # in each checkpoint: the config it was made with (`fingerprint`)
CHECKPOINT_NAME = re.compile(r"epoch(?P<epoch>\d+)-step(?P<step>\d+)")  # epoch: the sampler's, whole epochs served


def checkpoint_name(epoch: int, step: int) -> str:
    return f"epoch{epoch}-step{step}"


def epochs_trained(name: str) -> int:
    """Whole epochs a checkpoint named `name` had trained; 0 for a name it does not parse (so: none assumed)."""
    match = CHECKPOINT_NAME.fullmatch(name.strip())
    return int(match["epoch"]) if match else 0


class Checkpoints:
    """run_dir/checkpoints/<name>/ written whole under a temporary name, renamed, then named in `latest` (all atomic
    steps), so a crash at any point leaves the previous checkpoint usable. Only the latest is kept.

    A checkpoint: model.safetensors, state.pt (optimizer, scheduler, sampler, progress; rank 0), rng-<rank>.pt
    (each process's generators: under DDP each rank draws its own dropout masks) and config.json (`fingerprint`)."""

    def __init__(self, run_dir: Path, procs: Processes):
        self.root, self.procs = run_dir / runs.CHECKPOINTS, procs

    def latest(self) -> Path | None:
        """The checkpoint `latest` names, None when there is none; a CheckpointError when it names nothing there."""
        pointer = self.root / runs.LATEST_CHECKPOINT
        if not pointer.is_file():
            return None
        name = pointer.read_text(encoding="utf-8", errors="replace").strip()
        path = self.root / name
        if not name or "/" in name or not path.is_dir():
            raise CheckpointError(f"{pointer} names checkpoint {name!r}, but {path} is not there: restore that "
                                  f"directory, or delete {self.root} to train this run from the start")
        return path

    def save(self, name: str, model, state: dict, rng: dict, config: dict) -> None:
        """Write checkpoint `name`; on an OSError (a full disk, safetensors' own error included) the partial one is
        removed and a CheckpointSaveError says so: the previous checkpoint, and `latest` naming it, are left as they
        were."""
        try:
            self._save(name, model, state, rng, config)
        except OSError as err:
            shutil.rmtree(self.root / f".{name}.tmp", ignore_errors=True)  # free what the partial checkpoint took
            pointer = self.root / runs.LATEST_CHECKPOINT
            previous = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None
            if previous != name:  # renamed into place, but `latest` could not be written
                shutil.rmtree(self.root / name, ignore_errors=True)
            reason = "the disk is full" if err.errno == errno.ENOSPC else err.strerror or str(err)
            kept = (f"the previous checkpoint {self.root / previous} is intact (resume=true continues from it)"
                    if previous and (self.root / previous).is_dir() else "there is no earlier checkpoint")
            raise CheckpointSaveError(f"cannot write checkpoint {name} in {self.root}: {reason}; {kept}. "
                                      "Free some space (or fix the directory) and resume") from err

    def _save(self, name: str, model, state: dict, rng: dict, config: dict) -> None:
        tmp = self.root / f".{name}.tmp"
        if self.procs.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.procs.barrier()
        torch.save(rng, tmp / f"rng-{self.procs.rank}.pt")
        if self.procs.main:
            try:
                save_model(model, str(tmp / "model.safetensors"))
            except SafetensorError as err:  # a full disk, in safetensors' words
                raise wrapped_os_error(err, tmp / "model.safetensors") from err
            torch.save(state, tmp / "state.pt")
            atomic_write_json(tmp / FINGERPRINT_FILE, config)
        self.procs.barrier()
        if self.procs.main:
            shutil.rmtree(self.root / name, ignore_errors=True)  # left by a crash before `latest` named it
            os.replace(tmp, self.root / name)
            atomic_write_text(self.root / runs.LATEST_CHECKPOINT, name)
            for old in self.root.iterdir():
                if old.is_dir() and old.name != name:
                    shutil.rmtree(old, ignore_errors=True)

    def load(self, path: Path, model) -> tuple[dict, dict]:
        """Weights into `model`; -> (state, this rank's RNG state), read without unpickling code."""
        rng_file = path / f"rng-{self.procs.rank}.pt"
        if not rng_file.is_file():
            raise FileNotFoundError(f"{rng_file} missing: resume with as many processes as the run had")
        weights = path / "model.safetensors"
        try:
            load_model(model, weights, device=str(self.procs.device))
        except SafetensorError as err:  # cut short, or overwritten
            raise damaged_checkpoint(weights, err) from None
        return _load_state(path / "state.pt", map_location="cpu"), _load_state(rng_file)


class CheckpointSaveError(OSError):
    """A checkpoint that could not be written (a full disk); the message says the previous one is intact."""


def damaged_checkpoint(file: Path, err: Exception) -> CheckpointError:
    """run_dir/checkpoints/<name>/<file> is unreadable: name it, and what to do."""
    reason = str(err).splitlines()[0].partition(". ")[0] if str(err) else type(err).__name__  # torch's: 5 sentences
    return CheckpointError(f"{file}: damaged or truncated ({reason}); restore the checkpoint, or delete "
                           f"{file.parents[1]} to train this run from the start")


def _load_state(file: Path, **kwargs):
    """torch.load without unpickling code; a CheckpointError naming `file` when it is damaged or truncated."""
    try:
        return torch.load(file, weights_only=True, **kwargs)
    except (FileNotFoundError, PermissionError):  # they name the file already
        raise
    # a cut zip, a bad pickle; torch reads a small cut file as an OSError (EINVAL)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as err:
        raise damaged_checkpoint(file, err) from None


# ---- resuming with the same config ------------------------------------------------------------------------------
# Keys that do not change what a run computes: its name, where it logs, how often it checkpoints, where it runs.
RESUME_EXEMPT = ("name", "resume", "resume_allow_changes", "overwrite", "logger", "paths", "data.root",
                 "data.eval_batch_size", "trainer.checkpoint_every_n_steps", "trainer.log_every_n_steps",
                 "trainer.stop_after_steps", "trainer.device", "trainer.strategy", "trainer.backend",
                 "trainer.num_workers")



def fingerprint(cfg: DictConfig) -> dict:
    """The resolved config as flat `a.b: value` pairs, without RESUME_EXEMPT keys (a checkpoint stores it)."""
    def flat(node, prefix: str = "") -> dict:
        if not isinstance(node, dict):
            return {prefix[:-1]: node}
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}

    return _current(flat(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))


def _current(resolved: dict) -> dict:
    """A fingerprint without RESUME_EXEMPT keys."""
    return {k: v for k, v in resolved.items() if not any(k == e or k.startswith(e + ".") for e in RESUME_EXEMPT)}


def check_resume(cfg: DictConfig, checkpoint: Path) -> list[dict]:
    """Refuse to resume `checkpoint` with a config that changes the result, naming every changed key; keys in
    `resume_allow_changes` may change (e.g. trainer.max_epochs, to extend a finished run). -> the allowed changes."""
    saved = _current(json.loads((checkpoint / FINGERPRINT_FILE).read_text(encoding="utf-8")))  # as this version exempts
    current = fingerprint(cfg)
    changed = [{"key": k, "from": saved.get(k), "to": current.get(k)} for k in sorted(saved.keys() | current.keys())
               if saved.get(k) != current.get(k)]
    refused = [c for c in changed if c["key"] not in cfg.resume_allow_changes]
    if refused:
        listed = "; ".join(f"{c['key']}: {c['from']!r} -> {c['to']!r}" for c in refused)
        raise ValueError(f"resume=true with a config that differs from the checkpoint's ({checkpoint}): {listed}. "
                         f"Use a new run directory, or allow a change explicitly: "
                         f"resume_allow_changes=[{','.join(c['key'] for c in refused)}]")
    for change in changed:
        log.warning("resuming with %s changed: %r -> %r (resume_allow_changes)", change["key"], change["from"],
                    change["to"])
    return changed


# ---- one run per run directory ----------------------------------------------------------------------------------
def lock_run_dir(run_dir: Path):
    """The lock of `run_dir` (runs.LOCK_FILE), held by the process that trains there: a context manager."""
    return process_lock(run_dir / runs.LOCK_FILE, f"run directory {run_dir}",
                        "another training runs there; wait for it to end, or choose another hydra.run.dir")


def check_run_dir(cfg: DictConfig, run_dir: Path) -> list[str]:
    """Refuse a directory that holds another run (its metrics or checkpoints) unless `resume=true` continues it (from
    a checkpoint: metrics alone are refused) or `overwrite=true` replaces it; -> what it holds."""
    if cfg.resume and cfg.overwrite:
        raise ValueError("resume=true and overwrite=true: choose one (continue the run, or replace it)")
    held = [name for name in (runs.METRICS_FILE, runs.CHECKPOINTS) if (run_dir / name).exists()]
    if held and not (cfg.resume or cfg.overwrite):
        raise ValueError(f"{run_dir} holds a run already ({', '.join(held)}): resume=true continues it, "
                         "overwrite=true replaces it, or choose another hydra.run.dir")
    if cfg.resume and held == [runs.METRICS_FILE]:
        # e.g. a collected campaign run (its checkpoints dropped): starting afresh would replace a finished run's
        # results, and read test twice
        raise ValueError(f"{run_dir} holds a run's {runs.METRICS_FILE} but no checkpoints: resume=true has nothing "
                         "to continue from, and a finished run's results stand; overwrite=true replaces it, or "
                         "choose another hydra.run.dir")
    return held


@contextmanager
def own_run_dir(cfg: DictConfig, run_dir: Path, procs: Processes) -> Iterator[None]:
    """Train in `run_dir` only as its one run: rank 0 holds its lock while the block runs, once `check_run_dir`
    passes; `overwrite=true` removes the previous run's outputs first. (`sentibert train` checks the same before
    Hydra writes its record, .hydra/ and train.log, into the directory.)"""
    if not procs.main:
        yield
        return
    with lock_run_dir(run_dir):
        if check_run_dir(cfg, run_dir) and cfg.overwrite:
            log.warning("overwrite=true: removing the previous run's %s from %s", ", ".join(runs.TRAIN_OUTPUTS),
                        run_dir)
            for path in (run_dir / name for name in runs.TRAIN_OUTPUTS):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        yield
