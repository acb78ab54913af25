"""Run a declared list of training runs, resumably (`sentibert campaign FILE [--jobs N] [--threads N] [--dry-run]`).

The file (experiments/campaign.yaml) lists groups in priority order; each group is one table row (task, model,
encoder, variant) and expands into runs, each a named set of `sentibert train` overrides:
- `lr_grid`: the first seed at every lr; the selected epoch's dev metric (`best_dev`) picks the lr; the other seeds
  then run at it, and the picked grid run counts as the first seed. Ties go to the lr listed first.
- `lr_from: GROUP`: the lr that GROUP's grid picked. `lr`: a fixed one.
- `init_from: GROUP`: GROUP's first run's best_model/ (e.g. the pre-training checkpoint).
Every mistake in the file is a CampaignError naming the group and the key, before anything runs: `load_campaign`
checks the keys and their values (a group's name names folders: letters, digits, _, - and .), `check_overrides`
composes each group's config. One runner works on a results folder at a time (its LOCK_FILE).
A run waits until what it depends on has results. Checkpoints are not results: on a fresh machine (an empty runs
dir) a source that others still need is trained again, same overrides, into the runs dir only; its dev scores are
compared with its committed results (logged), and each dependent's results name the source and its best_dev.
Ready runs start in file order, `--jobs` at a time, each with `--threads` torch threads. Each run trains in
`<runs-dir>/<run>/` with `resume=true`, so an interrupted run continues from its last checkpoint when the command
is repeated; a run whose results exist is skipped.

Results (`<results>/<run>/`, committed; never checkpoints): metrics.json (train's, plus a `campaign` block: the run's
labels, lr, seed, the code's git commit, wall time), config.yaml, test_predictions.jsonl.gz and, for runs matching
`paper_test`, paper_test_metrics.json and paper_test_predictions.jsonl.gz: the selected model on the paper's own
test subset (data=sst_paper). They are written to a temporary folder and renamed, so a folder that exists is whole.
"""
from __future__ import annotations

import fnmatch
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentibert import runs as run_files
from sentibert.io import atomic_write_json, atomic_write_text, process_lock

log = logging.getLogger(__name__)
RESULTS_FILES = (run_files.METRICS_FILE, run_files.CONFIG_FILE)  # copied as they are; predictions are gzipped
LOG_FILE, PID_FILE = "campaign.log", "campaign.pid"
LOCK_FILE = ".campaign.lock"  # in the results folder: names the one runner working on it
DONE_FILE = "campaign.done"  # in a run dir: training ended there, so its best_model/ is final
SECONDS_FILE = "campaign.seconds"  # in a run dir: its wall time so far, over every runner that worked on it
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a group's name names folders and goes into Hydra overrides


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _list(check, empty: bool = True):
    return lambda x: isinstance(x, list) and (empty or bool(x)) and all(map(check, x))


def _text(x) -> bool:
    return isinstance(x, str)


# Each key of a group and of the file: a check of its value, and what the check wants. A null optional key is unset.
GROUP_KEYS = {
    "group": (lambda x: isinstance(x, str) and NAME.fullmatch(x), "a name of letters, digits, _, - and . not "
                                                                   "starting with . (it names the runs' folders)"),
    **{key: (_text, "a string") for key in ("task", "model", "encoder", "variant")},
    "overrides": (_list(_text), "a list of `sentibert train` overrides"),
    "seeds": (lambda x: _list(lambda s: type(s) is int, empty=False)(x) and len(set(x)) == len(x),
              "a non-empty list of distinct integer seeds"),
    "lr": (lambda x: _number(x) and x > 0, "a number > 0"),
    "lr_grid": (_list(lambda x: _number(x) and x > 0, empty=False), "a non-empty list of numbers > 0"),
    "lr_from": (_text, "a group's name"), "init_from": (_text, "a group's name"),
}
REQUIRED_KEYS = ("group", "task", "model", "encoder", "variant")
OPTIONAL_KEYS = ("lr", "lr_grid", "lr_from", "init_from")
NUMBERS = (lambda x: isinstance(x, dict) and all(map(_number, x.values())), "a mapping of numbers")
FILE_KEYS = {"overrides": GROUP_KEYS["overrides"], "paper_test": GROUP_KEYS["overrides"],
             "minutes_per_sst_epoch": NUMBERS, "epoch_cost": NUMBERS, "pretraining_cost": (_number, "a number"),
             "groups": (lambda x: isinstance(x, list), "a list")}


