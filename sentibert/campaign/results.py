"""A campaign's results folder read into table rows, and the paired comparisons between rows (the tables:
sentibert.campaign.tables).

A row is a campaign group (task, model, encoder, variant). Its runs: for a group with an lr grid, the grid run that
dev picked (`sentibert.campaign.spec.picked_lr`: the best `best_dev`, ties to the lr listed first) and the group's
other seeds; otherwise every seed. A row shows the runs that have results (n seeds), so the tables can be regenerated
at any point of the campaign. While a grid is unfinished, its row and its lr_from rows are provisional
(`Row.provisional`, marked in every table): they take the best lr so far among the finished grid runs
(`spec.best_lr_so_far`) and their runs made at that lr; nothing is stale on it, and the runner starts nothing at it.
A stale run (`spec.stale_lr`: made at another lr than its grid picks now) is left out of its row, which says so, as it
is of the runner's done runs. A damaged input (a metrics.json value of the wrong kind, spec.METRICS_KINDS) is a
ResultsError naming the file and the key; a paired comparison whose runs lack test predictions stays in its table,
naming those runs.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from sentibert.campaign.spec import (PAPER_TEST_METRICS, Campaign, Group, GroupConfig, PlannedRun, ResultsError,
                                     best_lr_so_far, compose_groups, grid_runs, lr_name, read_json, read_results,
                                     recorded_lr, stale_lr, trainer_record, wanted)
from sentibert.config import TrainerConfig
from sentibert.evaluation.report import FinishedRun, load_run
from sentibert.evaluation.significance import Difference, SentenceScores, paired_bootstrap, paired_bootstrap_roots, \
    root_predictions, sentence_scores
from sentibert.runs import CONFIG_FILE, METRICS_FILE, find_predictions

PAPER_PREFIX = "paper_subset/"  # a metric on the paper's test subset (paper_test_metrics.json)
PAPER_KEYS = {"task", "model", "variant", "metric", "value", "source"}
# Tasks in table order: (title, headline metrics). A metric names a test-metrics key; a bucket dict counts by its acc.
TASKS = {
    "sst_phrase": ("SST-phrase", ("phrase_acc", "sst5_root_acc", "contrast")),
    "sst5": ("SST-5", ("sst5_root_acc",)),
    "sst3": ("SST-3", ("sst3_root_acc",)),
    "sst2_glue": ("SST-2 (the authors' 866-sentence GLUE dev, not GLUE's 872; our test)", ("accuracy",)),
    "emoint_joy": ("EmoInt joy", ("pearson",)),
    "emoint_anger": ("EmoInt anger", ("pearson",)),
    "emoint_sad": ("EmoInt sad", ("pearson",)),
    "emoint_fear": ("EmoInt fear", ("pearson",)),
}
SST_TASKS, EMOINT_TASKS = ("sst_phrase", "sst5", "sst3"), ("emoint_joy", "emoint_anger", "emoint_sad", "emoint_fear")
TRANSFER_TASKS = ("sst2_glue", *EMOINT_TASKS)
DASH = "–"
# The paper's models, by their paper.yaml keys (model, variant), and their names there. Our rows reproduce them by
# model whatever their precision: SentiBERT is a pre-trained SentiBERT (init_from), BERT* and BERT the baselines.
SENTIBERT = ("sentibert", "pre-trained")  # the paper's SentiBERT: pre-trained first (init_from)
PAPER_MODELS = {SENTIBERT: "SentiBERT", ("mean_pool", ""): "BERT*", ("cls", ""): "BERT"}
# The paper's claims of SentiBERT over a baseline, per task: BERT ([CLS]) on the transfer tasks, BERT* (mean
# pooling) on SST-3 (its Table 1)
BASELINES = {"sst3": ("mean_pool", ""), **{task: ("cls", "") for task in TRANSFER_TASKS}}
ROOT_SCORES = {"sst3_root_acc": "accuracy"}  # a task's root metric -> its significance.ROOT_METRICS key, if named apart


# ---- inputs ---------------------------------------------------------------------------------------------------
def load_paper(path: str | Path) -> dict[tuple[str, str, str, str], float]:
    """paper.yaml -> {(task, model, variant, metric): value in %}."""
    path = Path(path)
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ResultsError(f"{path}: {err}") from None
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: expected a list of {{task, model, variant, metric, value}} entries")
    out: dict[tuple[str, str, str, str], float] = {}
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i + 1}"
        if not isinstance(entry, dict) or not {"task", "model", "variant", "metric", "value"} <= set(entry):
            raise ResultsError(f"{where}: needs task, model, variant, metric and value")
        if unknown := set(entry) - PAPER_KEYS:
            raise ResultsError(f"{where}: unknown keys {sorted(unknown)}")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"{where}: value {value!r} is not a number")
        key = tuple(str(entry[k] if entry[k] is not None else "") for k in ("task", "model", "variant", "metric"))
        if key in out:
            raise ResultsError(f"{where}: {'/'.join(key)} is listed twice")
        out[key] = float(value)
    return out


@dataclass
class RunResult:
    run: PlannedRun
    path: Path
    metrics: dict  # metrics.json
    paper_test: dict | None  # paper_test_metrics.json, if the run has one
    precision: str = TrainerConfig.precision  # trainer.precision in its config.yaml: "32" or "bf16"

    @property
    def info(self) -> dict:
        return self.metrics.get("campaign") or {}

    def block(self, metric: str) -> tuple[dict | None, str]:
        """The metrics dict `metric` is read from, and its key there."""
        if metric.startswith(PAPER_PREFIX):
            return self.paper_test, metric[len(PAPER_PREFIX):]
        return self.metrics.get("test"), metric

    def value(self, metric: str, bucket: str | None = None) -> float | None:
        """A test metric as a fraction (a bucket's acc for a dict); None where the run has none."""
        block, key = self.block(metric)
        value = (block or {}).get(key)
        if bucket is not None:
            value = (value or {}).get(bucket) if isinstance(value, dict) else None
        if isinstance(value, dict):
            value = value.get("acc")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def predictions(self) -> Path | None:
        return find_predictions(self.path)

    @cached_property
    def finished(self) -> FinishedRun:
        """The run as `sentibert report` reads it: its test predictions with its own label view; read once (the
        comparisons, the transfer lines and the plots share it)."""
        return load_run(self.path)


def load_result(results: Path, run: PlannedRun) -> RunResult | None:
    """A run's results (checked: spec.read_results); None until it has some."""
    metrics = read_results(results, run.name)
    if metrics is None:
        return None
    folder = results / run.name
    return RunResult(run, folder, metrics, read_json(folder / PAPER_TEST_METRICS), _precision(folder))


def _precision(folder: Path) -> str:
    """trainer.precision in a run's config.yaml; the default where the key is missing (it predates the key)."""
    if not (folder / CONFIG_FILE).is_file():
        raise ResultsError(f"{folder / CONFIG_FILE}: cannot read the run's precision (trainer.precision): no such file")
    return str(trainer_record(folder).get("precision", TrainerConfig.precision))


@dataclass(frozen=True)
class Stat:
    """Over seeds, in %: n values, their mean and sample sd (None for fewer than 2)."""
    n: int
    mean: float | None
    sd: float | None

    @classmethod
    def of(cls, values: list[float | None]) -> Stat:
        xs = [100 * v for v in values if v is not None]
        return cls(len(xs), statistics.fmean(xs) if xs else None, statistics.stdev(xs) if len(xs) > 1 else None)


@dataclass
class Row:
    group: Group
    runs: list[RunResult]  # the row's runs with results, first seed first
    missing: list[str]  # what it still waits for: run names, or the unfinished lr grid
    lr: float | None  # the lr its runs use (picked on dev, another group's pick, or fixed); None while pending
    lr_text: str  # that lr, and where it comes from
    metrics: tuple[str, ...]  # headline metrics (CSV lines)
    stage: bool = False  # pre-training: no test metrics
    paper: dict[str, float] = field(default_factory=dict)  # metric (no prefix) -> the paper's number
    stale: list[str] = field(default_factory=list)  # its runs left out: made at another lr than the one picked now
    # (finished, planned) runs of the unfinished lr grid whose best so far gives its lr: a pick that may move
    provisional: tuple[int, int] | None = None
    config: GroupConfig | None = None  # what its composed config says (spec.compose_groups; set by `build`)
    grid_end: bool = False  # its lr (its own grid's, or lr_from's) is a final pick at an end of the grid

    def stat(self, metric: str, bucket: str | None = None) -> Stat:
        return Stat.of([run.value(metric, bucket) for run in self.runs])

    @property
    def seeds(self) -> str:
        return f"{len(self.runs)}/{len(self.group.seeds)}" + (f", {len(self.stale)} stale" if self.stale else "") \
            + self.grid_note

    @property
    def grid_note(self) -> str:
        """`, grid k/n` on a provisional row (its lr: the best so far of k finished grid runs of n)."""
        return f", grid {self.provisional[0]}/{self.provisional[1]}" if self.provisional else ""

    @property
    def precision(self) -> str | None:
        """The precision its runs trained in (None until one has results)."""
        return ", ".join(dict.fromkeys(run.precision for run in self.runs)) or None

    def commits(self) -> str:
        seen: dict[str, bool] = {}
        for run in self.runs:
            commit = (run.info.get("commit") or "unknown")[:7]
            seen[commit] = seen.get(commit, False) or bool(run.info.get("dirty"))
        return ", ".join(f"{c}{' (dirty)' if dirty else ''}" for c, dirty in seen.items()) or DASH


@dataclass
class Comparison:
    row: Row
    reference: Row
    differences: dict[str, Difference]  # metric -> row minus reference, paired over the test sentences
    missing: str = ""  # why there are none: the runs without test predictions


@dataclass
class Tables:
    campaign: Campaign
    results: Path
    rows: list[Row]  # table order: per task, per encoder (in the file's order), the file's order
    # per grid: its group, (lr, result) per grid run, the lr picked or best so far, and Row.provisional
    grids: list[tuple[Group, list[tuple[float, RunResult | None]], float | None, tuple[int, int] | None]]
    orphans: list[str]  # result folders that no run of the campaign names (or only an lr_extend one no grid calls for)
    paper: dict[tuple[str, str, str, str], float]  # paper.yaml
    comparisons: list[Comparison]
    baselines: list[BaselineLine]  # SentiBERT minus its baseline per BASELINES task and encoder


@dataclass
class BaselineLine:
    task: str
    encoder: str
    sentibert: Row | None
    baseline: Row | None  # BASELINES[task]'s row
    difference: Difference | None  # SentiBERT minus baseline, paired over the test sentences and pooled over seeds
    missing: str  # why there is no difference yet: "pending", precisions differ, ...


def _task_rank(task: str) -> tuple:
    order = list(TASKS)
    return (order.index(task), "") if task in TASKS else (len(order), task)


def build(campaign: Campaign, results: Path, paper: dict[tuple[str, str, str, str], float]) -> Tables:
    """Every group's row and every lr grid, from what `results` holds now."""
    results = Path(results)
    loaded = {run.name: load_result(results, run) for run in campaign.runs}  # reads (and checks) every file once
    rows, grids = [], []
    configs = compose_groups(campaign)
    for g in campaign.groups.values():
        runs = [run for run in campaign.runs if run.group is g]
        source = g.group if g.lr_grid else g.lr_from  # the group whose grid gives the lr, if any
        lr, provisional, grid = _grid_pick(campaign, source, results, loaded) if source else (g.lr, None, [])
        missing = []
        grid_end = bool(grid) and at_grid_end([run.lr for run in grid], lr, provisional)
        notes = [*(["provisional"] if provisional else []), *(["at its end"] if grid_end else [])]
        if g.lr_grid:
            grids.append((g, [(run.lr, loaded[run.name]) for run in grid], lr, provisional))
            members = [] if lr is None else [next(r for r in grid if r.lr == lr), *(r for r in runs if not r.grid)]
            if (done := sum(loaded[run.name] is not None for run in grid)) < len(grid):
                missing.append(f"lr grid ({done} of {len(grid)} runs)")
            lr_text = "pending" if lr is None else f"{lr_name(lr)} ({', '.join(['grid', *notes])})"
        else:
            members = runs
            lr_text = "pending" if lr is None else lr_name(lr)
            lr_text += f" ({', '.join([f'from {g.lr_from}', *notes])})" if g.lr_from else " (fixed)"
        stale = {run.name: lrs for run in members if (lrs := stale_lr(campaign, run, results))}
        # On a provisional pick nothing is stale, but a run made at another lr is not the row's either.
        elsewhere = {run.name: made for run in members if provisional and run.lr_source and loaded[run.name]
                     and (made := recorded_lr(results / run.name)) not in (None, lr)}
        left_out = {name: f"stale: trained at {lr_name(lrs[0])}" for name, lrs in stale.items()} | {
            name: f"trained at {lr_name(made)}, not the provisional pick" for name, made in elsewhere.items()}
        have = [loaded[run.name] for run in members if loaded[run.name] is not None and run.name not in left_out]
        missing += [f"{run.name} ({left_out[run.name]})" if run.name in left_out else run.name
                    for run in members if loaded[run.name] is None or run.name in left_out]
        stage = any("test" not in run.metrics for run in have) or g.task.endswith("_pretrain")
        metrics: tuple[str, ...] = ()
        if not stage:
            metrics = TASKS[g.task][1] if g.task in TASKS \
                else tuple(dict.fromkeys(r.metrics["metric"] for r in have if r.metrics.get("metric")))
            if campaign.paper_tested(g):
                metrics += tuple(PAPER_PREFIX + m for m in metrics)
        row_paper = {m: v for (task, model, variant, m), v in paper.items()
                     if (task, (model, variant)) == (g.task, paper_model(g))}
        rows.append(Row(g, have, missing, lr, lr_text, metrics, stage, row_paper, list(stale), provisional,
                        configs[g.group], grid_end))
    index = {g: i for i, g in enumerate(campaign.groups)}
    encoders = list(dict.fromkeys(g.encoder for g in campaign.groups.values()))
    rows.sort(key=lambda row: (_task_rank(row.group.task), encoders.index(row.group.encoder), index[row.group.group]))
    known = {run.name for run in campaign.runs if wanted(campaign, run, results)}  # an lr_extend run no grid calls for
    orphans = sorted(p.name for p in results.iterdir() if (p / METRICS_FILE).is_file() and p.name not in known
                     and not p.name.startswith(".")) if results.is_dir() else []  # .RUN.tmp: being collected
    return Tables(campaign, results, rows, grids, orphans, paper, compare(rows), baseline_lines(rows))


def _grid_pick(campaign: Campaign, group: str, results: Path, loaded: dict[str, RunResult | None]
               ) -> tuple[float | None, tuple[int, int] | None, list[PlannedRun]]:
    """The lr `group`'s grid picks (spec.best_lr_so_far); while the grid is unfinished (a provisional pick), its
    (finished, planned) runs, else None; and the grid's runs."""
    grid = grid_runs(campaign, group, results)
    lr, done = best_lr_so_far(campaign, group, results), sum(loaded[run.name] is not None for run in grid)
    return lr, None if lr is None or done == len(grid) else (done, len(grid)), grid


def at_grid_end(lrs: list[float], picked: float | None, provisional: tuple[int, int] | None) -> bool:
    """A grid's final pick at its smallest or largest lr (after any lr_extend growth): not shown to be an optimum."""
    return picked is not None and not provisional and picked in (min(lrs), max(lrs))


def paper_model(g: Group) -> tuple[str, str] | None:
    """The paper's model (a PAPER_MODELS key) that a group reproduces, if any."""
    if g.model == "sentibert" and not g.init_from:  # without pre-training: not the paper's SentiBERT
        return None
    return next((key for key in PAPER_MODELS if key[0] == g.model), None)


def _sets_precision(row: Row) -> bool:
    return row.config.precision != TrainerConfig.precision


def precision_twin(row: Row, rows: list[Row]) -> Row | None:
    """A group that repeats another at its lr (lr_from it, or the same fixed lr) with only trainer.precision changed
    in its composed config (the same task, model, encoder and start) is a precision check: the row of that other
    group. A group with an lr grid of its own is not: it is tuned in its precision."""
    def rest(r: Row) -> tuple:
        return r.group.task, r.group.model, r.group.encoder, r.group.init_from, r.config.other

    def same_lr(r: Row) -> bool:
        return row.group.lr_from == r.group.group or row.group.lr is not None and row.group.lr == r.group.lr

    if not _sets_precision(row):
        return None
    return next((r for r in rows if not _sets_precision(r) and rest(r) == rest(row) and same_lr(r)), None)


def _reference(row: Row, rows: list[Row], any_precision: bool = False) -> Row | None:
    """Whom an SST-phrase row is compared with: a precision check with the group it repeats (`precision_twin`); an
    ablation or LoRA with SentiBERT without pre-training on its encoder (the same initialisation), where there is one;
    any other row but pre-trained SentiBERT itself with pre-trained SentiBERT on its encoder. Among candidates, one
    in the row's precision (its composed config) comes first; the two are compared only where their runs trained in
    one precision (any_precision: whatever it is)."""
    g = row.group
    if twin := precision_twin(row, rows):
        return twin
    if paper_model(g) == SENTIBERT:
        return None
    same = sorted((r for r in rows if r is not row and (r.group.task, r.group.encoder) == (g.task, g.encoder)),
                  key=lambda r: r.config.precision != row.config.precision)  # stable: else the file's order
    references = ablation_references(rows)
    variant = is_ablation(row) and g.group not in references  # an ablation or LoRA
    candidates = [r for r in same if r.group.group in references] if variant else []
    reference = next(iter(candidates or [r for r in same if paper_model(r.group) == SENTIBERT]), None)
    # a reference with no results yet has no precision to differ in: the pair is pending
    return reference if any_precision or reference is None or reference.precision in (None, row.precision) else None


def precision_mismatches(rows: list[Row]) -> list[tuple[Row, Row]]:
    """(row, reference) of the SST-phrase rows left uncompared because the two trained in different precisions."""
    pairs = [(row, _reference(row, rows, any_precision=True)) for row in rows
             if row.group.task == "sst_phrase" and not row.stage and row.runs and _reference(row, rows) is None]
    return [(row, reference) for row, reference in pairs if reference is not None and reference.runs]


def baseline_lines(rows: list[Row]) -> list[BaselineLine]:
    """Per encoder and BASELINES task: the paper's SentiBERT and its baseline's rows (the first group of each), and
    SentiBERT minus the baseline once both have results in one precision."""
    lines = []
    for encoder in dict.fromkeys(row.group.encoder for row in rows if row.group.task in BASELINES):
        for task, baseline in BASELINES.items():
            pair = [next((r for r in rows if (r.group.task, r.group.encoder) == (task, encoder)
                          and paper_model(r.group) == key), None) for key in (SENTIBERT, baseline)]
            if any(pair):
                lines.append(BaselineLine(task, encoder, *pair, *_baseline_difference(task, *pair)))
    return lines


def _baseline_difference(task: str, a: Row | None, b: Row | None) -> tuple[Difference | None, str]:
    if a is None or b is None:
        return None, "not in the campaign"
    if not a.runs or not b.runs:
        return None, "pending"
    if a.precision != b.precision:
        return None, f"precisions differ: {a.precision} and {b.precision}"
    if unpredicted := [run.path.name for row in (a, b) for run in row.runs if run.predictions() is None]:
        return None, f"no test predictions in {', '.join(unpredicted)}"
    try:
        scores = [root_predictions([run.finished.predictions for run in row.runs]) for row in (a, b)]
        metric = TASKS[task][1][0]
        difference = paired_bootstrap_roots(*scores, ROOT_SCORES.get(metric, metric))
    except ValueError as err:
        raise ResultsError(f"{a.group.group} against {b.group.group}: {err}") from None
    return (None, "r undefined: a seed predicts one class") if math.isnan(difference.delta) else (difference, "")


def compare(rows: list[Row]) -> list[Comparison]:
    """Each SST-phrase row with results against its reference, over their runs' test predictions (where some are
    missing, a Comparison that names the runs: never left out silently)."""
    scores: dict[str, SentenceScores] = {}

    def scored(row: Row) -> SentenceScores:
        if row.group.group not in scores:
            try:
                scores[row.group.group] = sentence_scores([run.finished.predictions for run in row.runs])
            except ValueError as err:
                raise ResultsError(f"{', '.join(str(run.path) for run in row.runs)}: {err}") from None
        return scores[row.group.group]

    out = []
    for row in rows:
        reference = _reference(row, rows) if row.group.task == "sst_phrase" and not row.stage else None
        if reference is not None and row.runs and not reference.runs:
            out.append(Comparison(row, reference, {}, "pending: the compared model has no results yet"))
        elif reference is not None and row.runs:
            if missing := [run.path.name for run in (*row.runs, *reference.runs) if run.predictions() is None]:
                out.append(Comparison(row, reference, {}, f"no test predictions in {', '.join(missing)}"))
                continue
            try:
                out.append(Comparison(row, reference, paired_bootstrap(scored(row), scored(reference))))
            except ValueError as err:
                raise ResultsError(f"{row.group.group} against {reference.group.group}: {err}") from None
    return out


def paper_value(row: Row, metric: str) -> float | None:
    return row.paper.get(metric.removeprefix(PAPER_PREFIX))


def is_ablation(row: Row) -> bool:
    """SentiBERT without pre-training (no init_from) on SST: the full model and its ablated variants."""
    g = row.group
    return g.task in SST_TASKS and g.model == "sentibert" and g.init_from is None and not row.stage


def ablation_references(rows: list[Row]) -> set[str]:
    """The groups of SentiBERT without pre-training in full (no switch of its composed config changed: not an
    ablation, not LoRA; not a precision check): what the ablations and LoRA compare with, in the main table too."""
    return {row.group.group for row in rows
            if is_ablation(row) and not row.config.changes and precision_twin(row, rows) is None}
