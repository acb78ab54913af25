"""Run a declared list of training runs, resumably (`sentibert campaign FILE [--jobs N] [--threads N] [--dry-run]`).

The file (experiments/campaign.yaml, read by sentibert.campaign.spec) lists groups of runs. One runner works on a
results folder at a time (its LOCK_FILE).
A run waits until what it depends on has results. Checkpoints are not results: on a fresh machine (an empty runs
dir) a source that others still need is trained again, same overrides, into the runs dir only; its dev scores are
compared with its committed results (logged), and each dependent's results name the source and its best_dev.
Ready runs start in file order, `--jobs` at a time, each with `--threads` torch threads. Each run trains in
`<runs-dir>/<run>/` with `resume=true`, so an interrupted run continues from its last checkpoint when the command
is repeated; a run whose results exist is skipped, unless they are stale (spec.stale_lr: its group's grid gained
a value and the pick moved): then it trains again from scratch at the new lr, its old run dir moved aside to
`<run>.superseded-lr<old lr>` (never resumed), and its new results replace the old ones.

Results (`<results>/<run>/`, committed; never checkpoints): metrics.json (train's, plus a `campaign` block: the run's
labels, lr, seed, the code's git commit, wall time and what it was measured on: the machine, torch threads per run
and runs at once), config.yaml, test_predictions.jsonl.gz and, for runs matching
`paper_test`, paper_test_metrics.json and paper_test_predictions.jsonl.gz: the selected model on the paper's own
test subset (data=sst_paper). They are written to a temporary folder and renamed, so a folder that exists is whole.
The run dir of a collected run keeps its best_model/ only (not its training checkpoints), unless keep_checkpoints.
"""
from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sentibert import runs as run_files
from sentibert.campaign.spec import (PAPER_TEST_DIR, PAPER_TEST_METRICS, PAPER_TEST_PREDICTIONS, Campaign, PlannedRun,
                                     compose_groups, first_run, lr_name, matches, may_join, picked_lr,
                                     read_results, recorded_lr, stale_lr, trainer_record, wanted)
from sentibert.device import describe_hardware, pick_device
from sentibert.io import atomic_write_json, atomic_write_text, process_lock
from sentibert.training.checkpoints import epochs_trained

log = logging.getLogger(__name__)
LOG_FILE, PID_FILE = "campaign.log", "campaign.pid"
LOCK_FILE = ".campaign.lock"  # in the results folder: names the one runner working on it
DONE_FILE = "campaign.done"  # in a run dir: training ended there, so its best_model/ is final
# A step that a signal stopped: `sentibert train` exits 128 + the signal, with a checkpoint; others die of it.
STOPPED = {128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM}
SECONDS_FILE = "campaign.seconds"  # in a run dir: its wall time so far, over every runner that worked on it


def resolve(campaign: Campaign, run: PlannedRun, results: Path, runs_dir: Path) -> list[str] | None:
    """The run's `sentibert train` overrides, or None while what it depends on has no results yet."""
    lr = run.lr if run.lr is not None else picked_lr(campaign, run.lr_source, results)
    if lr is None:
        return None
    overrides = [*campaign.overrides, *run.group.overrides, f"seed={run.seed}", f"trainer.lr={lr}",
                 f"name={run.name}"]
    if run.group.init_from:
        source = first_run(campaign, run.group.init_from, results)
        if source is None or not done(campaign, source, results) or not checkpoint_here(runs_dir, source):
            return None
        overrides.append(f"init_from={(runs_dir / source.name / run_files.BEST_MODEL).resolve()}")
    return overrides


def checkpoint_here(runs_dir: Path, run: PlannedRun) -> bool:
    return (runs_dir / run.name / DONE_FILE).is_file()


def latest_pointer(runs_dir: Path, run: PlannedRun) -> Path:
    """The file naming the run's latest training checkpoint (there while it has one to resume from)."""
    return runs_dir / run.name / run_files.CHECKPOINTS / run_files.LATEST_CHECKPOINT