class CampaignError(ValueError):
    pass


@dataclass(frozen=True)
class Group:
    group: str
    task: str
    model: str
    encoder: str
    variant: str
    overrides: tuple[str, ...]
    seeds: tuple[int, ...]
    lr: float | None = None
    lr_grid: tuple[float, ...] = ()
    lr_from: str | None = None
    init_from: str | None = None


@dataclass(frozen=True)
class Run:
    name: str
    group: Group
    seed: int
    lr: float | None  # None: the lr of `lr_source`, once picked
    lr_source: str | None = None  # a group whose grid picks this run's lr

    @property
    def grid(self) -> bool:
        """One of its group's lr grid (the first seed at each lr)."""
        return self.lr is not None and bool(self.group.lr_grid)


@dataclass
class Campaign:
    path: Path
    groups: dict[str, Group]
    runs: list[Run]
    overrides: tuple[str, ...] = ()
    paper_test: tuple[str, ...] = ()
    minutes_per_sst_epoch: dict[str, float] = field(default_factory=dict)
    epoch_cost: dict[str, float] = field(default_factory=dict)
    pretraining_cost: float = 1.0


def _lr_name(lr: float) -> str:
    return f"{lr:.0e}"


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file; unknown keys and references to unknown groups are errors."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise CampaignError(f"{path}: {err}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("groups"), list):
        raise CampaignError(f"{path}: expected a mapping with a `groups` list")
    _check_keys(spec, FILE_KEYS, str(path))
    groups: dict[str, Group] = {}
    for i, entry in enumerate(spec["groups"]):
        where = f"{path}: groups[{i}]"
        if not isinstance(entry, dict):
            raise CampaignError(f"{where}: {entry!r} is not a group: give a mapping with keys "
                                f"{', '.join(REQUIRED_KEYS)}, ...")
        if missing := [key for key in REQUIRED_KEYS if key not in entry]:
            raise CampaignError(f"{where}: missing keys {missing}")
        _check_keys({"group": entry["group"]}, GROUP_KEYS, where)  # first: the name names the group below
        where += f" ({entry['group']})"
        _check_keys(entry, GROUP_KEYS, where)
        group = Group(**{**entry, "overrides": tuple(entry.get("overrides", ())),
                         "seeds": tuple(entry.get("seeds", (1,))), "lr_grid": tuple(entry.get("lr_grid") or ())})
        if sum(x is not None and x != () for x in (group.lr, group.lr_grid, group.lr_from)) != 1:
            raise CampaignError(f"{where}: give exactly one of lr, lr_grid, lr_from")
        for ref in (group.lr_from, group.init_from):
            if ref is not None and ref not in groups:
                raise CampaignError(f"{where}: {ref!r} is not a group listed before it")
        if group.lr_from and not groups[group.lr_from].lr_grid:
            raise CampaignError(f"{where}: lr_from {group.lr_from!r}, which has no lr_grid")
        if group.group in groups:
            raise CampaignError(f"{where}: listed twice")
        groups[group.group] = group
    runs = [run for group in groups.values() for run in expand(group)]
    return Campaign(path, groups, runs, tuple(spec.get("overrides", ())), tuple(spec.get("paper_test", ())),
                    spec.get("minutes_per_sst_epoch", {}), spec.get("epoch_cost", {}),
                    spec.get("pretraining_cost", 1.0))


