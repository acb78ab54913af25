"""Per-tree analysis records behind the paper's fine-grained metrics (`sentibert data analyze`).

One record per labelled tree, field for field the records of the SentiBERT authors' analysis arrays
(`sentibert-paper/test_analysis.jsonl` in the data mirror), reproduced from the trees alone. Nodes
are internal nodes in pre-order, root first (`BinaryTree` order); "polarity" is the 3-class view
`to_sst3` (0-1 negative, 2 neutral, 3-4 positive). Fields:

- `line`: 1-based line of the tree in its file; `tree`: the tree in PTB form.
- `phrase_labels`: 5-class gold label of every node.
- `edges`: per node `[node, c1, c2]`: its phrase children in left-to-right order, then -1 for each
  word child (so a node over a phrase and a word is `[node, phrase, -1]` whichever side the word is).
- `child_switches`: per node, how many of its phrase children have a polarity different from its own
  (0, 1 or 2; word children never count).
- `tree_switches`: the sum of `child_switches` over the tree.
- `negations`: in the sentence text (tokens joined by single spaces, case kept), the number of
  non-overlapping occurrences of " not" + "n't" + " no ". These are substrings, as in the authors'
  code: " not" also matches " nothing" and " notably"; "Not" and "No" (capitalised) and a
  sentence-initial "not" or "no" do not count, nor a sentence-final "no".
- `contrast`: `[x, y, parent]` or `[]`. Only the sentence's first token that is exactly "but"
  (lower case) is considered. Let q be the node with that word as a child and x its other child;
  let parent be q's parent and y q's sibling. The triple is recorded when x and y are both phrase
  nodes, x's text does not contain the substring "but" (so "debut", "about" or a later "but"
  disqualify it), and x and y differ in polarity. x is the side sharing a node with "but" and may be
  left ("X but" + Y) or right (X + "but Y") of it; y is always the other side.
"""
from __future__ import annotations

import json
from pathlib import Path

from sentibert.data.labels import to_sst3
from sentibert.data.tree import BinaryTree, TreeFormatError, numbered_trees, word_child
from sentibert.io import atomic_write_text

NEGATION_CUES = (" not", "n't", " no ")
CONTRAST_WORD = "but"


def edges(tree: BinaryTree) -> list[list[int]]:
    rows = []
    for node, kids in enumerate(tree.children):
        phrases = [c for c in kids if c >= 0]
        rows.append([node, *phrases] + [-1] * (2 - len(phrases)))
    return rows


def child_switches(tree: BinaryTree) -> list[int]:
    polarity = [to_sst3(label) for label in tree.labels]
    return [sum(c >= 0 and polarity[c] != polarity[node] for c in kids) for node, kids in enumerate(tree.children)]


def negations(tree: BinaryTree) -> int:
    text = tree.text
    return sum(text.count(cue) for cue in NEGATION_CUES)


def contrast(tree: BinaryTree) -> list[int]:
    if CONTRAST_WORD not in tree.tokens:
        return []
    but = word_child(tree.tokens.index(CONTRAST_WORD))
    parent = {kid: node for node, kids in enumerate(tree.children) for kid in kids if kid >= 0}
    q = next(node for node, kids in enumerate(tree.children) if but in kids)
    if q not in parent:  # "but" hangs off the root: no sibling side
        return []
    left, right = tree.children[q]
    x = right if left == but else left
    p = parent[q]
    left, right = tree.children[p]
    y = right if left == q else left
    if x < 0 or y < 0 or CONTRAST_WORD in tree.phrase(x):
        return []
    return [x, y, p] if to_sst3(tree.labels[x]) != to_sst3(tree.labels[y]) else []


def analyze(tree: BinaryTree) -> dict:
    """The analysis fields of one labelled tree (all but `line` and `tree`)."""
    switches = child_switches(tree)
    return {
        "phrase_labels": list(tree.labels),
        "edges": edges(tree),
        "child_switches": switches,
        "tree_switches": sum(switches),
        "negations": negations(tree),
        "contrast": contrast(tree),
    }


def analyze_file(path: str | Path) -> list[dict]:
    """One record per non-blank line of a PTB tree file, with its line number and tree."""
    path = Path(path)
    records = []
    for line, text, tree in numbered_trees(path):
        try:
            records.append({"line": line, "tree": tree.to_ptb(), **analyze(tree)})
        except ValueError as err:  # unlabelled nodes
            raise TreeFormatError(f"analysis needs a 0-4 label on every node ({err})", str(path), line, text)
    return records


def write_analysis(trees_path: str | Path, out_path: str | Path) -> int:
    records = analyze_file(trees_path)
    atomic_write_text(out_path, "".join(json.dumps(r) + "\n" for r in records))
    return len(records)
