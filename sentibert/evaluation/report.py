"""Plots and a markdown summary of training runs (`sentibert report RUN_DIR [RUN_DIR ...] [--out DIR]`).

Everything comes from the run directories `sentibert train` writes, several runs side by side (e.g. SentiBERT
against mean pooling):
  metrics.json            its `test` block (`sentibert.evaluation.metrics`): phrase and root accuracies, negation, contrast,
                          local and global difficulty; and the best dev epoch
  test_predictions.jsonl  the test trees with gold and predicted node labels in the run's classes
                          (`sentibert.runs.write_predictions`; or gzipped, .jsonl.gz, as the campaign's results keep
                          them), for the confusion matrix (one row and column per class) and the accuracy by phrase
                          length; a run without it is left out of those two, and the summary says so
  config.yaml             names the run by its model class (`model._target_`); runs that would share a name, or
                          have no config.yaml, are named by their directory. Its task (data.dataset, data.label_view,
                          model.num_classes) reads predictions files written before they named their classes

Writes to --out (default `report/`): report.md, overview.png, confusion.png, length.png, fine_grained.png.

The predictions file's format: sentibert.runs.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from sentibert.data.labels import label_names
from sentibert.data.tree import BinaryTree
from sentibert.evaluation.metrics import ANALYSES, METRIC_LABELS
from sentibert.io import atomic_write, atomic_write_text
from sentibert.runs import (CONFIG_FILE, METRICS_FILE, PREDICTIONS_FILE, RunFolderError, find_predictions,
                            read_predictions)

HEADLINE = {key: METRIC_LABELS[key] for key in ("phrase_acc", "sst5_root_acc", "sst3_root_acc",
                                                 "sst3_from_5class_root_acc", "sst2_from_5class_root_acc")}
# (metrics key, title, buckets in order; None: the metric is a single bucket)
FINE_GRAINED = tuple((key, title, ANALYSES[key]) for key, title in (
    ("negation", "Negation (count in the sentence)"), ("contrast", "Contrast (X but Y)"),
    ("local_difficulty", "Local difficulty (children of another polarity)"),
    ("global_difficulty", "Global difficulty (polarity switches in the tree)")))
LENGTH_BIN_WIDTH, LENGTH_BINS = 5, 7  # phrase lengths 1-5, 6-10, ..., 31+


# ---- runs ------------------------------------------------------------------------------------------------------
@dataclass
class FinishedRun:
    path: Path
    label: str
    best_epoch: int | None
    test: dict  # sentibert.evaluation.metrics.evaluate_records' output
    predictions: list[tuple[BinaryTree, list[int]]] | None  # None: the run has no test_predictions.jsonl
    label_names: tuple[str, ...] = ()  # the predictions' classes


def load_run(path: str | Path) -> FinishedRun:
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"{path} is not a directory")
    if not (path / METRICS_FILE).is_file():
        raise RunFolderError(f"{path} is not a training run: {METRICS_FILE} is missing")
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
    except ValueError as err:
        raise RunFolderError(f"{path / METRICS_FILE}: not JSON ({err})") from None
    if "test" not in metrics:
        raise RunFolderError(f"{path / METRICS_FILE} has no test results: `sentibert train` writes them when "
                             "the run finishes")
    config = _run_config(path)
    model, data = config.get("model", {}), config.get("data", {})
    # The model class (`sentibert.models.model.MeanPool` -> MeanPool), else the directory's name.
    name = model["_target_"].rsplit(".", 1)[-1] if model.get("_target_") else path.resolve().name
    found = find_predictions(path)
    if found is None:
        return FinishedRun(path, name, metrics.get("best_epoch"), metrics["test"], None)
    # The run's task names the classes of a file written before predictions files named them.
    names = label_names(model.get("num_classes", 5), data.get("dataset"), data.get("label_view"))
    predictions = read_predictions(found, data.get("label_view"), names)
    return FinishedRun(path, name, metrics.get("best_epoch"), metrics["test"], predictions.records,
                       predictions.label_names)


def _run_config(path: Path) -> dict:
    """The run's config.yaml ({} without one); its model and data parts are mappings."""
    config = path / CONFIG_FILE
    if not config.is_file():
        return {}
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if not all(isinstance(loaded.get(part, {}), dict) for part in ("model", "data")):
            raise AttributeError("model or data is not a mapping")
    except (yaml.YAMLError, AttributeError) as err:  # not YAML, or not a mapping
        raise RunFolderError(f"{config}: not a run configuration ({err})") from None
    return loaded