def _check_keys(spec: dict, keys: dict, where: str) -> None:
    """Unknown keys, and values of the wrong kind, are CampaignErrors naming `where` and the key."""
    if unknown := set(spec) - set(keys):
        raise CampaignError(f"{where}: unknown keys {sorted(unknown)}")
    for key, value in spec.items():
        check, wanted = keys[key]
        if not (value is None and key in OPTIONAL_KEYS) and not check(value):
            raise CampaignError(f"{where}: {key}: {value!r} is not {wanted}")


def check_overrides(campaign: Campaign) -> None:
    """Compose each group's `sentibert train` config as its runs will (the file's overrides, then the group's), so
    that a config that does not exist or a misspelt key is a CampaignError naming the group, before anything runs."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sentibert.config import CONF_DIR, ConfigError, validate

    checks = [(f"{campaign.path}: overrides", campaign.overrides)] + [
        (f"{campaign.path}: groups[{i}] ({g.group}): overrides", (*campaign.overrides, *g.overrides))
        for i, g in enumerate(campaign.groups.values())]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for where, overrides in checks:
            try:
                validate(compose("train", overrides=list(overrides)))
            except (HydraException, OmegaConfBaseException, ConfigError) as err:
                cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
                raise CampaignError(f"{where}: {str(err).splitlines()[0]}{cause}") from None


def expand(group: Group) -> list[Run]:
    """A group's runs: the grid (first seed), then the other seeds at the picked lr; or every seed at one lr."""
    first, *others = group.seeds
    if group.lr_grid:
        grid = [Run(f"{group.group}-lr{_lr_name(lr)}-s{first}", group, first, lr) for lr in group.lr_grid]
        return grid + [Run(f"{group.group}-s{seed}", group, seed, None, group.group) for seed in others]
    if group.lr_from:
        return [Run(f"{group.group}-s{seed}", group, seed, None, group.lr_from) for seed in group.seeds]
    return [Run(f"{group.group}-s{seed}", group, seed, group.lr) for seed in group.seeds]


def matches(name: str, only: str) -> bool:
    """`only`: comma-separated globs; a run matching any of them is in."""
    return any(fnmatch.fnmatch(name, glob.strip()) for glob in only.split(","))


# ---- state, from the results folder -------------------------------------------------------------------------
def read_results(results: Path, run: str) -> dict | None:
    path = results / run / run_files.METRICS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def picked_lr(campaign: Campaign, group: str, results: Path) -> float | None:
    """The lr whose grid run has the best dev score; None until every grid run of `group` has results."""
    grid = [run for run in campaign.runs if run.group.group == group and run.grid]
    scores = []
    for run in grid:
        metrics = read_results(results, run.name)
        if metrics is None:
            return None
        scores.append((metrics["best_dev"] if metrics["best_dev"] is not None else float("-inf"), run.lr))
    best = max(score for score, _ in scores)
    return next(lr for score, lr in scores if score == best)  # ties: the first listed


def first_run(campaign: Campaign, group: str, results: Path) -> Run | None:
    """The group's first-seed run (its picked grid run, if it has a grid); None until known."""
    g = campaign.groups[group]
    if not g.lr_grid:
        return next(run for run in campaign.runs if run.group is g)
    lr = picked_lr(campaign, group, results)
    return None if lr is None else next(run for run in campaign.runs if run.group is g and run.lr == lr)


def resolve(campaign: Campaign, run: Run, results: Path, runs_dir: Path) -> list[str] | None:
    """The run's `sentibert train` overrides, or None while what it depends on has no results yet."""
    lr = run.lr if run.lr is not None else picked_lr(campaign, run.lr_source, results)
    if lr is None:
        return None
    overrides = [*campaign.overrides, *run.group.overrides, f"seed={run.seed}", f"trainer.lr={lr}",
                 f"name={run.name}"]
    if run.group.init_from:
        source = first_run(campaign, run.group.init_from, results)
        if source is None or read_results(results, source.name) is None or not checkpoint_here(runs_dir, source):
            return None
        overrides.append(f"init_from={(runs_dir / source.name / run_files.BEST_MODEL).resolve()}")
    return overrides


def checkpoint_here(runs_dir: Path, run: Run) -> bool:
    return (runs_dir / run.name / DONE_FILE).is_file()


