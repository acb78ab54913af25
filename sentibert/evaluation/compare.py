"""Two models phrase by phrase (`sentibert compare A B`): where their labels differ, and which differences matter.

    found = disagreements(predictions_a, predictions_b, gold_classes=5)   # the same trees, in the same order
    print(summary(found, predictions_a, predictions_b, "A", "B"))
    page = to_html(found, predictions_a, predictions_b, "A", "B")

A disagreement is a phrase node (the root included) whose label differs between the two models. With gold labels
(SST trees: every node; labelled text: the root), the ones where one model is right and the other wrong come first
("decided"); then the rest. Within each group roots come before phrases, then the larger probability gap first (the
total variation distance between the two distributions: half the sum of the absolute differences). A sentence ranks
by its first disagreement. Gold labels are mapped to the models' classes: SST's 5 to 3 (`to_sst3`) or 2 (`to_sst2`,
where neutral has no gold). Nodes a model dropped (truncation) are skipped.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from sentibert.data.labels import to_sst2, to_sst3
from sentibert.data.tree import UNLABELED, normalize_token
from sentibert.evaluation import render

if TYPE_CHECKING:
    from sentibert.models.model import TreePrediction

# (the data's classes, the models' classes) -> gold label in the models' classes (None: no gold for that label)
GOLD_VIEWS: dict[tuple[int, int], Callable[[int], int | None]] = {(5, 3): to_sst3, (5, 2): to_sst2}
TOP = 20  # disagreements listed in the summary
LIMIT = 200  # sentences drawn in the html


class CompareError(ValueError):
    """Predictions that cannot be compared; the message says why."""


@dataclass(frozen=True)
class Disagreement:
    sentence: int
    node: int
    label_a: int
    label_b: int
    gold: int | None  # in the models' classes; None: no gold label
    gap: float  # total variation distance between the two distributions

    @property
    def decided(self) -> bool:
        """Gold says one model is right and the other wrong."""
        return self.gold is not None and (self.label_a == self.gold) != (self.label_b == self.gold)

    @property
    def rank(self) -> tuple:
        return not self.decided, self.node != 0, -self.gap


def gold_view(data_classes: int | None, model_classes: int) -> Callable[[int], int | None]:
    """Gold labels of data with data_classes, in a model's classes (data_classes None: no gold at all)."""
    if data_classes is None:
        return lambda label: None
    if data_classes == model_classes:
        return lambda label: label
    if (data_classes, model_classes) not in GOLD_VIEWS:
        raise CompareError(f"the data has {data_classes} classes and the models {model_classes}: no gold labels fit")
    return GOLD_VIEWS[data_classes, model_classes]


def disagreements(a: Sequence[TreePrediction], b: Sequence[TreePrediction],
                  gold_classes: int | None = None) -> list[Disagreement]:
    """Every node where the two models' labels differ, most important first (the module docstring says how).
    gold_classes: how many classes the trees' labels have (None: ignore them)."""
    if len(a) != len(b) or any(pa.tree.spans != pb.tree.spans for pa, pb in zip(a, b)):
        raise CompareError("the two models' predictions are not over the same trees")
    if num_classes(a) != num_classes(b):
        raise CompareError(f"the models predict different numbers of classes ({num_classes(a)} and "
                           f"{num_classes(b)}): their labels cannot be compared")
    gold = gold_view(gold_classes, num_classes(a))
    found = []
    for s, (pa, pb) in enumerate(zip(a, b)):
        for node, (la, lb) in enumerate(zip(pa.labels, pb.labels)):
            if la is None or lb is None or la == lb:
                continue
            label = pa.tree.labels[node]
            gap = sum(abs(x - y) for x, y in zip(pa.probs[node], pb.probs[node])) / 2
            found.append(Disagreement(s, node, la, lb, None if label == UNLABELED else gold(label), gap))
    return sorted(found, key=lambda d: d.rank)


def num_classes(predictions: Sequence[TreePrediction]) -> int:
    return next((len(probs) for p in predictions for probs in p.probs if probs is not None), 0)


def sentence_order(found: Sequence[Disagreement]) -> list[int]:
    """The sentences with a disagreement, each ranked by its first (found is ranked already)."""
    return list(dict.fromkeys(d.sentence for d in found))


def by_sentence(found: Sequence[Disagreement]) -> dict[int, list[Disagreement]]:
    """Each sentence's disagreements, in their ranked order."""
    grouped: dict[int, list[Disagreement]] = {}
    for d in found:
        grouped.setdefault(d.sentence, []).append(d)
    return grouped


def gold_accuracy(predictions: Sequence[TreePrediction], gold_classes: int | None) -> float | None:
    """The share of gold-labelled nodes a model labels right (None without gold)."""
    hits = []
    gold = gold_view(gold_classes, num_classes(predictions))
    for p in predictions:
        hits += [label == gold(truth) for label, truth in zip(p.labels, p.tree.labels)
                 if label is not None and truth != UNLABELED and gold(truth) is not None]
    return sum(hits) / len(hits) if hits else None


