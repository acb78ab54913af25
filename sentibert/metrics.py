"""The SentiBERT paper's evaluation, from per-node predictions.

Input per tree: predicted 5-class labels for its internal nodes in pre-order, root first (the order of
`BinaryTree.labels`), scored against the gold labels. "3-class" below is `to_sst3` (0-1 negative,
2 neutral, 3-4 positive). Accuracies are fractions in [0, 1]; each bucket is `{"acc": ..., "n": ...}`
with n the number of scored items, and buckets with nothing in them are left out.

- `phrase_acc`: 5-class, every node incl. the root (SST-phrase); `sst5_root_acc`: 5-class, roots.
- `sst3_root_acc`: 3-class, roots.
- `sst2_root_acc`: roots whose gold label is not neutral; a prediction is right when its polarity
  (0-1 vs 3-4) matches the gold one, and a neutral prediction is wrong. A 5-class model has no
  binary decision of its own; counting "neutral" as wrong never flatters it, unlike choosing a side
  for it, and needs no probabilities. (The paper trains a separate binary model for SST-2.)
- `negation`: trees bucketed by their `negations` count, "0", "1", "2+"; 3-class accuracy over all
  nodes of the trees in each bucket.
- `contrast`: over the trees with a contrast triple; one item per triple, right only when all three
  of its nodes are right in 3-class.
- `local_difficulty`: nodes grouped by `child_switches`, "0", "1", "2"; 3-class accuracy.
- `global_difficulty`: trees binned by `tree_switches`, "0-4", "5-9", ..., "20-24" (trees with 25 or
  more are in no bin, as in the paper); 3-class accuracy over all nodes of the trees in each bin.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from sentibert.analysis import analyze
from sentibert.datasets import NEUTRAL, to_sst2, to_sst3
from sentibert.tree import BinaryTree

GLOBAL_BINS = ["0-4", "5-9", "10-14", "15-19", "20-24"]  # tree_switches // 5 indexes them


def _mean(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def _bucket(hits: list[bool]) -> dict:
    return {"acc": _mean(hits), "n": len(hits)}


def _buckets(groups: dict[str, list[bool]], order: list[str]) -> dict:
    return {key: _bucket(groups[key]) for key in order if groups[key]}


def _negation_bucket(count: int) -> str:
    return "2+" if count >= 2 else str(count)


def evaluate_records(records: Sequence[dict], predictions: Sequence[Sequence[int]]) -> dict:
    """Metrics from analysis records (`sentibert.analysis.analyze`) and one prediction list per record."""
    if len(records) != len(predictions):
        raise ValueError(f"{len(predictions)} prediction lists for {len(records)} trees")
    if not records:
        raise ValueError("no trees to evaluate")
    phrase, root5, root3, root2, contrast = [], [], [], [], []
    negation, local, global_ = defaultdict(list), defaultdict(list), defaultdict(list)
    for i, (record, pred) in enumerate(zip(records, predictions)):
        gold, pred = record["phrase_labels"], [int(p) for p in pred]  # also accepts numpy / torch values
        if len(pred) != len(gold):
            raise ValueError(f"tree {i}: {len(pred)} predictions for {len(gold)} nodes")
        right3 = [to_sst3(p) == to_sst3(g) for p, g in zip(pred, gold)]
        phrase += [p == g for p, g in zip(pred, gold)]
        root5.append(pred[0] == gold[0])
        root3.append(right3[0])
        if gold[0] != NEUTRAL:
            root2.append(to_sst2(pred[0]) == to_sst2(gold[0]))  # a neutral prediction (None) is wrong
        negation[_negation_bucket(record["negations"])] += right3
        for switches, right in zip(record["child_switches"], right3):
            local[str(switches)].append(right)
        if record["tree_switches"] < 5 * len(GLOBAL_BINS):
            global_[GLOBAL_BINS[record["tree_switches"] // 5]] += right3
        if record["contrast"]:
            contrast.append(all(right3[node] for node in record["contrast"]))
    return {
        "phrase_acc": _mean(phrase),
        "sst5_root_acc": _mean(root5),
        "sst3_root_acc": _mean(root3),
        "sst2_root_acc": _mean(root2),  # None when every gold root is neutral
        "n": {"phrases": len(phrase), "roots": len(root5), "sst2_roots": len(root2)},
        "negation": _buckets(negation, ["0", "1", "2+"]),
        "contrast": _bucket(contrast),
        "local_difficulty": _buckets(local, ["0", "1", "2"]),
        "global_difficulty": _buckets(global_, GLOBAL_BINS),
    }


def evaluate_predictions(trees: Sequence[BinaryTree], predictions: Sequence[Sequence[int]]) -> dict:
    """Metrics for labelled trees and per-node 5-class predictions (pre-order, root first)."""
    return evaluate_records([analyze(tree) for tree in trees], predictions)


def flatten(metrics: dict, prefix: str = "") -> dict[str, float | int | None]:
    """`{"negation": {"0": {"acc": a}}}` -> `{"negation/0/acc": a}`, for loggers."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat
