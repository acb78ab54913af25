"""The result tables, regenerated from the campaign's committed run results (`sentibert results [RESULTS_DIR]`).

Reads, and never changes:
  RESULTS_DIR/<run>/metrics.json        train's metrics plus the `campaign` block (sentibert.campaign.runner.collect)
  RESULTS_DIR/<run>/paper_test_metrics.json   the same model on the paper's 2184-sentence test subset (SST-phrase)
  RESULTS_DIR/<run>/test_predictions.jsonl.gz (for the paired comparisons and the plots)
  RESULTS_DIR/<run>/config.yaml         its resolved config: the precision it trained in (trainer.precision)
  RESULTS_DIR/../campaign.yaml          which runs make which row (--campaign)
  RESULTS_DIR/../paper.yaml             the paper's numbers (--paper)
Writes RESULTS_DIR/../RESULTS.md (--out), RESULTS_DIR/summary.csv (--csv), the short tables of the README
(RESULTS_DIR/../../README.md, --readme: between its README_BEGIN and README_END lines; the rest of it is kept) and,
with `sentibert.evaluation.report`, the plots under RESULTS_DIR/plots/ (drawn afresh each time; --no-plots keeps
what is there).

A row is a campaign group, read by sentibert.campaign.results. The output depends on nothing but these files: the
same inputs give the same bytes.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import shutil
import statistics
from pathlib import Path

from sentibert.campaign.results import (BASELINES, DASH, EMOINT_TASKS, PAPER_MODELS, PAPER_PREFIX, SENTIBERT,
                                        TASKS, TRANSFER_TASKS, ResultsError, Row, RunResult, Stat, Tables,
                                        ablation_references, build, is_ablation, load_paper, paper_model,
                                        paper_value, precision_mismatches, precision_twin)
from sentibert.campaign.spec import CampaignError, load_campaign, lr_name
from sentibert.evaluation.metrics import ANALYSES as METRIC_ANALYSES
from sentibert.evaluation.metrics import METRIC_LABELS
from sentibert.evaluation.significance import CONFIDENCE, METRICS as PAIRED_METRICS, SAMPLES, SEED, Difference
from sentibert.io import atomic_write_text

# provisional: k/n where the row's lr is the best so far of k finished runs of its lr grid (of n), else empty
# group: the campaign group (the row's key); lr: its runs' lr (the pick, or the best so far)
CSV_COLUMNS = ["group", "task", "model", "encoder", "variant", "precision", "lr", "n_seeds", "provisional", "mean",
               "sd", "paper", "metric"]
EMOINT_MEAN = "emoint_mean"  # paper.yaml's task for the mean over the four emotions
LABELS = {key: METRIC_LABELS[key] for key in ("phrase_acc", "sst5_root_acc", "sst3_root_acc", "contrast", "accuracy",
                                              "pearson", "macro_f1")}
ANALYSES = tuple((key, key.replace("_", " "), buckets) for key, buckets in METRIC_ANALYSES.items())
GRID_END_NOTE = ("`at its end` / `at the grid's end`: dev picked the smallest or largest lr of the grid that gives "
                 "the row's lr, with no `lr_extend` value left beyond it: the best lr may lie outside the grid.\n")
PROVISIONAL_NOTE = ("`grid k/n` in `seeds`: provisional: dev picked the row's lr among the k finished runs of its "
                    "lr grid (of n), and the row shows its runs at that lr; the pick may move once the grid is done.\n")


# ---- summary.csv -----------------------------------------------------------------------------------------------
def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def summary_csv(tables: Tables) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in tables.rows:
        g = row.group
        for metric in row.metrics:
            s = row.stat(metric)
            provisional = "/".join(map(str, row.provisional)) if row.provisional else ""
            writer.writerow([g.group, g.task, g.model, g.encoder, g.variant, row.precision or "",
                             lr_name(row.lr) if row.runs else "", s.n, provisional, _num(s.mean), _num(s.sd),
                             _num(paper_value(row, metric)), metric])
    return out.getvalue()


# ---- RESULTS.md ------------------------------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "".join("| " + " | ".join(map(_md, cells)) + " |\n" for cells in [header, ["---"] * len(header), *rows])


def _cell(s: Stat) -> str:
    if s.mean is None:
        return DASH
    return f"{s.mean:.2f}" if s.sd is None else f"{s.mean:.2f} ± {s.sd:.2f}"


def _label(metric: str) -> str:
    base = metric.removeprefix(PAPER_PREFIX)
    return LABELS.get(base, base) + ("†" if metric.startswith(PAPER_PREFIX) else "")


def _rows_table(rows: list[Row], show_task: bool = False) -> str:
    """Ours (mean ± sd) per headline metric, then the paper's numbers where it has any, then the commits."""
    metrics = list(dict.fromkeys(m for row in rows for m in row.metrics))
    bases = list(dict.fromkeys(m.removeprefix(PAPER_PREFIX) for m in metrics))
    with_paper = [m for m in bases if any(m in row.paper for row in rows)]
    header = [*(["task"] if show_task else []), "model", "encoder", "variant", "precision", "seeds", "lr",
              *map(_label, metrics)]
    if with_paper:
        header.append("paper: " + " / ".join(LABELS.get(m, m) for m in with_paper))
    header.append("commits")
    lines = []
    for row in rows:
        g = row.group
        cells = [*([TASKS.get(g.task, (g.task,))[0]] if show_task else []), g.model, g.encoder, g.variant,
                 row.precision or DASH, row.seeds, row.lr_text,
                 *(_cell(row.stat(m)) if m in row.metrics else DASH for m in metrics)]
        if with_paper:
            cells.append(" / ".join(_num(row.paper.get(m)) or DASH for m in with_paper))
        lines.append([*cells, row.commits()])
    return _table(header, lines)


