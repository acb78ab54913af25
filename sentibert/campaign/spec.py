"""The campaign file (experiments/campaign.yaml) and what a results folder says of its runs.

The file lists groups in priority order; each group is one table row (task, model, encoder, variant) and expands
into runs, each a named set of `sentibert train` overrides:
- `lr_grid`: the first seed at every lr; the selected epoch's dev metric (`best_dev`) picks the lr; the other seeds
  then run at it, and the picked grid run counts as the first seed. Ties go to the lr listed first.
- `lr_extend`: lrs beyond the grid's ends, run only while dev picks an end: once every grid run has results, a pick
  at the grid's largest (smallest) lr adds the nearest `lr_extend` value above (below) it to the grid, and so on
  (`grid_runs`). The other seeds wait for the final pick.
- `lr_from: GROUP`: the lr that GROUP's grid picked. `lr`: a fixed one.
- `init_from: GROUP`: GROUP's first run's best_model/ (e.g. the pre-training checkpoint).
- `paper_test` (the file's): groups with all these overrides are also evaluated on the paper's test subset.
Every mistake in the file is a CampaignError naming the group and the key, before anything runs: `load_campaign`
checks the keys and their values (a group's name names folders: letters, digits, _, - and .), `compose_groups`
composes each group's config (once: what the runner and the tables know of a group's precision, epochs and
architecture switches, LoRA included, comes from there).

A run's results (`<results>/<run>/`, runner.collect): metrics.json and config.yaml (sentibert.runs' names),
test_predictions.jsonl.gz, and for paper-tested runs PAPER_TEST_METRICS and PAPER_TEST_PREDICTIONS. A damaged
metrics.json (a value of the wrong kind, METRICS_KINDS) is a ResultsError naming the file and the key, for the runner
and the tables alike.

A grid may gain values in place (its edge won): the pick may then move. A run whose lr comes from a pick and whose
results were made at another lr than the one picked now is stale (`stale_lr`): the runner trains it again and the
tables leave it out. While the grid's new values are pending, results stand as they are; the tables show the best lr
so far (`best_lr_so_far`), marked provisional, and the runner starts nothing at it.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sentibert import runs as run_files

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a group's name names folders and goes into Hydra overrides
PAPER_TEST_DIR = "paper_test"  # in a run dir: `sentibert evaluate` of its best model on the paper's test subset
PAPER_TEST_METRICS = "paper_test_metrics.json"  # in its results: that evaluation's metrics.json
PAPER_TEST_PREDICTIONS = "paper_test_predictions.jsonl.gz"  # and its test predictions, gzipped


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
    "lr_extend": (_list(lambda x: _number(x) and x > 0, empty=False), "a non-empty list of numbers > 0"),
    "lr_from": (_text, "a group's name"), "init_from": (_text, "a group's name"),
}
REQUIRED_KEYS = ("group", "task", "model", "encoder", "variant")
OPTIONAL_KEYS = ("lr", "lr_grid", "lr_extend", "lr_from", "init_from")
NUMBERS = (lambda x: isinstance(x, dict) and all(map(_number, x.values())), "a mapping of numbers")
PER_PRECISION = (lambda x: isinstance(x, dict) and all(NUMBERS[0](v) for v in x.values()),
                 "a mapping of encoders to {trainer.precision: minutes}, e.g. {minilm: {32: 5.5, bf16: 2.9}}")
FILE_KEYS = {"overrides": GROUP_KEYS["overrides"], "paper_test": GROUP_KEYS["overrides"],
             "minutes_per_sst_epoch": PER_PRECISION, "epoch_cost": NUMBERS, "pretraining_cost": (_number, "a number"),
             "groups": (lambda x: isinstance(x, list), "a list")}


class CampaignError(ValueError):
    pass


class ResultsError(ValueError):
    """A run's results that cannot be read; the message names the file (and the key)."""


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
    lr_extend: tuple[float, ...] = ()  # beyond the grid's ends: run while dev picks an end (grid_runs)
    lr_from: str | None = None
    init_from: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    name: str
    group: Group
    seed: int
    lr: float | None  # None: the lr of `lr_source`, once picked
    lr_source: str | None = None  # a group whose grid picks this run's lr

    @property
    def grid(self) -> bool:
        """One of its group's lr grid (the first seed at each lr), an extension included."""
        return self.lr is not None and bool(self.group.lr_grid)

    @property
    def extension(self) -> bool:
        """A grid run at an `lr_extend` lr: run only once dev picks the grid's end next to it (grid_runs)."""
        return self.grid and self.lr in self.group.lr_extend


