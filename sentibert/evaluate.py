"""`sentibert evaluate checkpoint=DIR [data=sst] [split=test]`: the paper's metrics for a saved model.

Writes metrics.json (sentibert.metrics: phrase, SST-5/3/2 root accuracy, negation, contrast, local and
global difficulty) and <split>_predictions.jsonl (gold trees and predicted node labels, sentibert.report's format)
to the run directory, runs/evaluate/<date>/ unless hydra.run.dir says otherwise. Training uses `evaluate_model` for dev and test.
"""
from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import DictConfig

from sentibert.config import hydra_command
from sentibert.datasets import LABEL_VIEWS, DataError, dataset_info, load_split, split_path
from sentibert.io import atomic_write_json
from sentibert.metrics import HEADLINE_METRICS, evaluate_predictions
from sentibert.model import TreeSentimentModel
from sentibert.report import write_predictions
from sentibert.transfer import transfer_metrics
from sentibert.tree import BinaryTree

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


def load_splits(data: DictConfig, splits: Sequence[str] = SPLITS) -> dict[str, list[BinaryTree]]:
    """The trees of the named splits. With `data.dev_from_train` > 0, dev is that fraction of train, drawn with
    `data.dev_seed`, and train is the rest (datasets without a dev split: sst-paper)."""
    def read(split: str) -> list[BinaryTree]:
        return load_split(data.dataset, split, data.root)

    held_out = {}
    if data.dev_from_train > 0 and {"train", "dev"} & set(splits):
        train = read("train")
        dev = set(random.Random(data.dev_seed).sample(range(len(train)), round(data.dev_from_train * len(train))))
        held_out = {"train": [t for i, t in enumerate(train) if i not in dev],
                    "dev": [t for i, t in enumerate(train) if i in dev]}
        for split, trees in held_out.items():
            if not trees:
                source = split_path(data.dataset, "train", data.root)
                raise DataError(f"data.dev_from_train={data.dev_from_train} leaves {split} empty: it holds out "
                                f"{len(dev)} of the {len(train)} trees of {source}; choose a fraction that leaves "
                                "trees in both")
    return {split: held_out[split] if split in held_out else read(split) for split in splits}


def task_classes(data: DictConfig) -> int:
    """How many classes a model for this data config predicts: the dataset's, or 3 with label_view=sst3."""
    info = dataset_info(data.dataset)
    if data.label_view is None:
        return info.num_classes
    if data.label_view not in LABEL_VIEWS:
        raise DataError(f"data.label_view={data.label_view!r}: choose from {', '.join(LABEL_VIEWS)} (or null)")
    if info.text_columns:
        raise DataError(f"data.label_view applies to SST trees, not to {data.dataset}'s labels")
    return len(set(map(LABEL_VIEWS[data.label_view], range(info.num_classes))))


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
                   dataset: str = "sst") -> tuple[dict, list[list[int]]]:
    """-> (metrics, the predictions): the paper's SST metrics (sentibert.metrics; 5- or 3-class, as the model) for
    treebanks; accuracy, macro-F1 and Pearson r of the root (sentibert.transfer) for labelled-text datasets."""
    predictions = predict_labels(model, trees, batch_size)
    info = dataset_info(dataset)
    if info.text_columns:
        gold, predicted = [t.root_label for t in trees], [p[0] for p in predictions]
        return transfer_metrics(gold, predicted, info.num_classes), predictions
    return evaluate_predictions(trees, predictions, model.hparams["num_classes"]), predictions


def first_batches(trees: Sequence[BinaryTree], batch_size: int, limit: int | None) -> list[BinaryTree]:
    """The first `limit` x `batch_size` trees, or all of them when `limit` is None (limit_eval_batches)."""
    return list(trees[:limit * batch_size] if limit else trees)


class DeviceError(ValueError):
    """A device that is not one, or not here; the message names the setting and the fix."""


def pick_device(name: str, option: str = "trainer.device") -> torch.device:
    """The device `name` names, checked before anything loads: `auto` is cuda when there is one, else cpu; cuda
    (cuda:N) that this machine lacks is a DeviceError naming `option`, a config key or a flag such as --device."""
    flag = option.startswith("-")
    setting = f"{option} {name}" if flag else f"{option}={name}"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"{setting}: not a device; use cpu, cuda or cuda:N{'' if flag else ', or auto'}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fix = f"{option} cpu" if flag else "cpu or auto"
            raise DeviceError(f"{setting}: no CUDA device is available; use {fix}")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"{setting}: there is no such CUDA device, only cuda:0 to "
                              f"cuda:{torch.cuda.device_count() - 1}")
    return device


def summary(metrics: dict) -> str:
    return " ".join(f"{k}={metrics[k]:.4f}" for k in HEADLINE_METRICS if metrics.get(k) is not None)


def evaluate(cfg: DictConfig, run_dir: Path) -> dict:
    device = pick_device(cfg.device, "device")  # before the model loads
    model = TreeSentimentModel.from_pretrained(cfg.checkpoint).to(device)
    if model.hparams["num_classes"] != task_classes(cfg.data):
        raise DataError(f"{cfg.checkpoint} predicts {model.hparams['num_classes']} classes but {cfg.data.dataset}"
                        f" has {task_classes(cfg.data)}: evaluate it on the task it was trained for")
    trees = first_batches(load_splits(cfg.data, [cfg.split])[cfg.split], cfg.data.eval_batch_size,
                          cfg.limit_eval_batches)
    metrics, predictions = evaluate_model(model, trees, cfg.data.eval_batch_size, cfg.data.dataset)
    atomic_write_json(run_dir / "metrics.json", {
        "checkpoint": str(Path(cfg.checkpoint).resolve()), "dataset": cfg.data.dataset, "split": cfg.split,
        **metrics})
    write_predictions(run_dir / f"{cfg.split}_predictions.jsonl", trees, predictions)
    log.info("%s %s (%d trees): %s -> %s", cfg.data.dataset, cfg.split, len(trees), summary(metrics),
             run_dir / "metrics.json")
    return metrics


main = hydra_command("evaluate", evaluate)  # `sentibert evaluate checkpoint=DIR [overrides]`

if __name__ == "__main__":
    main()
