"""Binary trees -> wordpiece spans -> padded batches.

Leaves are split into wordpieces by the encoder's fast tokenizer (`is_split_into_words`, `word_ids`), never by
substring search, so a repeated phrase maps to its own position. Spans are half-open wordpiece ranges in the
encoder's input, i.e. already shifted past `[CLS]` / `<s>`.

Over-long input is truncated at the encoder's limit: words past it get the empty span (0, 0), node spans are
clipped, and nodes left with no wordpiece are dropped (counted in `EncodedTree.dropped_nodes`). A child that
was dropped is re-pointed to its first word, which is truncated too, so it contributes nothing.

A batch is a dict of tensors, padded to the longest sentence (T), the most words (W) and most nodes (N):
  input_ids, attention_mask   [B, T]
  word_spans                  [B, W, 2]  wordpiece span of each word; (0, 0) when truncated or padding
  node_spans                  [B, N, 2]  wordpiece span of each internal node, pre-order, root first
  node_children               [B, N, 2]  child >= 0: node index; child < 0: word -(w + 1)  (as in tree.py)
  node_height                 [B, N]     1 for nodes whose children are both words, else 1 + max child height
  node_mask                   [B, N]     True for real nodes
  labels                      [B, N]     5-class label, -1 where unlabeled or padding
  index                       [B]        position of each tree in its dataset
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from sentibert.data.tree import UNLABELED, BinaryTree, normalize_token, word_child

log = logging.getLogger(__name__)
IGNORE = -1  # label value skipped by the loss and the metrics


@dataclass(frozen=True)
class EncodedTree:
    input_ids: list[int]
    word_spans: list[tuple[int, int]]
    node_spans: list[tuple[int, int]]
    node_children: list[tuple[int, int]]
    node_height: list[int]
    labels: list[int]
    kept_nodes: list[int]  # original node index of each kept node
    dropped_nodes: int


def wordpiece_spans(word_ids: Sequence[int | None], n_words: int) -> list[tuple[int, int]]:
    """Each word's wordpiece span [start, end) from a fast tokenizer's `word_ids()`; (0, 0) for a word
    that has no wordpieces (cut by truncation, or dropped by the tokenizer)."""
    spans = [(0, 0)] * n_words
    for pos, w in enumerate(word_ids):
        if w is not None:
            start, end = spans[w]
            spans[w] = (pos, pos + 1) if end == 0 else (start, pos + 1)
    return spans


def encode_tree(tree: BinaryTree, tokenizer, max_length: int | None = None) -> EncodedTree:
    max_length = max_length or tokenizer.model_max_length
    words = [normalize_token(t) for t in tree.tokens]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    word_spans = wordpiece_spans(enc.word_ids(), len(words))

    # A node's wordpiece span runs from its first to its last word that still has wordpieces.
    node_spans = []
    for start, end in tree.spans:
        pieces = [word_spans[w] for w in range(start, end) if word_spans[w][1] > 0]
        node_spans.append((pieces[0][0], pieces[-1][1]) if pieces else (0, 0))
    kept = [i for i, (s, e) in enumerate(node_spans) if e > s]
    new_index = {old: new for new, old in enumerate(kept)}

    def remap(child: int) -> int:
        if child < 0:
            return child
        return new_index.get(child, word_child(tree.spans[child][0]))

    children = [tuple(remap(c) for c in tree.children[i]) for i in kept]
    height = [0] * len(kept)
    for i in reversed(range(len(kept))):  # pre-order: children come after their parent
        height[i] = 1 + max((height[c] for c in children[i] if c >= 0), default=0)
    return EncodedTree(
        input_ids=list(enc["input_ids"]),
        word_spans=word_spans,
        node_spans=[node_spans[i] for i in kept],
        node_children=children,
        node_height=height,
        labels=[IGNORE if tree.labels[i] == UNLABELED else tree.labels[i] for i in kept],
        kept_nodes=kept,
        dropped_nodes=len(tree) - len(kept),
    )


class TreeDataset(Dataset):
    """Trees encoded once for one tokenizer; reports how many nodes truncation dropped."""

    def __init__(self, trees: Sequence[BinaryTree], tokenizer, max_length: int | None = None, name: str = ""):
        self.trees = list(trees)
        self.items = [encode_tree(t, tokenizer, max_length) for t in self.trees]
        self.pad_id = tokenizer.pad_token_id
        self.dropped_nodes = sum(item.dropped_nodes for item in self.items)
        self.truncated_trees = sum(item.dropped_nodes > 0 for item in self.items)
        if self.dropped_nodes:
            log.warning("%s: truncation at %s wordpieces dropped %d nodes in %d trees", name or "dataset",
                        max_length or tokenizer.model_max_length, self.dropped_nodes, self.truncated_trees)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, EncodedTree]:
        return i, self.items[i]

    @property
    def lengths(self) -> list[int]:
        return [len(item.input_ids) for item in self.items]

    def collate(self, batch: list[tuple[int, EncodedTree]], pad_to: int | None = None) -> dict[str, torch.Tensor]:
        return collate(batch, self.pad_id, pad_to)


def collate(batch: list[tuple[int, EncodedTree]], pad_id: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad to the longest item in the batch (dynamic padding); `pad_to` forces a fixed length (benchmarks)."""
    items = [item for _, item in batch]
    B = len(items)
    T = max(pad_to or 0, max(len(it.input_ids) for it in items))
    W = max(len(it.word_spans) for it in items)
    N = max(len(it.node_spans) for it in items)
    out = {
        "input_ids": torch.full((B, T), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros(B, T, dtype=torch.long),
        "word_spans": torch.zeros(B, W, 2, dtype=torch.long),
        "node_spans": torch.zeros(B, N, 2, dtype=torch.long),
        "node_children": torch.zeros(B, N, 2, dtype=torch.long),
        "node_height": torch.zeros(B, N, dtype=torch.long),
        "node_mask": torch.zeros(B, N, dtype=torch.bool),
        "labels": torch.full((B, N), IGNORE, dtype=torch.long),
        "index": torch.tensor([i for i, _ in batch], dtype=torch.long),
    }
    for b, it in enumerate(items):
        t, w, n = len(it.input_ids), len(it.word_spans), len(it.node_spans)
        out["input_ids"][b, :t] = torch.tensor(it.input_ids)
        out["attention_mask"][b, :t] = 1
        out["word_spans"][b, :w] = torch.tensor(it.word_spans).view(w, 2)
        if n:
            out["node_spans"][b, :n] = torch.tensor(it.node_spans)
            out["node_children"][b, :n] = torch.tensor(it.node_children)
            out["node_height"][b, :n] = torch.tensor(it.node_height)
            out["labels"][b, :n] = torch.tensor(it.labels)
        out["node_mask"][b, :n] = True
    return out


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length (little padding), in a seeded random order; resumable mid-epoch.

    Each epoch shuffles indices, sorts them by length within chunks of `bucket_batches` batches, cuts batches,
    and shuffles the batches. Under DDP every rank builds the same list and takes every `num_replicas`-th batch
    (trimmed so all ranks take the same number of steps). `state_dict` records the epoch and `start_batch`, how many
    of its batches were served. Iterating serves them lazily; the training loop instead hands `batches(epoch)` to a
    DataLoader, whose workers run ahead, and advances `start_batch` itself per batch consumed.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 bucket_batches: int = 50, drop_last: bool = False, num_replicas: int = 1, rank: int = 0):
        self.lengths, self.batch_size, self.shuffle, self.seed = list(lengths), batch_size, shuffle, seed
        self.bucket_batches, self.drop_last = bucket_batches, drop_last
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start_batch = 0, 0

    def batches(self, epoch: int) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed * 100_003 + epoch)
        if self.shuffle:
            rng.shuffle(order)
        chunk = self.batch_size * self.bucket_batches
        batches = []
        for start in range(0, len(order), chunk):
            bucket = sorted(order[start:start + chunk], key=self.lengths.__getitem__)
            batches += [bucket[i:i + self.batch_size] for i in range(0, len(bucket), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        per_rank = len(batches) // self.num_replicas if self.num_replicas > 1 else len(batches)
        return batches[self.rank::self.num_replicas][:per_rank]

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        for i in range(self.start_batch, len(batches)):
            self.start_batch = i + 1
            yield batches[i]
        self.epoch, self.start_batch = self.epoch + 1, 0

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.start_batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start_batch": self.start_batch, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start_batch, self.seed = state["epoch"], state["start_batch"], state["seed"]