def has_checkpoint(runs_dir: Path, run: PlannedRun) -> bool:
    """Its run dir has a checkpoint to resume from."""
    return latest_pointer(runs_dir, run).is_file()


def done(campaign: Campaign, run: PlannedRun, results: Path) -> bool:
    """The run has results, and they are not stale."""
    return read_results(results, run.name) is not None and stale_lr(campaign, run, results) is None


def supersede(run_dir: Path, lr: float) -> Path | None:
    """Move a run dir trained at another lr than `lr` aside, to `<run>.superseded-lr<its lr>` (kept, never resumed
    or adopted); -> where it went, None if there was nothing to move."""
    old = recorded_lr(run_dir) if run_dir.is_dir() else None
    if old is None or old == lr:
        return None
    target = run_dir.with_name(f"{run_dir.name}.superseded-lr{lr_name(old)}")
    for n in itertools.count(2):  # superseded at this lr before: keep both
        if not target.exists():
            break
        target = run_dir.with_name(f"{run_dir.name}.superseded-lr{lr_name(old)}.{n}")
    run_dir.rename(target)
    return target


def lost_checkpoints(campaign: Campaign, results: Path, runs_dir: Path, only: str = "*") -> list[PlannedRun]:
    """Sources with results but no finished run dir here, that a run still to do (matching `only`) starts from."""
    lost = []
    for run in campaign.runs:
        if (not run.group.init_from or not matches(run.name, only) or done(campaign, run, results)
                or not wanted(campaign, run, results)):  # an lr_extend run no grid calls for never runs
            continue
        source = first_run(campaign, run.group.init_from, results)
        if (source is not None and source not in lost and done(campaign, source, results)
                and not checkpoint_here(runs_dir, source)):
            lost.append(source)
    return lost


def compare_rebuilt(results: Path, run: PlannedRun, run_dir: Path) -> str:
    """How a rebuilt source's dev scores compare with its committed results (floating-point equality)."""
    committed = read_results(results, run.name)
    rebuilt = json.loads((run_dir / run_files.METRICS_FILE).read_text(encoding="utf-8"))
    if rebuilt["dev"] == committed["dev"]:
        return f"rebuilt {run.name}: its dev scores equal the committed results (best_dev {rebuilt['best_dev']})"
    return (f"rebuilt {run.name}: its dev scores differ from the committed results (best_dev {rebuilt['best_dev']}, "
            f"committed {committed['best_dev']}); its dependents record the rebuilt one")


# ---- running ------------------------------------------------------------------------------------------------
def code_commit() -> dict:
    root = Path(__file__).resolve().parents[2]  # the checkout: sentibert/campaign/runner.py -> ../..
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--", "sentibert",
                                                                           "conf"))}


def _gzip(source: Path, target: Path) -> None:
    with source.open("rb") as f, gzip.GzipFile(target, "wb", mtime=0) as g:  # mtime 0: the same bytes every time
        shutil.copyfileobj(f, g)


