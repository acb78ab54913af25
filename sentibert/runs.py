"""The run directory: what `sentibert train`, `evaluate` and `bench` write into one (hydra.run.dir), and the
predictions file's I/O. Every reader and writer of a run directory takes its file names from here.

  config.yaml              the resolved config (train)
  metrics.json             dev per epoch, best epoch, test (train); the split's metrics (evaluate)
  test_predictions.jsonl   gold trees and predicted node labels (<split>_predictions.jsonl from evaluate)
  best_model/              the selected model, a save_pretrained directory (sentibert.models.model)
  checkpoints/             resumable training state (sentibert.training.checkpoints)
  log.csv                  the csv logger's rows (sentibert.training.loggers)
  bench.json               throughput (bench)

A predictions file (test_predictions.jsonl) has one JSON object per test tree, in the test file's order:
  {"tree": "(3 (2 Not) (3 ...))", "spans": [[0, 5], ...], "gold": [3, ...], "pred": [3, ...]}
`tree` is the gold tree (PTB); `spans` (token ranges) and `gold` are its nodes' (pre-order, root first), copied
out for other readers; `pred` is the predicted 5-class label of each of those nodes.
"""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Sequence

from sentibert.data.tree import BinaryTree
from sentibert.evaluation.render import LABEL_NAMES
from sentibert.io import TextFileError, atomic_write_text, decode_text, read_lines, split_lines

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "test_predictions.jsonl"
BEST_MODEL = "best_model"
CHECKPOINTS = "checkpoints"
LOG_CSV = "log.csv"
BENCH_FILE = "bench.json"


def predictions_file(split: str) -> str:
    """<split>_predictions.jsonl: test_predictions.jsonl for the test split."""
    return f"{split}_predictions.jsonl"


class ReportError(RuntimeError):
    """A run directory the report cannot use; the message names the directory and what is missing."""


# ---- the predictions file --------------------------------------------------------------------------------------
def write_predictions(path: str | Path, trees: Sequence[BinaryTree], predictions: Sequence[Sequence[int]]) -> Path:
    """Gold trees and their per-node predicted labels as test_predictions.jsonl (format in the module docstring)."""
    if len(trees) != len(predictions):
        raise ValueError(f"{len(predictions)} prediction lists for {len(trees)} trees")
    lines = []
    for i, (tree, pred) in enumerate(zip(trees, predictions)):
        if len(pred) != len(tree):
            raise ValueError(f"tree {i}: {len(pred)} predictions for {len(tree)} nodes")
        lines.append(json.dumps({"tree": tree.to_ptb(), "spans": [list(s) for s in tree.spans],
                                 "gold": list(tree.labels), "pred": [int(p) for p in pred]}) + "\n")
    return atomic_write_text(path, "".join(lines))


def read_predictions(path: Path) -> list[tuple[BinaryTree, list[int]]]:
    """(gold tree, predicted labels) per line of a test_predictions.jsonl (or .jsonl.gz, as the campaign keeps it)."""
    out = []
    try:
        lines = (split_lines(decode_text(gzip.decompress(path.read_bytes()), str(path))) if path.suffix == ".gz"
                 else read_lines(path))
    except TextFileError as err:
        raise ReportError(str(err)) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:  # not gzip, or cut short
        raise ReportError(f"{path}: not a whole gzip file ({err})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            tree = BinaryTree.from_ptb(record["tree"], str(path), n)
            pred = [int(p) for p in record["pred"]]
        except (ValueError, KeyError, TypeError) as err:  # bad JSON, a missing key, a bad tree
            raise ReportError(f"{path}:{n}: not a prediction record ({err})") from None
        if len(pred) != len(tree) or not all(0 <= p < len(LABEL_NAMES) for p in pred):
            raise ReportError(f"{path}:{n}: expected a 0-4 label for each of the tree's {len(tree)} nodes, "
                              f"got {pred}")
        out.append((tree, pred))
    return out
