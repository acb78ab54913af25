"""The run directory: what `sentibert train`, `evaluate` and `bench` write into one (hydra.run.dir), and the
predictions file's I/O. Every reader and writer of a run directory takes its file names from here.

  config.yaml              the resolved config (train)
  metrics.json             dev per epoch, best epoch, test (train); the split's metrics (evaluate)
  test_predictions.jsonl   gold trees and predicted node labels (<split>_predictions.jsonl from evaluate)
  best_model/              the selected model, a save_pretrained directory (sentibert.models.model)
  checkpoints/             resumable training state (sentibert.training.checkpoints)
  log.csv                  the csv logger's rows (sentibert.training.loggers)
  train.lock               names the process training in it (sentibert.training.checkpoints.own_run_dir)
  bench.json               throughput (bench)

A predictions file (test_predictions.jsonl) has one JSON object per test tree, in the test file's order:
  {"tree": "(2 (1 Not) (2 ...))", "spans": [[0, 5], ...], "gold": [2, ...], "pred": [2, ...],
   "label_names": ["negative", "neutral", "positive"]}
One label space per file, the model's: `tree` is the gold tree (PTB) with its labels in the model's classes (an
SST-3 run's gold is 3-class), `spans` (token ranges) and `gold` are its nodes' (pre-order, root first), copied out
for other readers; `pred` is the predicted class of each of those nodes; `label_names` names the classes, lowest
first. Files written before label_names was stored (the campaign's committed results) hold the dataset's own gold
labels: `read_predictions` maps them with the run's data.label_view.
"""
from __future__ import annotations

import functools
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sentibert.data.labels import SST5_NAMES, relabel
from sentibert.data.tree import UNLABELED, BinaryTree
from sentibert.io import TextFileError, atomic_write_text, decode_text, read_lines, split_lines

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.jsonl"
GZIPPED_PREDICTIONS_FILE = f"{PREDICTIONS_FILE}.gz"  # as a campaign's results keep it
BEST_MODEL = "best_model"
CHECKPOINTS = "checkpoints"
LATEST_CHECKPOINT = "latest"  # a file in CHECKPOINTS that names the newest complete checkpoint
LOG_CSV = "log.csv"
LOCK_FILE = "train.lock"
BENCH_FILE = "bench.json"
# What a training run leaves: `overwrite=true` removes them before another run starts in the directory.
TRAIN_OUTPUTS = (METRICS_FILE, PREDICTIONS_FILE, BEST_MODEL, CHECKPOINTS, LOG_CSV)


def predictions_file(split: str) -> str:
    """<split>_predictions.jsonl: test_predictions.jsonl for the test split."""
    return f"{split}_predictions.jsonl"


def find_predictions(folder: Path) -> Path | None:
    """A run folder's test predictions: PREDICTIONS_FILE, else GZIPPED_PREDICTIONS_FILE; None with neither."""
    return next((folder / name for name in (PREDICTIONS_FILE, GZIPPED_PREDICTIONS_FILE) if (folder / name).is_file()),
                None)


class RunFolderError(RuntimeError):
    """A run directory (or a file in one) that cannot be read as a run; the message names it and what is wrong."""


# ---- the predictions file --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Predictions:
    """A predictions file: (gold tree, predicted node labels) per tree, all in one label space."""
    label_names: tuple[str, ...]  # the classes, lowest first
    records: list[tuple[BinaryTree, list[int]]]


def write_predictions(path: str | Path, trees: Sequence[BinaryTree], predictions: Sequence[Sequence[int]],
                      label_names: Sequence[str], label_view: str | None = None) -> Path:
    """Gold trees and their per-node predicted labels as test_predictions.jsonl (format in the module docstring).
    trees: as the dataset has them; label_view (the run's data.label_view) maps them into the model's classes."""
    if len(trees) != len(predictions):
        raise ValueError(f"{len(predictions)} prediction lists for {len(trees)} trees")
    lines = []
    for i, (tree, pred) in enumerate(zip(trees, predictions)):
        tree = relabel(tree, label_view) if label_view else tree
        if len(pred) != len(tree) or not all(0 <= p < len(label_names) for p in pred):
            raise ValueError(f"tree {i}: {list(pred)} is not one of the {len(label_names)} classes for each of its "
                             f"{len(tree)} nodes")
        lines.append(json.dumps({"tree": tree.to_ptb(), "spans": [list(s) for s in tree.spans],
                                 "gold": list(tree.labels), "pred": [int(p) for p in pred],
                                 "label_names": list(label_names)}) + "\n")
    return atomic_write_text(path, "".join(lines))


# Trees are immutable, and the same test trees recur in every run's predictions file (a results table reads dozens):
# each text is parsed once. 16k trees cover every test split this project has.
@functools.lru_cache(maxsize=1 << 14)
def _gold_tree(text: str) -> BinaryTree:
    return BinaryTree.from_ptb(text)


def read_predictions(path: Path, label_view: str | None = None,
                     label_names: Sequence[str] = SST5_NAMES) -> Predictions:
    """The records of a test_predictions.jsonl (or .jsonl.gz, as the campaign keeps it). For a file from before
    label_names was stored, `label_view` and `label_names` are the run's (data.label_view; its classes' names):
    its gold labels are the dataset's own, mapped with label_view."""
    out, names = [], None
    try:
        lines = (split_lines(decode_text(gzip.decompress(path.read_bytes()), str(path))) if path.suffix == ".gz"
                 else read_lines(path))
    except TextFileError as err:
        raise RunFolderError(str(err)) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:  # not gzip, or cut short
        raise RunFolderError(f"{path}: not a whole gzip file ({err})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            try:
                tree = _gold_tree(record["tree"])
            except ValueError:  # parse it again, to say where
                tree = BinaryTree.from_ptb(record["tree"], str(path), n)
            pred = [int(p) for p in record["pred"]]
            line_names = tuple(map(str, record["label_names"])) if "label_names" in record else None
            if line_names is None:  # written before label_names: the dataset's gold labels
                tree, line_names = relabel(tree, label_view) if label_view else tree, tuple(label_names)
        except (ValueError, KeyError, TypeError) as err:  # bad JSON, a missing key, a bad tree or label
            raise RunFolderError(f"{path}:{n}: not a prediction record ({err})") from None
        if names is None:
            names = line_names
        if line_names != names:
            raise RunFolderError(f"{path}:{n}: label_names {list(line_names)}, not line 1's {list(names)}: one file "
                                 "holds one run's predictions")
        classes = range(len(names))
        if len(pred) != len(tree) or not all(p in classes for p in pred) or not all(
                g in classes or g == UNLABELED for g in tree.labels):
            raise RunFolderError(f"{path}:{n}: expected gold and predicted labels of the {len(names)} classes "
                                 f"({', '.join(names)}) for each of the tree's {len(tree)} nodes, got gold "
                                 f"{list(tree.labels)} and predictions {pred}")
        out.append((tree, pred))
    return Predictions(names or tuple(label_names), out)