def phrase(prediction: TreePrediction, node: int) -> str:
    """A node's words as typed (PTB escapes such as -LRB- undone)."""
    start, end = prediction.tree.spans[node]
    return " ".join(normalize_token(t) for t in prediction.tree.tokens[start:end])


# ---- output ------------------------------------------------------------------------------------------------------
def _counts(found: Sequence[Disagreement]) -> str:
    """How many, and what gold says of them (when some have gold)."""
    judged = [d for d in found if d.gold is not None]
    if not judged:
        return str(len(found))
    a_right = sum(d.decided and d.label_a == d.gold for d in judged)
    b_right = sum(d.decided and d.label_b == d.gold for d in judged)
    return (f"{len(found)} (A right, B wrong: {a_right}; B right, A wrong: {b_right}; both wrong: "
            f"{len(judged) - a_right - b_right}; no gold: {len(found) - len(judged)})")


def summary(found: Sequence[Disagreement], a: Sequence[TreePrediction], b: Sequence[TreePrediction], name_a: str,
            name_b: str, gold_classes: int | None = None, top: int = TOP) -> str:
    """Counts, each model's accuracy on the gold labels, and the `top` most important disagreements."""
    nodes = sum(len(p.tree) for p in a)
    lines = [f"A: {name_a}", f"B: {name_b}",
             f"{len(a)} sentences, {nodes} phrase nodes (roots included)",
             f"roots that differ: {_counts([d for d in found if d.node == 0])}",
             f"phrases that differ, roots included: {_counts(found)}",
             f"sentences with a difference: {len(sentence_order(found))}"]
    for name, predictions in (("A", a), ("B", b)):
        accuracy = gold_accuracy(predictions, gold_classes)
        if accuracy is not None:
            lines.append(f"{name}: {100 * accuracy:.2f}% of the gold-labelled nodes right")
    if found:
        lines += ["", f"the first {min(top, len(found))} (one right and one wrong first, roots first, then by "
                      "probability gap):"]
    for d in found[:top]:
        gold = "-" if d.gold is None else d.gold
        lines.append(f"  sentence {d.sentence + 1}, {'root' if d.node == 0 else 'phrase'} "
                     f"\"{phrase(a[d.sentence], d.node)}\": gold {gold}, A {d.label_a}, B {d.label_b}, "
                     f"gap {d.gap:.2f}")
    return "\n".join(lines) + "\n"


_CSS = """
table.diff { border-collapse: collapse; margin: 4px 0; } table.diff td, table.diff th { padding: 1px 8px; }
table.diff td.right { color: #1a7f37; font-weight: bold; } table.diff td.wrong { color: #b00020; }
pre.summary { background: #f6f6f6; padding: 8px; overflow-x: auto; }
"""


def to_html(found: Sequence[Disagreement], a: Sequence[TreePrediction], b: Sequence[TreePrediction], name_a: str,
            name_b: str, gold_classes: int | None = None, limit: int = LIMIT) -> str:
    """The summary, then the first `limit` sentences with a disagreement, ranked: a table of the phrases that differ
    and both models' trees side by side, drawn as `predict` draws them (`sentibert.evaluation.render`), the phrases
    that differ ringed."""
    e = html.escape
    grouped = by_sentence(found)
    sections = [f'<pre class="summary">{e(summary(found, a, b, name_a, name_b, gold_classes))}</pre>']
    for k, s in enumerate(sentence_order(found)[:limit]):
        rows = "".join(
            f"<tr><td>{e(phrase(a[s], d.node)) if d.node else 'the sentence'}</td>"
            f"<td>{'' if d.gold is None else d.gold}</td>{_cell(d.label_a, d.gold)}{_cell(d.label_b, d.gold)}"
            f"<td>{d.gap:.2f}</td></tr>" for d in grouped[s])
        marked = {d.node for d in grouped[s]}
        sides = "".join(f'<div><p>{tag}: {e(name)} &rarr; <b>{p.labels[0]}</b></p>{_tree(p, f"{k}{tag}", marked)}'
                        '</div>' for tag, name, p in (("A", name_a, a[s]), ("B", name_b, b[s])))
        sections.append(f'<section class="sentence" id="s{k}">\n<h2>{k + 1}. {e(phrase(a[s], 0))}</h2>\n'
                        f'<table class="diff"><tr><th>phrase</th><th>gold</th><th>A</th><th>B</th><th>gap</th></tr>'
                        f'{rows}</table>\n<div class="pair">{sides}</div>\n</section>')
    return render.page(f"SentiBERT compare: {name_a} vs {name_b}", "\n".join(sections), css=_CSS,
                       label_names=a[0].label_names if a else render.SST5_NAMES)


def _tree(prediction: TreePrediction, key: str, marked: set[int]) -> str:
    if None in prediction.labels:  # render draws whole trees only
        return "<p>(not drawn: the encoder truncated this sentence, so some of its phrases have no prediction)</p>"
    return render.tree_html(render.to_json(prediction), key, marked)


def _cell(label: int, gold: int | None) -> str:
    mark = "" if gold is None else ' class="right"' if label == gold else ' class="wrong"'
    return f"<td{mark}>{label}</td>"
