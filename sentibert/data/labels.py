"""Label views of SST's 5-class labels (0-4: very negative ... very positive).

- SST-phrase: the 5-class label of every internal node, root included (`tree.labels`); single words
  are not phrase nodes.
- SST-5: the root's 5-class label (`tree.root_label`).
- SST-3: `to_sst3`: 0-1 negative, 2 neutral, 3-4 positive. `relabel(tree, "sst3")` maps every node and
  word, for training the paper's separate 3-class model (`data.label_view=sst3`).
- SST-2: `to_sst2` on the root of `sst2_trees(trees)`, the trees whose root is not neutral
  (6920 / 872 / 1821 of the standard split).

Class names, lowest class first, are a task's too (`label_names`): SST's five, the SST-3 view's three, SST-2's two,
and EmoInt's ordinal intensities (SemEval-2018 Task 1, EI-oc: no / low / moderate / high amount of the emotion). A
model carries the names of the task it was trained on (`TreeSentimentModel.label_names`); every output shows them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Sequence

from sentibert.data import DataError
from sentibert.data.tree import UNLABELED, BinaryTree

NEUTRAL = 2


def _check_label(label: int) -> int:
    if not 0 <= label <= 4:
        raise ValueError(f"not a 5-class sentiment label (0-4): {label}")
    return label


def to_sst3(label: int) -> int:
    """5-class -> 3-class: 0-1 -> 0 (negative), 2 -> 1 (neutral), 3-4 -> 2 (positive)."""
    label = _check_label(label)
    return 0 if label < NEUTRAL else 1 if label == NEUTRAL else 2


def to_sst2(label: int) -> int | None:
    """5-class -> binary: 0-1 -> 0 (negative), 3-4 -> 1 (positive), neutral -> None (no SST-2 label)."""
    label = _check_label(label)
    return None if label == NEUTRAL else int(label > NEUTRAL)


LABEL_VIEWS: dict[str, Callable[[int], int]] = {"sst3": to_sst3}  # data.label_view -> label map

SST5_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")
SST3_NAMES = ("negative", "neutral", "positive")
SST2_NAMES = ("negative", "positive")
VIEW_NAMES = {"sst3": SST3_NAMES}  # data.label_view -> its classes' names
EMOTIONS = {"anger": "anger", "fear": "fear", "joy": "joy", "sad": "sadness"}  # EmoInt dataset suffix -> noun
DATASET_NAMES = {"sst": SST5_NAMES, "sst-paper": SST5_NAMES, "sst2-glue": SST2_NAMES,
                 **{f"emoint-{suffix}": tuple(f"{level} {noun}" for level in ("no", "low", "moderate", "high"))
                    for suffix, noun in EMOTIONS.items()}}
COUNT_NAMES = {len(names): names for names in (SST5_NAMES, SST3_NAMES, SST2_NAMES)}


def label_names(num_classes: int, dataset: str | None = None, label_view: str | None = None,
                names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The names of a task's classes, lowest first: `names` (a config's own, data=labelled), else its label view's,
    else its dataset's. With no dataset (a checkpoint or file saved without names): SST's for 5, 3 or 2 classes.
    Otherwise, or when the count differs: `class 0`, `class 1`, ..."""
    names = names or VIEW_NAMES.get(label_view) or DATASET_NAMES.get(dataset) or (
        COUNT_NAMES.get(num_classes) if dataset is None else None)
    if not names or len(names) != num_classes:
        names = [f"class {k}" for k in range(num_classes)]
    return tuple(names)


def relabel(tree: BinaryTree, view: str) -> BinaryTree:
    """The tree with every labelled node and word mapped by LABEL_VIEWS[view]; unlabelled ones stay so."""
    if view not in LABEL_VIEWS:
        raise DataError(f"unknown label view {view!r}; choose from: {', '.join(LABEL_VIEWS)}")
    to = LABEL_VIEWS[view]
    return dataclasses.replace(tree, labels=tuple(UNLABELED if x == UNLABELED else to(x) for x in tree.labels),
                               word_labels=tuple(UNLABELED if x == UNLABELED else to(x) for x in tree.word_labels))


def sst2_trees(trees: Iterable[BinaryTree]) -> list[BinaryTree]:
    """The SST-2 sentences: those whose root is not neutral."""
    return [t for t in trees if _check_label(t.root_label) != NEUTRAL]