def collect(campaign: Campaign, run: PlannedRun, run_dir: Path, results: Path, lr: float, seconds: float,
            threads: int, jobs: int) -> Path:
    """Copy a finished run's results into `results/<run>/`, atomically. Its wall time is recorded with what it was
    measured on: this machine (the run's device), `threads` torch threads per run and `jobs` runs at once."""
    tmp = results / f".{run.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    metrics = json.loads((run_dir / run_files.METRICS_FILE).read_text(encoding="utf-8"))
    group = run.group
    device = pick_device(str(trainer_record(run_dir).get("device", "auto")))  # the device the run trained on
    metrics["campaign"] = {"run": run.name, "group": group.group, "task": group.task, "model": group.model,
                           "encoder": group.encoder, "variant": group.variant, "seed": run.seed, "lr": lr,
                           "grid": run.grid, "seconds": round(seconds), "machine": describe_hardware(device),
                           "threads": threads, "jobs": jobs, **code_commit()}
    if group.init_from:  # the checkpoint it started from, which may have been rebuilt (lost_checkpoints)
        source = first_run(campaign, group.init_from, results)
        started_from = json.loads((run_dir.parent / source.name / run_files.METRICS_FILE).read_text(encoding="utf-8"))
        metrics["campaign"]["init_from"] = {"run": source.name, "best_dev": started_from["best_dev"]}
    atomic_write_json(tmp / run_files.METRICS_FILE, metrics)
    shutil.copy(run_dir / run_files.CONFIG_FILE, tmp / run_files.CONFIG_FILE)
    paper_test = run_dir / PAPER_TEST_DIR
    for source, target in ((run_dir / run_files.PREDICTIONS_FILE, run_files.GZIPPED_PREDICTIONS_FILE),
                           (paper_test / run_files.PREDICTIONS_FILE, PAPER_TEST_PREDICTIONS)):
        if source.is_file():
            _gzip(source, tmp / target)
    if (paper_test / run_files.METRICS_FILE).is_file():
        shutil.copy(paper_test / run_files.METRICS_FILE, tmp / PAPER_TEST_METRICS)
    final = results / run.name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def commands(campaign: Campaign, run: PlannedRun, overrides: list[str], run_dir: Path) -> list[list[str]]:
    train = [sys.executable, "-m", "sentibert.commands.train", *overrides, f"hydra.run.dir={run_dir}", "resume=true"]
    if not campaign.paper_tested(run.group):
        return [train]
    paper = [sys.executable, "-m", "sentibert.commands.evaluate", f"checkpoint={run_dir / run_files.BEST_MODEL}",
             "data=sst_paper", "split=test", f"hydra.run.dir={run_dir / PAPER_TEST_DIR}"]
    return [train, paper]


def drop_checkpoints(run_dir: Path) -> None:
    """A collected run is never resumed: its training checkpoints go (1.4 GB for MPNet), its best_model/ stays."""
    checkpoints = run_dir / run_files.CHECKPOINTS
    if checkpoints.is_dir():
        size = sum(path.stat().st_size for path in checkpoints.rglob("*") if path.is_file())
        shutil.rmtree(checkpoints)
        log.info("%s: dropped its training checkpoints (%.2f GB; best_model/ kept)", run_dir.name, size / 1e9)


@dataclass
class Job:
    run: PlannedRun
    steps: list[list[str]]
    run_dir: Path
    lr: float
    started: float  # time.time() at its start, less the wall time of the run's earlier runners
    rebuild: bool = False  # retraining a source whose checkpoint is lost: nothing is collected
    process: subprocess.Popen | None = None


def run_campaign(campaign: Campaign, runs_dir: Path, results: Path, jobs: int = 1, threads: int = 1,
                 only: str = "*", poll: float = 5.0, keep_checkpoints: bool = False) -> int:
    """Run what is left, as the one runner on `results` (its LOCK_FILE); -> the number of runs that failed. Unless
    `keep_checkpoints`, the runs collected (now or by earlier runners) keep their best_model/ only."""
    with process_lock(results / LOCK_FILE, f"results folder {results}",
                      "another `sentibert campaign` runs on it; wait for it to end, or stop it"):
        if not keep_checkpoints:
            for run in campaign.runs:
                if done(campaign, run, results) and checkpoint_here(runs_dir, run):
                    drop_checkpoints(runs_dir / run.name)
        return _run_left(campaign, runs_dir, results, jobs, threads, only, poll, keep_checkpoints)