def lost_checkpoints(campaign: Campaign, results: Path, runs_dir: Path, only: str = "*") -> list[Run]:
    """Sources with results but no finished run dir here, that a run still to do (matching `only`) starts from."""
    lost = []
    for run in campaign.runs:
        if (not run.group.init_from or not matches(run.name, only)
                or read_results(results, run.name) is not None):
            continue
        source = first_run(campaign, run.group.init_from, results)
        if (source is not None and source not in lost and read_results(results, source.name) is not None
                and not checkpoint_here(runs_dir, source)):
            lost.append(source)
    return lost


def compare_rebuilt(results: Path, run: Run, run_dir: Path) -> str:
    """How a rebuilt source's dev scores compare with its committed results (floating-point equality)."""
    committed = read_results(results, run.name)
    rebuilt = json.loads((run_dir / run_files.METRICS_FILE).read_text(encoding="utf-8"))
    if rebuilt["dev"] == committed["dev"]:
        return f"rebuilt {run.name}: its dev scores equal the committed results (best_dev {rebuilt['best_dev']})"
    return (f"rebuilt {run.name}: its dev scores differ from the committed results (best_dev {rebuilt['best_dev']}, "
            f"committed {committed['best_dev']}); its dependents record the rebuilt one")


# ---- running ------------------------------------------------------------------------------------------------
def code_commit() -> dict:
    root = Path(__file__).resolve().parents[2]  # the checkout: sentibert/training/campaign.py -> ../..
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--", "sentibert",
                                                                           "conf"))}


def _gzip(source: Path, target: Path) -> None:
    with source.open("rb") as f, gzip.GzipFile(target, "wb", mtime=0) as g:  # mtime 0: the same bytes every time
        shutil.copyfileobj(f, g)


def collect(campaign: Campaign, run: Run, run_dir: Path, results: Path, lr: float, seconds: float) -> Path:
    """Copy a finished run's results into `results/<run>/`, atomically."""
    tmp = results / f".{run.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    metrics = json.loads((run_dir / run_files.METRICS_FILE).read_text(encoding="utf-8"))
    group = run.group
    metrics["campaign"] = {"run": run.name, "group": group.group, "task": group.task, "model": group.model,
                           "encoder": group.encoder, "variant": group.variant, "seed": run.seed, "lr": lr,
                           "grid": run.grid, "seconds": round(seconds), **code_commit()}
    if group.init_from:  # the checkpoint it started from, which may have been rebuilt (lost_checkpoints)
        source = first_run(campaign, group.init_from, results)
        started_from = json.loads((run_dir.parent / source.name / run_files.METRICS_FILE).read_text(encoding="utf-8"))
        metrics["campaign"]["init_from"] = {"run": source.name, "best_dev": started_from["best_dev"]}
    atomic_write_json(tmp / run_files.METRICS_FILE, metrics)
    shutil.copy(run_dir / run_files.CONFIG_FILE, tmp / run_files.CONFIG_FILE)
    for source, target in ((run_files.PREDICTIONS_FILE, f"{run_files.PREDICTIONS_FILE}.gz"),
                           ("paper_test/test_predictions.jsonl", "paper_test_predictions.jsonl.gz")):
        if (run_dir / source).is_file():
            _gzip(run_dir / source, tmp / target)
    if (run_dir / "paper_test" / run_files.METRICS_FILE).is_file():
        shutil.copy(run_dir / "paper_test" / run_files.METRICS_FILE, tmp / "paper_test_metrics.json")
    final = results / run.name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def commands(campaign: Campaign, run: Run, overrides: list[str], run_dir: Path) -> list[list[str]]:
    train = [sys.executable, "-m", "sentibert.commands.train", *overrides, f"hydra.run.dir={run_dir}", "resume=true"]
    if not campaign.paper_test or not all(o in run.group.overrides for o in campaign.paper_test):
        return [train]
    paper = [sys.executable, "-m", "sentibert.commands.evaluate", f"checkpoint={run_dir / run_files.BEST_MODEL}",
             "data=sst_paper",
             "split=test", f"hydra.run.dir={run_dir / 'paper_test'}"]
    return [train, paper]


