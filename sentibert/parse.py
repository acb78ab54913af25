"""Raw text -> binary constituency trees, offline, with Stanza."""
from __future__ import annotations

from typing import Sequence

from sentibert.tree import BinaryTree


# ---- scoring -------------------------------------------------------------------------------------------
def bracket_spans(tree: BinaryTree) -> set[tuple[int, int]]:
    """The brackets we score: spans of internal nodes, minus the root (it always covers the sentence).
    Single words are never nodes of a BinaryTree, so they are not counted either."""
    return set(tree.spans[1:])


def bracket_f1(gold: Sequence[BinaryTree], predicted: Sequence[BinaryTree]) -> float:
    """Unlabeled bracket F1 (0-1), micro-averaged over the corpus: 2 * matched / (gold + predicted)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold trees but {len(predicted)} predicted")
    matched = n_gold = n_pred = 0
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if g.tokens != p.tokens:
            raise ValueError(f"tree {i + 1}: gold and predicted leaves differ: {g.text!r} vs {p.text!r}")
        g_spans, p_spans = bracket_spans(g), bracket_spans(p)
        matched += len(g_spans & p_spans)
        n_gold += len(g_spans)
        n_pred += len(p_spans)
    return 2 * matched / (n_gold + n_pred) if n_gold + n_pred else 1.0