def _run_left(campaign: Campaign, runs_dir: Path, results: Path, jobs: int, threads: int, only: str,
              poll: float, keep_checkpoints: bool) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    active: list[Job] = []
    failed: set[str] = set()
    stopped: set[str] = set()  # by a signal: left for the next runner
    while True:
        busy = {job.run.name for job in active}
        # Runs a stopped runner left training hold cores too; the next pass resumes and collects them once they end.
        elsewhere = {run.name for run in campaign.runs
                     if run.name not in busy and running_elsewhere(runs_dir / run.name)}
        for name in elsewhere:  # their wall time goes on counting: as of the last count, plus the time since
            path = runs_dir / name / SECONDS_FILE
            if path.is_file():
                atomic_write_text(path, f"{seconds_so_far(path.parent) + time.time() - path.stat().st_mtime:.1f}\n")
        lost = {run.name for run in lost_checkpoints(campaign, results, runs_dir, only)}
        # Started runs first (a stopped runner's, ended since, may only need collecting); else the file's order.
        for run in sorted(campaign.runs, key=lambda run: not has_checkpoint(runs_dir, run)):
            if len(active) + len(elsewhere) >= jobs:
                break
            rebuild = run.name in lost
            if (run.name in busy or run.name in elsewhere or run.name in failed | stopped
                    or not rebuild and (not matches(run.name, only) or done(campaign, run, results)
                                        or not wanted(campaign, run, results))):
                continue
            overrides = resolve(campaign, run, results, runs_dir)
            if overrides is None:
                continue
            run_dir = runs_dir / run.name
            lr = float(next(o for o in overrides if o.startswith("trainer.lr=")).split("=", 1)[1])
            if superseded := supersede(run_dir, lr):
                log.info("%s: its run dir was trained at another lr than %s: moved aside to %s", run.name, lr,
                         superseded)
                if not keep_checkpoints:  # never resumed
                    drop_checkpoints(superseded)
            if not rebuild and (run_dir / DONE_FILE).is_file() and (run_dir / run_files.METRICS_FILE).is_file():
                # Every step ended here, at this lr, but its results are not in `results` (removed, or another
                # results folder): collected again as it is, since its checkpoints may be gone.
                final = collect(campaign, run, run_dir, results, lr, seconds_so_far(run_dir), threads, jobs)
                log.info("%s collected again from its finished run dir: %s", run.name, final)
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            steps = commands(campaign, run, overrides, run_dir)
            job = Job(run, steps[:1] if rebuild else steps, run_dir, lr, time.time() - seconds_so_far(run_dir), rebuild)
            _start_next(job, env)
            active.append(job)
            log.info("%s %s (lr %s, seed %d): %s", "rebuilding the lost checkpoint of" if rebuild else "started",
                     run.name, lr, run.seed, run_dir / LOG_FILE)
        if not active and not elsewhere:
            return len(failed)
        time.sleep(poll)
        for job in list(active):
            # A resumed run's wall time counts its earlier runners too (to within one poll of each stop).
            atomic_write_text(job.run_dir / SECONDS_FILE, f"{time.time() - job.started:.0f}\n")
            code = job.process.poll()
            if code is None:
                continue
            if code in STOPPED:  # not a failure: left for the next runner
                stopped.add(job.run.name)
                active.remove(job)
                log.warning("%s stopped by %s: the same command goes on from its last checkpoint", job.run.name,
                            signal.Signals(abs(code) % 128).name)
            elif code != 0:
                failed.add(job.run.name)
                active.remove(job)
                log.error("%s failed (exit %d): see %s", job.run.name, code, job.run_dir / LOG_FILE)
            elif job.steps:
                _start_next(job, env)
            else:
                active.remove(job)
                (job.run_dir / DONE_FILE).touch()
                if job.rebuild:
                    log.info(compare_rebuilt(results, job.run, job.run_dir))
                else:
                    final = collect(campaign, job.run, job.run_dir, results, job.lr, time.time() - job.started,
                                    threads, jobs)
                    log.info("%s done: %s", job.run.name, final)
                if not keep_checkpoints:
                    drop_checkpoints(job.run_dir)