def _analyses_table(rows: list[Row], prefix: str) -> list[str]:
    header = ["model", "encoder", "variant", "precision", "seeds",
              *(f"{title} {' / '.join(buckets)}" if buckets else title for _, title, buckets in ANALYSES)]
    lines = []
    for row in rows:
        g = row.group
        cells = [g.model, g.encoder, g.variant, row.precision or DASH, row.seeds]
        for key, _, buckets in ANALYSES:
            cells.append(" / ".join(_num(row.stat(prefix + key, b).mean) or DASH for b in buckets or [None]))
        lines.append(cells)
    counts = []
    first = next((run for row in rows for run in row.runs if run.block(prefix + "negation")[0]), None)
    if first is not None:
        block, _ = first.block(prefix + "negation")
        for key, title, buckets in ANALYSES:
            value = block.get(key) or {}
            ns = [str((value.get(b) or {}).get("n", DASH)) for b in buckets] if buckets else [str(value.get("n", DASH))]
            counts.append(f"{title} {' / '.join(ns)}")
    note = f"Items scored (n, from {first.run.name}): {'; '.join(counts)}.\n" if counts else ""
    return [_table(header, lines), note] if note else [_table(header, lines)]


def _relpath(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def plot_sets(tables: Tables) -> list[tuple[str, str, list[tuple[str, RunResult]]]]:
    """The plots of SST-phrase rows: (folder name, title, [(label, run)]), one set per encoder for the main
    rows and one for the ablations, each from the first seed of the rows whose run has test predictions."""
    sets = []
    phrase = [row for row in tables.rows if row.group.task == "sst_phrase" and not row.stage]
    references = ablation_references(tables.rows)
    for encoder in dict.fromkeys(row.group.encoder for row in phrase):
        for suffix, title, pick in (("", "main rows", lambda r: not is_ablation(r) or r.group.group in references),
                                    ("-ablations", "ablations", is_ablation)):
            runs = [(_row_name(row) + row.grid_note, row.runs[0]) for row in phrase
                    if row.group.encoder == encoder and pick(row) and row.runs and row.runs[0].predictions()]
            if runs:
                sets.append((f"{encoder}-sst_phrase{suffix}", f"{encoder}, SST-phrase, {title}", runs))
    return sets


def _row_name(row: Row) -> str:
    return row.group.model + (f" ({row.group.variant})" if row.group.variant else "")


def markdown(tables: Tables, out: Path, csv_path: Path, paper_file: Path, command: str, plots_dir: Path) -> str:
    """RESULTS.md: its sections in order (each built by a function below)."""
    rows = [row for row in tables.rows if not row.stage]
    return "\n".join([*_intro(tables, out, csv_path, paper_file, command), *_main_table(rows), *_grids(tables),
                      *_ablations(rows), *_comparisons(tables), *_transfer(tables, rows), *_analyses(tables, rows),
                      *_plots(tables, plots_dir, out.parent), *_pretraining(tables), *_runs(tables)])


def _intro(tables: Tables, out: Path, csv_path: Path, paper_file: Path, command: str) -> list[str]:
    """Where the numbers come from, and how to read them."""
    here = out.parent
    return [
        f"_Generated by `{command}` from the run results in [{_relpath(tables.results, here)}/]"
        f"({_relpath(tables.results, here)}/), the campaign file [{tables.campaign.path.name}]"
        f"({_relpath(tables.campaign.path, here)}) and the paper's numbers in [{paper_file.name}]"
        f"({_relpath(paper_file, here)}): do not edit by hand._\n",
        "# Results\n",
        "Every number is a test metric of the epoch that dev selected, in % (Pearson r x 100), as the mean ± the "
        "sample standard deviation over seeds (no ± with one seed; – where there is no result yet). `seeds` is "
        "runs with results / runs planned; `lr` is the learning rate of the row's runs (`grid`: picked on dev by the "
        "group's lr grid, below; `from G`: the lr G's grid picked; `fixed`: set in the campaign file). "
        "`precision` is `trainer.precision` in the config.yaml of the row's runs (32: float32; bf16: bfloat16 "
        "autocast; – before a run has results); rows are compared with each other only in one precision, but for "
        "the precision checks. `paper` is the paper's "
        "BERT-base number for the model the row reproduces, whatever its precision (SentiBERT: a pre-trained "
        "`sentibert`; BERT*: `mean_pool`; BERT: `cls`), for SST on its own 2184-sentence test subset; the columns "
        "marked † are ours on that subset (data=sst_paper), the others on the standard 2210-sentence test split. "
        "Models: `sentibert` (variant pre-trained: initialised from the "
        "masked-LM pre-training run), `mean_pool` (the paper's BERT*: mean pooling of the phrase's tokens), `cls` "
        "(BERT: the [CLS] token), `tree_lstm` (a Tree-LSTM over the encoder). `commits`: the code that produced the "
        f"row's runs. The same numbers, one line per row and metric: [{csv_path.name}]({_relpath(csv_path, here)}).\n",
        *(["`k stale` in `seeds`: runs trained at another lr than the one their group's grid picks now (the grid "
           "gained a value that dev prefers); they are left out of the row until the campaign trains them again at "
           "the new lr (Runs names them).\n"] if any(row.stale for row in tables.rows) else []),
        *([PROVISIONAL_NOTE] if any(row.provisional for row in tables.rows) else []),
        *([GRID_END_NOTE] if any(row.grid_end for row in tables.rows) else []),
    ]


def _main_table(rows: list[Row]) -> list[str]:
    """SST rows: the models, and the ablations the main rows refer to."""
    references = ablation_references(rows)
    main = [row for row in rows if row.group.task not in TRANSFER_TASKS
            and (not is_ablation(row) or row.group.group in references)]
    sections = ["## Main table\n"]
    for task in dict.fromkeys(row.group.task for row in main):
        sections += [f"### {TASKS.get(task, (task,))[0]}\n", _rows_table([r for r in main if r.group.task == task])]
    return sections


def _grids(tables: Tables) -> list[str]:
    """The dev metric of each lr-grid run, the picked lr in bold."""
    sections = ["## Learning-rate grids\n",
                 "The dev metric of each grid run's selected epoch (the first seed), in %; the best one, in bold, "
                 "picks the lr of the group's other seeds (ties: the lr listed first). In an unfinished grid the "
                 "best so far is in italics: a provisional pick, which the row uses and the runner does not."
                 + (" A grid with `lr_extend` values (experiments/campaign.yaml) grows while its best lr is at an end "
                    "of it: the next value beyond that end joins the grid, one at a time."
                    if any(g.lr_extend for g in tables.campaign.groups.values()) else "") + "\n"]
    if tables.grids:
        ends = {row.group.group for row in tables.rows if row.grid_end}
        lrs = sorted({lr for _, grid, _, _ in tables.grids for lr, _ in grid})
        lines = []
        for g, grid, picked, provisional in tables.grids:
            dev = {lr: result for lr, result in grid}
            metric = next((r.metrics.get("metric") for r in dev.values() if r is not None), None) or DASH
            cells = []
            for lr in lrs:
                result = dev.get(lr, False)
                text = "" if result is False else DASH if result is None or result.metrics["best_dev"] is None \
                    else f"{100 * result.metrics['best_dev']:.2f}"
                mark = "*" if provisional else "**"
                cells.append(f"{mark}{text}{mark}" if picked is not None and lr == picked else text)
            done = sum(r is not None for r in dev.values())
            state = "pending" if picked is None else lr_name(picked) + (" so far" if provisional else "") + (
                ", at the grid's end" if g.group in ends else "")
            lines.append([g.group, metric, *cells, state + (f" ({done} of {len(grid)} runs)" if done < len(grid)
                                                            else "")])
        sections.append(_table(["group", "dev metric", *map(lr_name, lrs), "picked lr"], lines))
    else:
        sections.append("No group has an lr grid.\n")
    return sections


def _ablations(rows: list[Row]) -> list[str]:
    """SentiBERT's variants, per task."""
    ablations = [row for row in rows if is_ablation(row)]
    sections = ["## Ablations\n",
                 "SentiBERT without pre-training (initialised from the bare encoder) in full, and its variants: "
                 "the ablations (one part of the composition changed, at the lr the full model's grid picked), LoRA "
                 "(adapters on a frozen encoder, each with its own lr grid) and the precision checks; the lr column "
                 "says where each row's lr comes from.\n"]
    for task in dict.fromkeys(row.group.task for row in ablations):
        sections += [f"### {TASKS.get(task, (task,))[0]}\n", _rows_table([r for r in ablations
                                                                          if r.group.task == task])]
    if not ablations:
        sections.append("None in the campaign.\n")
    return sections


def _points(x: float) -> str:
    return f"{100 * x:+.2f}"


def _comparisons(tables: Tables) -> list[str]:
    """Row minus reference per metric, with the bootstrap interval."""
    mismatches = precision_mismatches(tables.rows)
    if not tables.comparisons and not mismatches:
        return []
    lines = []
    for c in tables.comparisons:
        g = c.row.group
        cells = [_difference(d) for d in c.differences.values()] or [c.missing, *[DASH] * (len(PAIRED_METRICS) - 1)]
        check = precision_twin(c.row, tables.rows) is c.reference and c.reference.runs
        precision = f"{c.row.precision} vs {c.reference.precision}: precision check" if check else c.row.precision
        lines.append([g.model, g.encoder, g.variant, precision, f"{len(c.row.runs)}{c.row.grid_note}",
                      f"{_row_name(c.reference)}, {len(c.reference.runs)}{c.reference.grid_note}", *cells])
    header = ["model", "encoder", "variant", "precision", "seeds", "compared with, seeds",
              *(f"Δ {LABELS[m]} [{CONFIDENCE:.0%} interval]" for m in PAIRED_METRICS)]
    uncompared = [f"{_row_name(row)} on {row.group.encoder} ({row.precision}) with {_row_name(ref)} ({ref.precision})"
                  for row, ref in mismatches]
    return ["## Paired comparisons (SST-phrase)\n",
            "Each row minus the model it is compared with, in accuracy points on the standard test split: the "
            "ablations and LoRA against SentiBERT without pre-training (the same initialisation), the other rows "
            "against pre-trained SentiBERT on the same encoder, each in its own precision where the encoder has "
            "both (a row tuned in bf16 against the bf16 row). Per test sentence, each model's correct nodes are "
            "averaged over its seeds; the interval is a paired bootstrap over the test sentences "
            f"(`sentibert.evaluation.significance`: {SAMPLES:,} resamples, seed {SEED}), and * marks a difference "
            "whose interval excludes 0. It holds the test sample's luck only: the spread over seeds is the sd in "
            "the tables above. The two models of a pair trained in one precision, except in a precision check: a "
            "group that repeats another at its lr with only `trainer.precision` changed (the bf16 check), against that "
            "group.\n",
            *(["A pair with a provisional row (`grid k/n` in `seeds`: its lr is the best so far of an unfinished "
               "grid) is provisional too: the pick, and so the row's runs, may change.\n"]
              if any(c.row.provisional or c.reference.provisional for c in tables.comparisons) else []),
            *([_table(header, lines)] if lines else []),
            *([f"Not compared, as the two trained in different precisions: {'; '.join(uncompared)}.\n"]
              if uncompared else [])]


def _difference(d: Difference) -> str:
    """+1.23* [+0.45, +2.01]: * where the interval excludes 0."""
    return f"{_points(d.delta)}{'*' if d.excludes_zero else ''} [{_points(d.low)}, {_points(d.high)}]"


def _transfer(tables: Tables, rows: list[Row]) -> list[str]:
    """SentiBERT against the paper's baseline per encoder (SST-3 too), then every SST-2 (GLUE) and EmoInt row."""
    paper = tables.paper
    sections = ["## Transfer\n", *_baseline_pairs(tables)]
    glue = [row for row in rows if row.group.task == "sst2_glue"]
    if glue:
        sections += [f"### {TASKS['sst2_glue'][0]}\n", _rows_table(glue)]
    emoint = [row for row in rows if row.group.task in EMOINT_TASKS]
    if emoint:
        sections += ["### EmoInt (Pearson r x 100)\n", _rows_table(emoint, show_task=True),
                     _emoint_mean(emoint, paper)]
    if not glue and not emoint:
        sections.append("None in the campaign.\n")
    return sections


def _baseline_pairs(tables: Tables) -> list[str]:
    """The paper's claims on each encoder: SentiBERT, its baseline and SentiBERT minus the baseline, beside the
    paper's."""
    if not tables.baselines:
        return []
    sentibert = PAPER_MODELS[SENTIBERT]
    lines = []
    for line in tables.baselines:
        metric = TASKS[line.task][1][0]
        pair, keys = (line.sentibert, line.baseline), (SENTIBERT, BASELINES[line.task])
        theirs = [tables.paper.get((line.task, *key, metric)) for key in keys]
        paper_delta = DASH if None in theirs else f"{theirs[0] - theirs[1]:+.2f}"
        lines.append([TASKS[line.task][0], LABELS[metric], line.encoder,
                      ", ".join(dict.fromkeys(row.precision for row in pair if row and row.precision)) or DASH,
                      PAPER_MODELS[keys[1]],
                      *(DASH if row is None else f"{_cell(row.stat(metric))} ({row.seeds})" for row in pair),
                      _difference(line.difference) if line.difference else f"{DASH} ({line.missing})",
                      " / ".join([*(_num(v) or DASH for v in theirs), paper_delta])])
    header = ["task", "metric", "encoder", "precision", "baseline", f"{sentibert} (seeds)", "baseline (seeds)",
              f"Δ {sentibert} − baseline [{CONFIDENCE:.0%} interval]", f"paper: {sentibert} / baseline / Δ"]
    return [f"### {sentibert} against the paper's baseline, per encoder\n",
            f"The paper's claims on each encoder (MPNet is BERT-base size): pre-trained {sentibert} against BERT "
            "([CLS]) on the transfer tasks and against BERT* (mean pooling) on SST-3, as the paper sets them. Each "
            f"as mean ± sd over the seeds with results (with results / planned), and {sentibert} minus the baseline "
            "in points, with a paired bootstrap interval over the test sentences pooled over the seeds: each "
            "resample recomputes every seed's accuracy or Pearson r on the sentences drawn, and "
            f"takes the mean over seeds (`sentibert.evaluation.significance`: {SAMPLES:,} resamples, seed {SEED}; * "
            "marks an interval that excludes 0). The two are compared only where they trained in one precision. "
            "`paper`: the paper's BERT-base numbers and their difference.\n", _table(header, lines)]


def _analyses(tables: Tables, rows: list[Row]) -> list[str]:
    """Negation, contrast, local and global difficulty of the SST-phrase rows."""
    sections = []
    phrase = [row for row in rows if row.group.task == "sst_phrase"]
    if phrase:
        sections += ["## Fine-grained analyses (SST-phrase)\n",
                     "3-class accuracy (`sentibert.evaluation.metrics`), mean over the row's seeds: negation (trees by their "
                     "count of negations), contrast (X but Y triples, all three nodes right), local difficulty "
                     "(nodes by their children of another polarity), global difficulty (trees by polarity "
                     "switches).\n", "### Standard test split\n", *_analyses_table(phrase, "")]
        if any(tables.campaign.paper_tested(row.group) for row in phrase):
            sections += ["### The paper's test subset\n",
                         *_analyses_table([r for r in phrase if tables.campaign.paper_tested(r.group)],
                                          PAPER_PREFIX)]
        sections += _beside_paper(tables, phrase)
    return sections


def _analysis_metric(key: str, bucket: str | None) -> str:
    """paper.yaml's name for an analysis bucket: negation.2+ (or contrast, an analysis of one bucket)."""
    return key if bucket is None else f"{key}.{bucket}"


def _beside_paper(tables: Tables, phrase: list[Row]) -> list[str]:
    """Our rows of the paper's models on its test subset, each model's rows followed by the paper's numbers, in the
    analysis buckets that paper.yaml gives."""
    def theirs(model: tuple[str, str], key: str, bucket: str | None) -> float | None:
        return tables.paper.get(("sst_phrase", *model, _analysis_metric(key, bucket)))

    columns = [(key, title, bucket) for key, title, buckets in ANALYSES for bucket in buckets or [None]
               if any(theirs(model, key, bucket) is not None for model in PAPER_MODELS)]
    if not columns:
        return []
    models = [model for model in PAPER_MODELS if any(theirs(model, k, b) is not None for k, _, b in columns)]
    lines = []
    for model in models:
        lines += [[row.group.model, row.group.encoder, row.group.variant, row.precision or DASH, row.seeds,
                   *(_cell(row.stat(PAPER_PREFIX + key, bucket)) for key, _, bucket in columns)]
                  for row in phrase if paper_model(row.group) == model and tables.campaign.paper_tested(row.group)]
        lines.append([f"{PAPER_MODELS[model]} (paper)", "BERT-base", "", DASH, DASH,
                      *(_num(theirs(model, key, bucket)) or DASH for key, _, bucket in columns)])
    header = ["model", "encoder", "variant", "precision", "seeds",
              *(title if bucket is None else f"{title} {bucket}" for _, title, bucket in columns)]
    return ["### Beside the paper\n",
            "3-class accuracy on the paper's 2184-sentence test subset (ours: data=sst_paper, the runs' "
            "paper_test_metrics.json), mean ± sd over the row's seeds, beside the numbers that the authors' README "
            "gives for "
            f"{' and '.join(PAPER_MODELS[m] for m in models)} (BERT-base; in paper.yaml): negation by the tree's count "
            "of negations, local difficulty by the node's children of another polarity, contrast over X but Y "
            "triples.\n", _table(header, lines)]


def _plots(tables: Tables, plots_dir: Path, here: Path) -> list[str]:
    """Links to each plot set's report."""
    sets = plot_sets(tables)
    sections = ["## Plots\n", "From `sentibert report`, for the first seed of each SST-phrase row: test accuracy, "
                 "confusion matrix, accuracy by phrase length, fine-grained analyses.\n"]
    sections.append("".join(f"- {title}: [report]({_relpath(plots_dir / name, here)}/report.md), "
                            f"[overview]({_relpath(plots_dir / name, here)}/overview.png), "
                            f"[confusion]({_relpath(plots_dir / name, here)}/confusion.png), "
                            f"[length]({_relpath(plots_dir / name, here)}/length.png), "
                            f"[fine-grained]({_relpath(plots_dir / name, here)}/fine_grained.png)\n"
                            for name, title, _ in sets) or "None yet: no SST-phrase run has test predictions.\n")
    return sections


def _pretraining(tables: Tables) -> list[str]:
    """The pre-training stages (dev logged, not used to select)."""
    sections = []
    stages = [row for row in tables.rows if row.stage]
    if stages:
        lines = []
        for row in stages:
            best = row.runs[0].metrics if row.runs else {}
            dev = best.get("best_dev")
            lines.append([row.group.group, row.group.encoder, row.precision or DASH, row.seeds, row.lr_text,
                          best.get("metric", DASH),
                          DASH if dev is None else f"{100 * dev:.2f}", str(best.get("best_epoch", DASH)),
                          row.commits()])
        sections += ["## Pre-training\n", "A stage, not a result: its dev metric is logged, not used to select.\n",
                     _table(["group", "encoder", "precision", "seeds", "lr", "dev metric", "dev", "epoch", "commits"],
                            lines)]
        committed = {run.run.name: run.metrics["best_dev"] for row in stages for run in row.runs}
        sections += _rebuilt_starts(tables, committed)
    return sections


def _spent(tables: Tables, row: Row) -> list[RunResult]:
    """The row's runs with results and its lr grid's other runs with results: what the row cost."""
    grid = next((results for g, results, _, _ in tables.grids if g is row.group), [])
    named = {r.run.name: r for r in [*row.runs, *(result for _, result in grid if result is not None)]}
    return list(named.values())


def _rebuilt_starts(tables: Tables, committed: dict[str, float]) -> list[str]:
    """Runs whose pre-training checkpoint is not the committed one: it was lost with a machine and trained again."""
    lines = []
    for row in tables.rows:
        for run in _spent(tables, row):
            source = run.info.get("init_from")  # recorded by the runner since the rebuild (e94f4b6)
            dev = committed.get(source["run"]) if source else None
            if source and source["best_dev"] != dev:
                lines.append([run.run.name, source["run"], f"{100 * source['best_dev']:.2f}",
                              DASH if dev is None else f"{100 * dev:.2f}"])
    if not lines:
        return []
    return ["Runs that started from a rebuilt checkpoint: its run directory was lost with a machine, so the campaign "
            "trained it again (same code, config and seed; `sentibert.campaign.runner.lost_checkpoints`), and "
            "floating-point differences gave it another dev score than the committed run's.\n",
            _table(["run", "started from", "its dev", "committed dev"], lines)]


def _runs(tables: Tables) -> list[str]:
    """Every group: its runs with results, what is missing, the code, the hours and what they were measured on."""
    sections = ["## Runs\n", "Every group of the campaign: the runs with results, what is still missing, the "
                 "code, the precision and the wall time (hours, summed over the row's runs and its lr grid's other "
                 "runs: what the row cost). A run that was stopped "
                 "and resumed counts the time of every runner that trained it, except where its runner was stopped "
                 "before the campaign runner learnt to keep that count: then its hours are a lower bound. That is a "
                 "run resumed before 69def57 (2026-12-06: a resumed run counts its earlier runners) or left training "
                 "by a stopped runner and adopted by the next before cd50d62 (2026-12-07: the adopting runner keeps "
                 "counting). Beside the hours, what they were measured on: the machine (listed under the table) and "
                 "torch threads per run × runs at once, as the runner that collected each run recorded them; – for "
                 "a run collected before the runner recorded its machine.\n"]
    order = {name: i for i, name in enumerate(tables.campaign.groups)}
    machines: dict[str, str] = {}  # each distinct machine: its key, m1, m2, ... in table order

    def measured_on(runs: list[RunResult]) -> list[str]:
        names = [r.info.get("machine") for r in runs]
        keys = [DASH if name is None else machines.setdefault(name, f"m{len(machines) + 1}") for name in names]
        setups = [DASH if r.info.get("threads") is None or r.info.get("jobs") is None
                  else f"{r.info['threads']}×{r.info['jobs']}" for r in runs]
        return [", ".join(dict.fromkeys(keys)) or DASH, ", ".join(dict.fromkeys(setups)) or DASH]

    lines = []
    for row in sorted(tables.rows, key=lambda row: order[row.group.group]):
        spent = _spent(tables, row)
        lines.append([row.group.group, " ".join(r.run.name for r in row.runs) or DASH, " ".join(row.missing) or DASH,
                      row.commits(), row.precision or DASH,
                      f"{sum(r.info.get('seconds') or 0 for r in spent) / 3600:.1f}" if spent else DASH,
                      *measured_on(spent)])
    sections.append(_table(["group", "runs with results", "missing", "commits", "precision", "hours", "machine",
                            "threads × jobs"], lines))
    if machines:
        sections.append("".join(f"- {key}: {name}\n" for name, key in machines.items()))
    if tables.orphans:
        sections.append(f"Results of runs that the campaign file does not plan (not in any table; an lr_extend run "
                        f"counts only while its grid calls for it): "
                        f"{', '.join(tables.orphans)}.\n")
    return sections


def _emoint_mean(rows: list[Row], paper: dict[tuple[str, str, str, str], float]) -> str:
    """The mean over the four emotions of each (model, encoder, variant), once all four have results."""
    lines = []
    for key in dict.fromkeys((r.group.model, r.group.encoder, r.group.variant) for r in rows):
        members = [r for r in rows if (r.group.model, r.group.encoder, r.group.variant) == key]
        means = {r.group.task: r.stat("pearson").mean for r in members}
        ours = statistics.fmean(means[t] for t in EMOINT_TASKS) \
            if all(means.get(t) is not None for t in EMOINT_TASKS) else None
        model = paper_model(members[0].group)
        theirs = paper.get((EMOINT_MEAN, *model, "pearson")) if model else None
        precision = ", ".join(dict.fromkeys(r.precision for r in members if r.precision)) or DASH
        lines.append([*key, precision, _num(ours) or DASH, _num(theirs) or DASH])
    return ("The mean over the four emotions (of each emotion's mean over seeds; – until all four have results):\n\n"
            + _table(["model", "encoder", "variant", "precision", "mean Pearson r", "paper"], lines))


# ---- README.md's result tables -------------------------------------------------------------------------------
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"  # README's lines around them
# README names rows for a reader; RESULTS.md keeps the config keys (`_row_name`), which are what one types to rerun a
# row (model=mean_pool encoder=mpnet).
MODEL_NAMES = {"sentibert": "SentiBERT", "mean_pool": "mean pooling", "cls": "[CLS]", "tree_lstm": "Tree-LSTM"}
ENCODER_NAMES = {"minilm": "MiniLM-L6", "mpnet": "MPNet-base"}


def readme_tables(tables: Tables) -> str:
    """README's short tables: the rows with results, SST-phrase (per encoder, RESULTS.md's main rows first, then its
    ablations, then the precision checks) then the other tasks; a row's variant with its lr's pick (on SST-phrase,
    or its fixed lr)."""
    rows = [row for row in tables.rows if not row.stage and row.runs]
    references = ablation_references(tables.rows)
    checks = {row.group.group for row in rows if precision_twin(row, tables.rows)}
    encoders = list(dict.fromkeys(row.group.encoder for row in rows))
    phrase = sorted((row for row in rows if row.group.task == "sst_phrase"), key=lambda row: (
        encoders.index(row.group.encoder), 2 if row.group.group in checks else
        int(is_ablation(row) and row.group.group not in references)))
    metrics = TASKS["sst_phrase"][1]

    def names(row: Row) -> list[str]:
        g = row.group
        variant = [g.variant]
        if g.lr_grid:  # its first run is the grid run at the lr picked (or the best so far)
            variant.append(f"lr {lr_name(row.lr)} "
                           f"{'best on dev so far' if row.provisional else 'picked on dev'}"
                           + (", at the grid's end" if row.grid_end else ""))
        elif g.lr is not None and g.task == "sst_phrase":  # beside the tuned rows it is compared with
            variant.append(f"lr {lr_name(g.lr)}, no grid")
        elif row.grid_end:  # lr_from a grid that picked its end
            variant.append(f"lr {lr_name(row.lr)}, at the grid's end")
        if g.group in checks:
            variant.append("precision check")
        return [MODEL_NAMES.get(g.model, g.model), ENCODER_NAMES.get(g.encoder, g.encoder),
                "; ".join(filter(None, variant)), row.precision, row.seeds]

    def paper(row: Row, metrics: tuple[str, ...]) -> str:
        return " / ".join(_num(row.paper.get(m)) or DASH for m in metrics) if row.paper else ""

    main = _table(["model", "encoder", "variant", "precision", "seeds", *map(_label, metrics),
                   f"paper (BERT-base): {' / '.join(map(_label, metrics))}"],
                  [[*names(row), *(_cell(row.stat(m)) for m in metrics), paper(row, metrics)] for row in phrase])
    other = [[TASKS.get(row.group.task, (row.group.task,))[0], _label(row.metrics[0]), *names(row),
              _cell(row.stat(row.metrics[0])), paper(row, row.metrics[:1])]
             for row in rows if row.group.task != "sst_phrase" and row.metrics]
    sections = [main, "Other tasks (SST-3: a 3-class phrase model):\n",
                _table(["task", "metric", "model", "encoder", "variant", "precision", "seeds", "ours",
                        "paper (BERT-base)"], other)]
    if any(row.provisional for row in rows):
        sections.append(PROVISIONAL_NOTE)
    if any(row.grid_end for row in rows):
        sections.append(GRID_END_NOTE)
    return "\n".join(sections)


def with_readme_tables(readme: Path, tables_text: str) -> str:
    """README's text with `tables_text` between its README_BEGIN and README_END lines."""
    try:
        lines = readme.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError as err:
        raise ResultsError(f"{readme}: cannot read it ({err.strerror}); name the README to update with --readme") \
            from None
    begin, end = ([i for i, line in enumerate(lines) if line.strip() == marker]
                  for marker in (README_BEGIN, README_END))
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        found = "; ".join(f"{marker} at {', '.join(f'line {i + 1}' for i in at) or 'no line'}"
                          for marker, at in ((README_BEGIN, begin), (README_END, end)))
        raise ResultsError(f"{readme}: its result tables go between one line {README_BEGIN} and one line "
                           f"{README_END} after it ({found})")
    return "".join([*lines[:begin[0] + 1], "\n", tables_text, "\n", *lines[end[0]:]])


# ---- writing ---------------------------------------------------------------------------------------------------
def draw_plots(tables: Tables, plots_dir: Path) -> list[Path]:
    """Draw every plot set afresh under `plots_dir` (removed first: nothing stale is left); -> report.md files."""
    from sentibert.evaluation import report

    shutil.rmtree(plots_dir, ignore_errors=True)
    written = []
    for name, _, members in plot_sets(tables):
        out = plots_dir / name
        # the report names each run's folder relative to it
        runs = [dataclasses.replace(run.finished, label=label, path=Path(_relpath(run.path, out)))
                for label, run in members]
        written.append(report.report(runs, out))
    return written


def write(results: Path, campaign_file: Path, paper_file: Path, out: Path, csv_path: Path,
          plots: bool = True, readme: Path | None = None) -> list[Path]:
    """Build the tables and write RESULTS.md, summary.csv, the plots and README's tables (where `readme` is given);
    -> the files written. A README without its marker lines is an error before anything is written."""
    try:
        campaign = load_campaign(campaign_file)
    except CampaignError as err:
        raise ResultsError(str(err)) from None
    paper = load_paper(paper_file)
    keys = [(g.task, g.model, g.encoder, g.variant) for g in campaign.groups.values()]
    if dupes := sorted({"/".join(k) for k in keys if keys.count(k) > 1}):
        raise ResultsError(f"{campaign_file}: several groups share task/model/encoder/variant {dupes}: "
                           "a row must be one group")
    tables = build(campaign, results, paper)
    plots_dir = results / "plots"
    command = _command(results, campaign_file, paper_file, out, csv_path, readme)
    readme_text = with_readme_tables(readme, readme_tables(tables)) if readme is not None else None
    written = [atomic_write_text(csv_path, summary_csv(tables)),
               atomic_write_text(out, markdown(tables, out, csv_path, paper_file, command, plots_dir))]
    if readme_text is not None:
        written.append(atomic_write_text(readme, readme_text))
    if plots:
        written += draw_plots(tables, plots_dir)
    return written


def defaults(results: Path) -> dict[str, Path]:
    return {"campaign": results.parent / "campaign.yaml", "paper": results.parent / "paper.yaml",
            "out": results.parent / "RESULTS.md", "csv": results / "summary.csv",
            "readme": results.parent.parent / "README.md"}  # the repository's, for experiments/results


def _command(results: Path, campaign: Path, paper: Path, out: Path, csv_path: Path, readme: Path | None) -> str:
    """The command line that regenerates these files, with paths relative to the folder above the output's (the
    repository root for experiments/RESULTS.md): the same text whatever the working directory."""
    root = out.resolve().parent.parent
    parts = ["sentibert results", _relpath(results, root)]
    for option, path in (("--campaign", campaign), ("--paper", paper), ("--out", out), ("--csv", csv_path),
                         ("--readme", readme)):
        if path is not None and path.resolve() != defaults(results)[option[2:]].resolve():
            parts.append(f"{option} {_relpath(path, root)}")
    return " ".join(parts)
