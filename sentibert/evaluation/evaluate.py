"""Evaluate a model on trees: the paper's metrics (sentibert.evaluation.metrics) for treebanks, the transfer
metrics for labelled text. `evaluate_checkpoint` is `sentibert evaluate checkpoint=NAME|DIR [data=sst] [split=test]`
(a bundled model's name or a directory, as `sentibert.bundles` reads them): it writes metrics.json and
<split>_predictions.jsonl (sentibert.runs) to the run directory, runs/evaluate/<date>/ unless hydra.run.dir says
otherwise. Training uses `evaluate_model` for dev and test.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

from sentibert import runs
from sentibert.bundles import load_checkpoint, model_dir
from sentibert.data.datasets import DataError, first_batches, is_labelled_text, load_splits, task_classes
from sentibert.data.tree import BinaryTree
from sentibert.device import pick_device
from sentibert.evaluation.metrics import HEADLINE_METRICS, evaluate_predictions, transfer_metrics
from sentibert.io import atomic_write_json
from sentibert.parsing import parse

log = logging.getLogger(__name__)


def predict_labels(model, trees: Sequence[BinaryTree], batch_size: int) -> list[list[int]]:
    """5-class prediction for every node of every tree, in the trees' order."""
    # Batches of similar length pad little: predict in length order, hand back in the input order.
    order = sorted(range(len(trees)), key=lambda i: len(trees[i].tokens))
    labels: list[list[int]] = [[] for _ in trees]
    for i, prediction in zip(order, model.predict_trees([trees[i] for i in order], batch_size)):
        # Nodes truncated away (past the encoder's max length) get the sentence's label.
        labels[i] = [prediction.label if label is None else label for label in prediction.labels]
    return labels


def evaluate_model(model, trees: Sequence[BinaryTree], batch_size: int,
                   text: bool = False) -> tuple[dict, list[list[int]]]:
    """-> (metrics, the predictions): the paper's SST metrics (sentibert.evaluation.metrics; 5- or 3-class, as the model) for
    treebanks; accuracy, macro-F1 and Pearson r of the root (`transfer_metrics`) for labelled text (`text`: a label on
    the root only; datasets.is_labelled_text)."""
    predictions = predict_labels(model, trees, batch_size)
    if text:
        gold, predicted = [t.root_label for t in trees], [p[0] for p in predictions]
        return transfer_metrics(gold, predicted, model.hparams["num_classes"]), predictions
    return evaluate_predictions(trees, predictions, model.hparams["num_classes"]), predictions


def summary(metrics: dict) -> str:
    return " ".join(f"{k}={metrics[k]:.4f}" for k in HEADLINE_METRICS if metrics.get(k) is not None)


def evaluate_checkpoint(cfg: DictConfig, run_dir: Path) -> dict:
    """`sentibert evaluate`: the metrics of cfg.checkpoint on cfg.data's cfg.split, written to run_dir."""
    device = pick_device(cfg.device, "device")  # before the model loads
    model = load_checkpoint(cfg.checkpoint).to(device)  # a bundle's name, a checkpoint or a run directory
    if model.hparams["num_classes"] != task_classes(cfg.data):
        raise DataError(f"{cfg.checkpoint} predicts {model.hparams['num_classes']} classes but {cfg.data.dataset}"
                        f" has {task_classes(cfg.data)}: evaluate it on the task it was trained for")
    trees = first_batches(load_splits(cfg.data, [cfg.split], parse.load_parser)[cfg.split], cfg.data.eval_batch_size,
                          cfg.limit_eval_batches)
    metrics, predictions = evaluate_model(model, trees, cfg.data.eval_batch_size, is_labelled_text(cfg.data))
    atomic_write_json(run_dir / runs.METRICS_FILE, {
        "checkpoint": str(model_dir(cfg.checkpoint).resolve()), "dataset": cfg.data.dataset, "split": cfg.split,
        **metrics})
    runs.write_predictions(run_dir / runs.predictions_file(cfg.split), trees, predictions, model.label_names,
                           cfg.data.label_view)
    log.info("%s %s (%d trees): %s -> %s", cfg.data.dataset, cfg.split, len(trees), summary(metrics),
             run_dir / runs.METRICS_FILE)
    return metrics