@dataclass
class Job:
    run: Run
    steps: list[list[str]]
    run_dir: Path
    lr: float
    started: float  # time.time() at its start, less the wall time of the run's earlier runners
    rebuild: bool = False  # retraining a source whose checkpoint is lost: nothing is collected
    process: subprocess.Popen | None = None


def run_campaign(campaign: Campaign, runs_dir: Path, results: Path, jobs: int = 1, threads: int = 1,
                 only: str = "*", poll: float = 5.0) -> int:
    """Run what is left, as the one runner on `results` (its LOCK_FILE); -> the number of runs that failed."""
    with process_lock(results / LOCK_FILE, f"results folder {results}",
                      "another `sentibert campaign` runs on it; wait for it to end, or stop it"):
        return _run_left(campaign, runs_dir, results, jobs, threads, only, poll)


def _run_left(campaign: Campaign, runs_dir: Path, results: Path, jobs: int, threads: int, only: str,
              poll: float) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    active: list[Job] = []
    failed: set[str] = set()
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
        for run in campaign.runs:
            if len(active) + len(elsewhere) >= jobs:
                break
            rebuild = run.name in lost
            if (run.name in busy or run.name in elsewhere or run.name in failed
                    or not rebuild and (not matches(run.name, only) or read_results(results, run.name))):
                continue
            overrides = resolve(campaign, run, results, runs_dir)
            if overrides is None:
                continue
            run_dir = runs_dir / run.name
            run_dir.mkdir(parents=True, exist_ok=True)
            lr = float(next(o for o in overrides if o.startswith("trainer.lr=")).split("=", 1)[1])
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
            if code != 0:
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
                    final = collect(campaign, job.run, job.run_dir, results, job.lr, time.time() - job.started)
                    log.info("%s done: %s", job.run.name, final)


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
def estimate_minutes(campaign: Campaign, run: Run) -> float | None:
    """Rough one-thread minutes: epochs x the encoder's SST epoch x the dataset's cost relative to SST."""
    from hydra import compose, initialize_config_dir

    from sentibert.config import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[*campaign.overrides, *run.group.overrides])
    per_epoch = campaign.minutes_per_sst_epoch.get(run.group.encoder)
    cost = campaign.epoch_cost.get(cfg.data.dataset)
    if per_epoch is None or cost is None:
        return None
    return cfg.trainer.max_epochs * per_epoch * cost * (campaign.pretraining_cost if cfg.model.mlm else 1.0)


def dry_run(campaign: Campaign, results: Path, runs_dir: Path, jobs: int, only: str = "*") -> str:
    lines, total, unknown = [], 0.0, 0
    lost = lost_checkpoints(campaign, results, runs_dir, only)
    for run in campaign.runs:
        if run not in lost and (not matches(run.name, only) or read_results(results, run.name) is not None):
            continue
        minutes = estimate_minutes(campaign, run)
        ready = resolve(campaign, run, results, runs_dir) is not None
        started = (runs_dir / run.name / run_files.CHECKPOINTS / "latest").is_file()
        state = "rebuilds" if run in lost else "resumes" if started else "ready" if ready else "waits"
        lines.append(f"{run.name:<58} {state:<8} {'?' if minutes is None else f'{minutes:6.0f} min'}")
        total += minutes or 0.0
        unknown += minutes is None
    done = sum(read_results(results, run.name) is not None for run in campaign.runs)
    rebuilds = f" (and {len(lost)} lost checkpoints to rebuild)" if lost else ""
    lines.append(f"{done} of {len(campaign.runs)} runs have results; {len(lines) - len(lost)} left{rebuilds}, "
                 f"about {total / 60:.1f} core-hours ({total / 60 / jobs:.1f} h with --jobs {jobs})"
                 + (f"; {unknown} without an estimate" if unknown else ""))
    return "\n".join(lines)