def seconds_so_far(run_dir: Path) -> float:
    path = run_dir / SECONDS_FILE
    return float(path.read_text(encoding="utf-8")) if path.is_file() else 0.0


def _start_next(job: Job, env: dict) -> None:
    step = job.steps.pop(0)
    with (job.run_dir / LOG_FILE).open("a") as out:
        out.write(f"$ {' '.join(step)}\n")
        out.flush()
        job.process = subprocess.Popen(step, stdout=out, stderr=subprocess.STDOUT, env=env)
    (job.run_dir / PID_FILE).write_text(str(job.process.pid))


def running_elsewhere(run_dir: Path) -> bool:
    """A process started by an earlier runner (one that was stopped) may still be training in `run_dir`."""
    try:
        pid = int((run_dir / PID_FILE).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return str(run_dir).encode() in cmdline


# ---- dry run --------------------------------------------------------------------------------------------------
def estimate_minutes(campaign: Campaign, run: PlannedRun, epochs_done: int = 0) -> float | None:
    """Rough one-thread minutes: epochs left x the encoder's SST epoch in the run's precision x the dataset's cost
    relative to SST."""
    config = compose_groups(campaign)[run.group.group]
    per_epoch = campaign.minutes_per_sst_epoch.get(run.group.encoder, {}).get(config.precision)
    cost = campaign.epoch_cost.get(config.dataset)
    if per_epoch is None or cost is None:
        return None
    epochs_left = max(config.max_epochs - epochs_done, 0)
    return epochs_left * per_epoch * cost * (campaign.pretraining_cost if config.mlm else 1.0)


def epochs_checkpointed(runs_dir: Path, run: PlannedRun) -> int:
    """Whole epochs the run's latest checkpoint had trained (0 without one): a resumed run has only the rest left."""
    pointer = latest_pointer(runs_dir, run)
    return epochs_trained(pointer.read_text(encoding="utf-8", errors="replace")) if pointer.is_file() else 0


def dry_run(campaign: Campaign, results: Path, runs_dir: Path, jobs: int, only: str = "*") -> str:
    lines, total, unknown = [], 0.0, 0
    lost = lost_checkpoints(campaign, results, runs_dir, only)
    stale = 0
    planned = [run for run in campaign.runs if wanted(campaign, run, results)]
    for run in planned:
        if run not in lost and (not matches(run.name, only) or done(campaign, run, results)):
            continue
        ready = resolve(campaign, run, results, runs_dir) is not None
        lrs = stale_lr(campaign, run, results)
        state = "rebuilds" if run in lost else "stale" if lrs else "resumes" if has_checkpoint(runs_dir, run) \
            else "ready" if ready else "waits"
        minutes = estimate_minutes(campaign, run, epochs_checkpointed(runs_dir, run) if state == "resumes" else 0)
        note = f"  results at lr {lr_name(lrs[0])}, the pick is now {lr_name(lrs[1])}" if lrs else ""
        lines.append(f"{run.name:<58} {state:<8} {'?' if minutes is None else f'{minutes:6.0f} min'}{note}")
        total += minutes or 0.0
        unknown += minutes is None
        stale += bool(lrs)
    have = sum(done(campaign, run, results) for run in planned)
    rebuilds = f" (and {len(lost)} lost checkpoints to rebuild)" if lost else ""
    stale_note = f" ({stale} stale: to train again at the lr picked now)" if stale else ""
    held = sum(matches(run.name, only) and may_join(campaign, run, results) for run in campaign.runs)
    held_note = f" ({held} lr_extend runs more if dev picks their grid's end)" if held else ""
    lines.append(f"{have} of {len(planned)} runs have results{held_note}; {len(lines) - len(lost)} left{stale_note}"
                 f"{rebuilds}, about {total / 60:.1f} core-hours ({total / 60 / jobs:.1f} h with --jobs {jobs})"
                 + (f"; {unknown} without an estimate" if unknown else ""))
    return "\n".join(lines)