@dataclass
class Campaign:
    path: Path
    groups: dict[str, Group]
    runs: list[PlannedRun]
    overrides: tuple[str, ...] = ()
    paper_test: tuple[str, ...] = ()
    minutes_per_sst_epoch: dict[str, dict[str, float]] = field(default_factory=dict)  # encoder -> precision -> min
    epoch_cost: dict[str, float] = field(default_factory=dict)
    pretraining_cost: float = 1.0
    configs: dict[str, GroupConfig] = field(default_factory=dict, repr=False)  # compose_groups' cache

    def paper_tested(self, group: Group) -> bool:
        """Whether this group's runs are also evaluated on the paper's test subset: it has every `paper_test`
        override."""
        return bool(self.paper_test) and all(o in group.overrides for o in self.paper_test)


def lr_name(lr: float) -> str:
    """An lr as run names and tables spell it: the shortest scientific form that reads back as exactly this lr
    (2e-05, 1e-04; 1.5e-05, never rounded to another lr's name)."""
    return next(text for digits in range(17) if float(text := f"{lr:.{digits}e}") == lr)


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
                         "seeds": tuple(entry.get("seeds", (1,))), "lr_grid": tuple(entry.get("lr_grid") or ()),
                         "lr_extend": tuple(entry.get("lr_extend") or ())})
        if sum(x is not None and x != () for x in (group.lr, group.lr_grid, group.lr_from)) != 1:
            raise CampaignError(f"{where}: give exactly one of lr, lr_grid, lr_from")
        if group.lr_extend and not group.lr_grid:
            raise CampaignError(f"{where}: lr_extend extends an lr_grid: give one")
        if inside := [lr for lr in group.lr_extend if min(group.lr_grid) <= lr <= max(group.lr_grid)]:
            raise CampaignError(f"{where}: lr_extend: {inside} not beyond the ends of lr_grid {list(group.lr_grid)}")
        names = [lr_name(lr) for lr in (*group.lr_grid, *group.lr_extend)]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise CampaignError(f"{where}: lr {', '.join(twice)} listed twice in lr_grid and lr_extend")
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
                    _minutes(spec.get("minutes_per_sst_epoch") or {}, str(path)), spec.get("epoch_cost", {}),
                    spec.get("pretraining_cost", 1.0))


def _minutes(per_encoder: dict, where: str) -> dict[str, dict[str, float]]:
    """minutes_per_sst_epoch with its precisions as trainer.precision spells them (YAML reads `32:` as a number)."""
    if not per_encoder:
        return {}
    from sentibert.precision import PRECISIONS  # imports torch: only for a file that gives estimates

    minutes = {encoder: {str(p): m for p, m in by_precision.items()} for encoder, by_precision in per_encoder.items()}
    for encoder, by_precision in minutes.items():
        if unknown := sorted(set(by_precision) - set(PRECISIONS)):
            raise CampaignError(f"{where}: minutes_per_sst_epoch: {encoder}: {', '.join(unknown)} is not a "
                                f"trainer.precision ({', '.join(PRECISIONS)})")
    return minutes


def _check_keys(spec: dict, keys: dict, where: str) -> None:
    """Unknown keys, and values of the wrong kind, are CampaignErrors naming `where` and the key."""
    if unknown := set(spec) - set(keys):
        raise CampaignError(f"{where}: unknown keys {sorted(unknown)}")
    for key, value in spec.items():
        check, wanted = keys[key]
        if not (value is None and key in OPTIONAL_KEYS) and not check(value):
            raise CampaignError(f"{where}: {key}: {value!r} is not {wanted}")


ARCHITECTURE = ("attend_tokens", "attend_children", "recursive", "root_only", "lora_rank")  # what variants change


@dataclass(frozen=True)
class GroupConfig:
    """What a group's composed `sentibert train` config says of its runs: the one home of these facts for the runner's
    estimates and the tables (never read from the override strings, which an experiment file can bypass)."""
    precision: str  # trainer.precision: "32" or "bf16"
    max_epochs: int
    dataset: str
    mlm: bool  # the pre-training stage
    changes: tuple[str, ...]  # SentiBERT's switches set away from their defaults (ARCHITECTURE): an ablation, LoRA
    other: str  # the config but trainer.precision, as JSON: what a precision check shares with its twin


