"""The SentiBERT paper's evaluation, from per-node predictions.

Input per tree: predicted labels for its internal nodes in pre-order, root first (the order of
`BinaryTree.labels`), scored against the gold 5-class labels. The predictions are 5-class, or 3-class
from a model trained on the SST-3 view (`num_classes=3`: the paper's SST-3 model). "3-class" below is
`to_sst3` (0-1 negative, 2 neutral, 3-4 positive). Accuracies are fractions in [0, 1]; each bucket is
`{"acc": ..., "n": ...}` with n the number of scored items, and buckets with nothing in them are left out.

A 5-class model (SST-phrase, SST-5):
- `phrase_acc`: 5-class, every node incl. the root (SST-phrase); `sst5_root_acc`: 5-class, roots.
- `sst3_from_5class_root_acc`: the 5-class root prediction collapsed to 3 classes. A diagnostic: the
  paper's SST-3 number comes from a separately trained 3-class model (below).
- `sst2_from_5class_root_acc`: roots whose gold label is not neutral; right when the predicted polarity
  (0-1 vs 3-4) matches the gold one, and a neutral prediction is wrong. A diagnostic too: the paper's
  SST-2 is a binary model trained on GLUE SST-2 (`sentibert.data.transfer`).
A 3-class model (SST-3):
- `phrase_acc`: 3-class, every node; `sst3_root_acc`: 3-class, roots (the paper's SST-3 number).
Both: the fine-grained analyses below, always in 3 classes.
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

import numpy as np

from sentibert.data.labels import NEUTRAL, to_sst2, to_sst3
from sentibert.data.tree import BinaryTree
from sentibert.evaluation.analysis import analyze

GLOBAL_BINS = ["0-4", "5-9", "10-14", "15-19", "20-24"]  # tree_switches // 5 indexes them
# The headline metrics, by what is evaluated (the one list train, evaluate and report share).
SST5_METRICS = ("phrase_acc", "sst5_root_acc", "sst3_from_5class_root_acc", "sst2_from_5class_root_acc")
SST3_METRICS = ("phrase_acc", "sst3_root_acc")
TRANSFER_METRICS = ("accuracy", "macro_f1", "pearson")  # labelled-text datasets (`transfer_metrics`)
HEADLINE_METRICS = tuple(dict.fromkeys(SST5_METRICS + SST3_METRICS + TRANSFER_METRICS))
# The fine-grained analyses: metrics key -> its buckets in order (None: the metric is a single bucket).
ANALYSES = {"negation": ["0", "1", "2+"], "contrast": None, "local_difficulty": ["0", "1", "2"],
            "global_difficulty": GLOBAL_BINS}
# What tables and plots call each metric (sentibert.evaluation.report and .results).
METRIC_LABELS = {"phrase_acc": "phrase", "sst5_root_acc": "SST-5 root", "sst3_root_acc": "SST-3 root",
                 "sst3_from_5class_root_acc": "SST-3 root (5-class model)",
                 "sst2_from_5class_root_acc": "SST-2 root (5-class model)", "contrast": "contrast",
                 "accuracy": "accuracy", "pearson": "Pearson r", "macro_f1": "macro-F1"}


def headline_metrics(text_dataset: bool, num_classes: int) -> tuple[str, ...]:
    """The metrics reported for a model with `num_classes` on a treebank or a labelled-text dataset."""
    if text_dataset:
        return TRANSFER_METRICS
    if num_classes not in (3, 5):
        raise ValueError(f"a {num_classes}-class model cannot be scored on SST's labels: train with 5 or 3 classes")
    return SST5_METRICS if num_classes == 5 else SST3_METRICS


def _mean(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def _bucket(hits: list[bool]) -> dict:
    return {"acc": _mean(hits), "n": len(hits)}


def _buckets(groups: dict[str, list[bool]], order: list[str]) -> dict:
    return {key: _bucket(groups[key]) for key in order if groups[key]}


def _negation_bucket(count: int) -> str:
    return "2+" if count >= 2 else str(count)


def evaluate_records(records: Sequence[dict], predictions: Sequence[Sequence[int]], num_classes: int = 5) -> dict:
    """Metrics from analysis records (`sentibert.evaluation.analysis.analyze`) and one prediction list per record, with
    `num_classes` (5, or 3 for an SST-3 model) classes."""
    headline_metrics(False, num_classes)  # refuses other class counts
    as_sst3 = to_sst3 if num_classes == 5 else _check_sst3
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
        right3 = [as_sst3(p) == to_sst3(g) for p, g in zip(pred, gold)]
        phrase += [p == g for p, g in zip(pred, gold)] if num_classes == 5 else right3
        root5.append(pred[0] == gold[0])
        root3.append(right3[0])
        if gold[0] != NEUTRAL and num_classes == 5:
            root2.append(to_sst2(pred[0]) == to_sst2(gold[0]))  # a neutral prediction (None) is wrong
        negation[_negation_bucket(record["negations"])] += right3
        for switches, right in zip(record["child_switches"], right3):
            local[str(switches)].append(right)
        if record["tree_switches"] < 5 * len(GLOBAL_BINS):
            global_[GLOBAL_BINS[record["tree_switches"] // 5]] += right3
        if record["contrast"]:
            contrast.append(all(right3[node] for node in record["contrast"]))
    headline = ({"phrase_acc": _mean(phrase), "sst5_root_acc": _mean(root5),
                 "sst3_from_5class_root_acc": _mean(root3),
                 "sst2_from_5class_root_acc": _mean(root2)}  # None when every gold root is neutral
                if num_classes == 5 else {"phrase_acc": _mean(phrase), "sst3_root_acc": _mean(root3)})
    return {
        **headline,
        "n": {"phrases": len(phrase), "roots": len(root5), **({"sst2_roots": len(root2)} if num_classes == 5 else {})},
        "negation": _buckets(negation, ANALYSES["negation"]),
        "contrast": _bucket(contrast),
        "local_difficulty": _buckets(local, ANALYSES["local_difficulty"]),
        "global_difficulty": _buckets(global_, ANALYSES["global_difficulty"]),
    }


def _check_sst3(label: int) -> int:
    if not 0 <= label <= 2:
        raise ValueError(f"not a 3-class sentiment label (0-2): {label}")
    return label


def evaluate_predictions(trees: Sequence[BinaryTree], predictions: Sequence[Sequence[int]],
                         num_classes: int = 5) -> dict:
    """Metrics for labelled trees and per-node predictions (pre-order, root first) in `num_classes` classes."""
    return evaluate_records([analyze(tree) for tree in trees], predictions, num_classes)


def flatten(metrics: dict, prefix: str = "") -> dict[str, float | int | None]:
    """`{"negation": {"0": {"acc": a}}}` -> `{"negation/0/acc": a}`, for loggers."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat


# ---- labelled-text datasets (transfer) ---------------------------------------------------------------------
def transfer_metrics(gold: Sequence[int], predicted: Sequence[int], num_classes: int) -> dict[str, float | None]:
    """Accuracy, macro-F1 over the classes present in gold or predictions, Pearson r of the class indices."""
    gold, predicted = np.asarray(gold), np.asarray(predicted)
    f1s = []
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (gold == c))
        support = np.sum(gold == c) + np.sum(predicted == c)
        if support:
            f1s.append(2 * tp / support)
    constant = gold.std() == 0 or predicted.std() == 0
    return {
        "accuracy": float(np.mean(gold == predicted)),
        "macro_f1": float(np.mean(f1s)),
        "pearson": None if constant else float(np.corrcoef(gold, predicted)[0, 1]),  # undefined: JSON null
        "n": int(len(gold)),
    }