def load_runs(paths: Sequence[str | Path]) -> list[FinishedRun]:
    runs = [load_run(p) for p in paths]
    names = [run.label for run in runs]
    for run in runs:
        if names.count(run.label) > 1:  # e.g. seeds or ablations of one model class
            run.label = f"{run.label} ({run.path.resolve().name})"
    return runs


# ---- statistics from the predictions ----------------------------------------------------------------------------
def confusion(predictions: list[tuple[BinaryTree, list[int]]], num_classes: int) -> list[list[int]]:
    """Class x class counts over all phrase nodes: rows gold, columns predicted (unlabelled gold nodes are skipped)."""
    counts = [[0] * num_classes for _ in range(num_classes)]
    for tree, pred in predictions:
        for gold, p in zip(tree.labels, pred):
            if gold >= 0:
                counts[gold][p] += 1
    return counts


def length_bin(length: int) -> str:
    index = min((length - 1) // LENGTH_BIN_WIDTH, LENGTH_BINS - 1)
    low = index * LENGTH_BIN_WIDTH + 1
    return f"{low}+" if index == LENGTH_BINS - 1 else f"{low}-{low + LENGTH_BIN_WIDTH - 1}"


LENGTH_BIN_NAMES = [length_bin(i * LENGTH_BIN_WIDTH + 1) for i in range(LENGTH_BINS)]


def accuracy_by_length(predictions: list[tuple[BinaryTree, list[int]]]) -> dict[str, dict]:
    """Accuracy of phrase nodes grouped by length in words: {bin: {"acc", "n"}}, empty bins left out."""
    hits: dict[str, list[bool]] = {name: [] for name in LENGTH_BIN_NAMES}
    for tree, pred in predictions:
        for (start, end), gold, p in zip(tree.spans, tree.labels, pred):
            if gold >= 0:
                hits[length_bin(end - start)].append(gold == p)
    return {name: {"acc": sum(h) / len(h), "n": len(h)} for name, h in hits.items() if h}


def _bucket(test: dict, key: str, bucket: str | None) -> dict | None:
    """One {"acc", "n"} of the test metrics, or None where the run had no such item."""
    value = test.get(key)
    value = value if bucket is None else (value or {}).get(bucket)
    return value if value and value.get("acc") is not None else None


# ---- plots -------------------------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))


def _grouped_bars(ax, runs: list[FinishedRun], groups: list[str], values: list[list[float | None]], title: str) -> None:
    """One bar per run within each group; `values[r][g]` is run r's accuracy in group g (None: no bar)."""
    width = 0.8 / len(runs)
    for r, (run, row) in enumerate(zip(runs, values)):
        xs = [g + (r - (len(runs) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [math.nan if v is None else 100 * v for v in row], width, label=run.label)
        ax.bar_label(bars, labels=["" if v is None else f"{100 * v:.1f}" for v in row], fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)


def plot_overview(runs: list[FinishedRun], path: Path) -> Path:
    fig = _figure(max(6, 1.2 * len(HEADLINE) * len(runs)), 3.5)
    ax = fig.add_subplot()
    _grouped_bars(ax, runs, list(HEADLINE.values()), [[run.test.get(k) for k in HEADLINE] for run in runs],
                  "Test accuracy (the best dev epoch's model)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_fine_grained(runs: list[FinishedRun], path: Path) -> Path:
    fig = _figure(11, 7)
    axes = fig.subplots(2, 2).flat
    for ax, (key, title, buckets) in zip(axes, FINE_GRAINED):
        values = [[(_bucket(run.test, key, name) or {}).get("acc") for name in buckets or [None]] for run in runs]
        _grouped_bars(ax, runs, buckets or ["all triples"], values, title + ", 3-class")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_confusion(runs: list[FinishedRun], path: Path) -> Path:
    """Per run, the confusion matrix coloured by row (the share of each gold class), annotated with counts."""
    fig = _figure(4.2 * len(runs), 4.2)
    for ax, run in zip(fig.subplots(1, len(runs), squeeze=False)[0], runs):
        short = [name.replace("very ", "v. ") for name in run.label_names]
        counts = confusion(run.predictions, len(run.label_names))
        shares = [[c / max(sum(row), 1) for c in row] for row in counts]
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for gold, row in enumerate(counts):
            for pred, count in enumerate(row):
                ax.text(pred, gold, str(count), ha="center", va="center", fontsize=8,
                        color="white" if shares[gold][pred] > 0.6 else "black")
        ax.set_xticks(range(len(short)), short, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(short)), short, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(run.label, fontsize=10)
    return _save(fig, path)


def plot_length(runs: list[FinishedRun], path: Path) -> Path:
    fig = _figure(7, 3.8)
    ax = fig.add_subplot()
    for run in runs:
        by_length = accuracy_by_length(run.predictions)
        ax.plot(LENGTH_BIN_NAMES, [100 * by_length[b]["acc"] if b in by_length else math.nan
                                   for b in LENGTH_BIN_NAMES], marker="o", label=run.label)
    ax.set_xlabel("phrase length (words)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Test accuracy by phrase length", fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ---- markdown ---------------------------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]]) -> str:
    return "".join("| " + " | ".join(cells) + " |\n" for cells in [header, ["---"] * len(header), *rows])


def _cell(bucket: dict | None) -> str:
    return "-" if bucket is None else f"{100 * bucket['acc']:.1f} ({bucket['n']})"


def _md(text: str) -> str:
    """Table-safe text: a | would end the cell."""
    return text.replace("|", "\\|")


def markdown(runs: list[FinishedRun]) -> str:
    out = ["# SentiBERT report\n",
           "Test split, with each run's model from its best dev epoch. Accuracies in %; (n) is the number of "
           "items scored.\n"]
    rows = [[_md(run.label), f"`{_md(str(run.path))}`", str(run.best_epoch) if run.best_epoch is not None else "-",
             *[f"{100 * run.test[k]:.1f}" if run.test.get(k) is not None else "-" for k in HEADLINE]] for run in runs]
    out += [_table(["run", "directory", "best epoch", *HEADLINE.values()], rows), "![overview](overview.png)\n"]

    with_predictions = [run for run in runs if run.predictions is not None]
    missing = "".join(f" {_md(run.label)} has no {PREDICTIONS_FILE} and is left out of this section."
                      for run in runs if run.predictions is None)
    out.append("## Confusion matrix\n\nAll phrase nodes, in each run's classes; rows are gold labels, colour is the "
               f"share of the row.{missing}\n")
    if with_predictions:
        out.append("![confusion matrix](confusion.png)\n")
    out.append(f"## Accuracy by phrase length\n\nAccuracy of phrase nodes by length in words, in each run's classes."
               f"{missing}\n")
    if with_predictions:
        rows = [[_md(run.label), *[_cell(accuracy_by_length(run.predictions).get(b)) for b in LENGTH_BIN_NAMES]]
                for run in with_predictions]
        out += [_table(["run", *LENGTH_BIN_NAMES], rows), "![accuracy by phrase length](length.png)\n"]

    out.append("## Negation, contrast, local and global difficulty\n\n"
               "3-class accuracy (`sentibert.evaluation.metrics`).\n")
    for key, title, buckets in FINE_GRAINED:
        names = buckets or [None]
        rows = [[_md(run.label), *[_cell(_bucket(run.test, key, name)) for name in names]] for run in runs]
        out += [f"### {title}\n", _table(["run", *(buckets or ["all triples"])], rows)]
    out.append("![fine-grained metrics](fine_grained.png)\n")
    return "\n".join(out)


# ---- the report ------------------------------------------------------------------------------------------------
def report(runs: list[FinishedRun], out: str | Path) -> Path:
    """Write the plots and report.md for these runs into `out`; -> the markdown file."""
    out = Path(out)
    plot_overview(runs, out / "overview.png")
    plot_fine_grained(runs, out / "fine_grained.png")
    with_predictions = [run for run in runs if run.predictions is not None]
    if with_predictions:
        plot_confusion(with_predictions, out / "confusion.png")
        plot_length(with_predictions, out / "length.png")
    return atomic_write_text(out / "report.md", markdown(runs))