def compose_groups(campaign: Campaign) -> dict[str, GroupConfig]:
    """Compose each group's `sentibert train` config once, as its runs will (the file's overrides, then the
    group's), and keep what it says (cached on the campaign). A config that does not exist or a misspelt key is a
    CampaignError naming the group, before anything runs."""
    if campaign.configs:
        return campaign.configs
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from sentibert.config import CONF_DIR, ConfigError, SentiBERTConfig, validate

    checks = [(f"{campaign.path}: overrides", None, campaign.overrides)] + [
        (f"{campaign.path}: groups[{i}] ({g.group}): overrides", g.group, (*campaign.overrides, *g.overrides))
        for i, g in enumerate(campaign.groups.values())]
    configs = {}
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for where, group, overrides in checks:
            try:
                cfg = compose("train", overrides=list(overrides))
                validate(cfg)
            except (HydraException, OmegaConfBaseException, ConfigError) as err:
                cause = f" ({str(err.__cause__).splitlines()[0]})" if err.__cause__ else ""
                raise CampaignError(f"{where}: {str(err).splitlines()[0]}{cause}") from None
            if group is not None:
                other = OmegaConf.to_container(cfg, enum_to_str=True)
                del other["trainer"]["precision"]
                changes = tuple(key for key in ARCHITECTURE
                                if key in cfg.model and cfg.model[key] != getattr(SentiBERTConfig, key))
                configs[group] = GroupConfig(str(cfg.trainer.precision), int(cfg.trainer.max_epochs),
                                             str(cfg.data.dataset), bool(cfg.model.mlm), changes,
                                             json.dumps(other, sort_keys=True))
    campaign.configs.update(configs)
    return campaign.configs


def expand(group: Group) -> list[PlannedRun]:
    """A group's runs: the grid (first seed), then the other seeds at the picked lr; or every seed at one lr."""
    first, *others = group.seeds
    if group.lr_grid:
        grid = [PlannedRun(f"{group.group}-lr{lr_name(lr)}-s{first}", group, first, lr)
                for lr in (*group.lr_grid, *group.lr_extend)]
        return grid + [PlannedRun(f"{group.group}-s{seed}", group, seed, None, group.group) for seed in others]
    if group.lr_from:
        return [PlannedRun(f"{group.group}-s{seed}", group, seed, None, group.lr_from) for seed in group.seeds]
    return [PlannedRun(f"{group.group}-s{seed}", group, seed, group.lr) for seed in group.seeds]


def matches(name: str, only: str) -> bool:
    """`only`: comma-separated globs; a run matching any of them is in."""
    return any(fnmatch.fnmatch(name, glob.strip()) for glob in only.split(","))


# ---- state, from the results folder -------------------------------------------------------------------------
# The keys of a run's metrics.json that the runner and the tables read (campaign.KEY: in its `campaign` block), and
# their kinds.
METRICS_KINDS = {"best_dev": ((int, float, type(None)), "a number or null"), "best_epoch": ((int,), "an integer"),
                 "metric": ((str,), "a metric's name"), "test": ((dict,), "a JSON object of test metrics"),
                 "campaign": ((dict,), "a JSON object (the campaign's record of the run)"),
                 "campaign.seconds": ((int, float), "a number"), "campaign.commit": ((str, type(None)), "a string"),
                 "campaign.init_from": ((dict,), "a JSON object"),
                 # what the wall time was measured on; absent from runs collected before the runner recorded it
                 "campaign.machine": ((str,), "a string"), "campaign.threads": ((int,), "an integer"),
                 "campaign.jobs": ((int,), "an integer")}


def read_json(path: Path) -> dict | None:
    """A JSON object; None where the file does not exist."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ResultsError(f"{path}: cannot read it as JSON ({err})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return data


def read_results(results: Path, run: str) -> dict | None:
    """A run's metrics.json in `results`, its values checked (METRICS_KINDS); None until the run has results."""
    path = results / run / run_files.METRICS_FILE
    metrics = read_json(path)
    if metrics is None:
        return None
    if "best_dev" not in metrics:
        raise ResultsError(f"{path}: no best_dev; not written by `sentibert train`")
    for key, (kinds, wanted) in METRICS_KINDS.items():
        block, _, name = key.rpartition(".")
        values = metrics.get(block) if block else metrics
        if isinstance(values, dict) and name in values and type(values[name]) not in kinds:  # not bool for a number
            raise ResultsError(f"{path}: {key} is {json.dumps(values[name])}, not {wanted}; the file is damaged: "
                               "restore it, or collect the run again")
    return metrics


def trainer_record(folder: Path) -> dict:
    """The `trainer` block of the config.yaml that `sentibert train` writes in a run dir (and collect copies into the
    run's results); {} where there is none."""
    path = folder / run_files.CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        trainer = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("trainer") or {}
    except (OSError, yaml.YAMLError, AttributeError) as err:  # AttributeError: not a mapping
        raise ResultsError(f"{path}: cannot read its trainer block ({err})") from None
    if not isinstance(trainer, dict):
        raise ResultsError(f"{path}: trainer is {trainer!r}, not a mapping")
    return trainer


def recorded_lr(folder: Path) -> float | None:
    """The lr a run dir or a run's results was trained at (trainer.lr in its config.yaml); None where not recorded."""
    lr = trainer_record(folder).get("lr")
    if lr is not None and not _number(lr):
        raise ResultsError(f"{folder / run_files.CONFIG_FILE}: trainer.lr is {lr!r}, not a number")
    return lr


def grid_runs(campaign: Campaign, group: str, results: Path) -> list[PlannedRun]:
    """The runs of `group`'s grid, as far as it reaches now: lr_grid's, then each `lr_extend` value that a pick at
    the grid's end called for (once every grid run before it had results), in the order they joined."""
    g = campaign.groups[group]
    runs = {run.lr: run for run in campaign.runs if run.group is g and run.grid}
    grid, spare = list(g.lr_grid), sorted(g.lr_extend)
    while spare and (best := _best_lr(results, [runs[lr] for lr in grid])) is not None:
        above = [lr for lr in spare if lr > best] if best == max(grid) else []
        below = [lr for lr in reversed(spare) if lr < best] if best == min(grid) else []
        if not (above or below):
            break
        grid.append((above or below)[0])  # a one-lr grid tries above first
        spare.remove(grid[-1])
    return [runs[lr] for lr in grid]


def _best_lr(results: Path, grid: list[PlannedRun], so_far: bool = False) -> float | None:
    """The lr of the best dev score among the grid's runs with results (ties: the first listed); None until every
    run has results (so_far: until one has)."""
    scored = [(i, metrics) for i, run in enumerate(grid) if (metrics := read_results(results, run.name)) is not None]
    if not scored or len(scored) < len(grid) and not so_far:
        return None
    best, _ = max(scored, key=lambda item: (_dev(item[1]), -item[0]))
    return grid[best].lr


def _dev(metrics: dict) -> float:
    return metrics["best_dev"] if metrics["best_dev"] is not None else float("-inf")


def wanted(campaign: Campaign, run: PlannedRun, results: Path) -> bool:
    """Every run but an `lr_extend` one that its grid has not (yet) called for."""
    return not run.extension or run in grid_runs(campaign, run.group.group, results)


def may_join(campaign: Campaign, run: PlannedRun, results: Path) -> bool:
    """An `lr_extend` run not called for yet, of a grid whose pick is not final: dev may still call for it."""
    grid = grid_runs(campaign, run.group.group, results)
    return run.extension and run not in grid and _best_lr(results, grid) is None


def picked_lr(campaign: Campaign, group: str, results: Path) -> float | None:
    """The lr whose grid run has the best dev score; None until every grid run of `group` has results, extensions
    included (the runner starts the group's other seeds, and its lr_from groups, only then)."""
    return _best_lr(results, grid_runs(campaign, group, results))


def best_lr_so_far(campaign: Campaign, group: str, results: Path) -> float | None:
    """The lr whose grid run has the best dev score among those with results (ties: the lr listed first); None
    before the first. Once every grid run has results it is the pick (`picked_lr`); before, a provisional pick that
    may move: the tables show it, marked, and nothing is stale on it."""
    return _best_lr(results, grid_runs(campaign, group, results), so_far=True)


def first_run(campaign: Campaign, group: str, results: Path) -> PlannedRun | None:
    """The group's first-seed run (its picked grid run, if it has a grid); None until known."""
    g = campaign.groups[group]
    if not g.lr_grid:
        return next(run for run in campaign.runs if run.group is g)
    lr = picked_lr(campaign, group, results)
    return None if lr is None else next(run for run in campaign.runs if run.group is g and run.lr == lr)


def stale_lr(campaign: Campaign, run: PlannedRun, results: Path) -> tuple[float, float] | None:
    """(the lr its results were made at, the lr picked now) for a run whose lr comes from a pick (a grid group's other
    seeds, an lr_from group's runs) and whose results were made at another lr: its group's grid gained a value that
    dev prefers. None for every other run, and while the pick is pending: then its results stand."""
    if run.lr_source is None or (picked := picked_lr(campaign, run.lr_source, results)) is None \
            or read_results(results, run.name) is None:
        return None
    made = recorded_lr(results / run.name)  # None: nothing records it; the results stand
    return None if made is None or made == picked else (made, picked)
