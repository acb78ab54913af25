"""Binary constituency trees: the one tree type every later stage reads.

A `BinaryTree` holds the leaves (tokens) and the internal nodes in pre-order, root first (the
SentiBERT paper's order): a node, then its left subtree's internal nodes, then its right's. Single
words keep their labels (`word_labels`) but are not phrase nodes. A one-word sentence has a single
node spanning that word, with the word as both children, so every tree has a root to predict.

PTB strings are read and written through `nltk.Tree`; SST files round-trip byte for byte.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from nltk import Tree

from sentibert.io import TextFileError, read_lines

UNLABELED = -1
UNLABELED_TAG = "X"  # written for nodes without a sentiment label
# SST tokens may hold a no-break space ("2\xa01\/2"); nltk's default leaf pattern (\S) would split them.
_LEAF = r"[^ ()\t\n\r]+"


class TreeFormatError(ValueError):
    """A tree that cannot be read, located by file:line with a snippet of the offending text."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None, text: str = ""):
        where = f"{source or '<string>'}:{line}" if line is not None else (source or "<string>")
        snippet = text.strip()
        snippet = snippet if len(snippet) <= 80 else snippet[:77] + "..."
        super().__init__(f"{where}: {message}" + (f"\n    {snippet}" if snippet else ""))
        self.source, self.line = source, line


def word_child(token_index: int) -> int:
    """Children are node indices (>= 0) or words, encoded as -(token_index + 1)."""
    return -(token_index + 1)


def child_token(child: int) -> int:
    return -child - 1


@dataclass(frozen=True)
class BinaryTree:
    tokens: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # per node: token span [start, end)
    children: tuple[tuple[int, int], ...]  # per node: (left, right); >= 0 node index, < 0 word_child()
    labels: tuple[int, ...]  # per node: 0-4, or UNLABELED
    word_labels: tuple[int, ...]  # per token: 0-4, or UNLABELED

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def root_label(self) -> int:
        return self.labels[0]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def phrase(self, node: int) -> str:
        start, end = self.spans[node]
        return " ".join(self.tokens[start:end])

    # ---- nltk / PTB -------------------------------------------------------------------------------
    @classmethod
    def from_nltk(cls, tree: Tree) -> "BinaryTree":
        """From an nltk tree that is already binary: every node has one leaf or two subtrees."""
        tokens: list[str] = []
        word_labels: list[int] = []
        spans: list[tuple[int, int]] = []
        children: list[tuple[int, int]] = []
        labels: list[int] = []

        def is_word(t: Tree) -> bool:
            return len(t) == 1 and isinstance(t[0], str)

        def add_word(t: Tree) -> int:
            tokens.append(t[0])
            word_labels.append(_parse_label(t.label()))
            return word_child(len(tokens) - 1)

        def visit(t: Tree) -> int:  # returns the child code of t
            if is_word(t):
                return add_word(t)
            if len(t) != 2 or any(isinstance(c, str) for c in t):
                kinds = " ".join("word" if isinstance(c, str) else "subtree" for c in t)
                raise ValueError(f"node {t.label()!r} is not binary: its children are [{kinds}]")
            node = len(spans)
            spans.append((len(tokens), -1))
            children.append((0, 0))
            labels.append(_parse_label(t.label()))
            kids = (visit(t[0]), visit(t[1]))
            spans[node] = (spans[node][0], len(tokens))
            children[node] = kids
            return node

        if not isinstance(tree, Tree):
            raise ValueError("expected an nltk.Tree")
        if is_word(tree):  # one-word sentence: the root spans that word
            w = add_word(tree)
            return cls(tuple(tokens), ((0, 1),), ((w, w),), (word_labels[0],), tuple(word_labels))
        visit(tree)
        return cls(tuple(tokens), tuple(spans), tuple(children), tuple(labels), tuple(word_labels))

    def to_nltk(self) -> Tree:
        def build(child: int) -> Tree:
            if child < 0:
                i = child_token(child)
                return Tree(_format_label(self.word_labels[i]), [self.tokens[i]])
            left, right = self.children[child]
            return Tree(_format_label(self.labels[child]), [build(left), build(right)])

        if len(self.tokens) == 1:
            return Tree(_format_label(self.labels[0]), [self.tokens[0]])
        return build(0)

    @classmethod
    def from_ptb(cls, text: str, source: str | None = None, line: int | None = None) -> "BinaryTree":
        try:
            return cls.from_nltk(parse_ptb(text, source, line))
        except TreeFormatError:
            raise
        except ValueError as err:
            raise TreeFormatError(str(err), source, line, text) from None

    def to_ptb(self) -> str:
        return format_ptb(self.to_nltk())


_CLASS = re.compile(r"[0-9]+")


def _parse_label(label: str) -> int:
    """A class number, or X: no label (parser output). Anything else is an error, not silently "no label"."""
    if label == UNLABELED_TAG:
        return UNLABELED
    if not _CLASS.fullmatch(label):
        raise ValueError(f"label {label!r} is not a class number (or {UNLABELED_TAG}, for no label)")
    return int(label)


def check_classes(tree: BinaryTree, num_classes: int, source: str | None = None, line: int | None = None,
                  text: str = "") -> BinaryTree:
    """`tree`, or a TreeFormatError when one of its labels is not a class of a `num_classes`-class dataset."""
    bad = [label for label in tree.labels + tree.word_labels if label != UNLABELED and label >= num_classes]
    if bad:
        raise TreeFormatError(f"label {bad[0]} is out of range: this dataset's classes are 0-{num_classes - 1}",
                              source, line, text)
    return tree


def _format_label(label: int) -> str:
    return UNLABELED_TAG if label == UNLABELED else str(label)


def parse_ptb(text: str, source: str | None = None, line: int | None = None) -> Tree:
    """Parse one PTB bracketing with nltk, turning its errors into located `TreeFormatError`s."""
    stripped = text.strip()
    if not stripped:
        raise TreeFormatError("empty tree", source, line, text)
    if stripped.count("(") != stripped.count(")"):
        raise TreeFormatError(
            f"unbalanced brackets ({stripped.count('(')} '(' vs {stripped.count(')')} ')')", source, line, text
        )
    try:
        tree = Tree.fromstring(stripped, node_pattern=_LEAF, leaf_pattern=_LEAF)
    except ValueError as err:
        raise TreeFormatError(f"not a PTB tree ({err})", source, line, text) from None
    return tree


def format_ptb(tree: Tree) -> str:
    return tree.pformat(margin=sys.maxsize)


def read_trees(path: str | Path, num_classes: int | None = None) -> list[BinaryTree]:
    return list(iter_trees(path, num_classes))


def iter_trees(path: str | Path, num_classes: int | None = None) -> Iterator[BinaryTree]:
    """One binary PTB tree per non-blank line; errors name file:line. With `num_classes`, every label must be one
    of the dataset's classes, 0 to num_classes - 1 (`check_classes`)."""
    for n, text, tree in numbered_trees(path):
        yield tree if num_classes is None else check_classes(tree, num_classes, str(path), n, text)


def numbered_trees(path: str | Path) -> Iterator[tuple[int, str, BinaryTree]]:
    """(line number, line, tree) for each non-blank line of a PTB tree file: the one loop every reader of tree files
    goes through, so a bad line is a TreeFormatError naming file:line wherever it is read."""
    for n, text in enumerate(read_tree_lines(path), start=1):
        if text.strip():
            yield n, text, BinaryTree.from_ptb(text, str(path), n)


def read_tree_lines(path: str | Path) -> list[str]:
    """A tree file's lines, split on \\n alone (`sentibert.io.read_lines`); a file that is not UTF-8 is a
    TreeFormatError, as a bad tree is, so every reader of tree files reports both."""
    try:
        return read_lines(path)
    except TextFileError as err:
        raise TreeFormatError(err.reason, err.source, err.line) from None


def write_trees(trees: Iterable[BinaryTree], path: str | Path) -> None:
    from sentibert.io import atomic_write_text

    atomic_write_text(path, "".join(t.to_ptb() + "\n" for t in trees))


# ---- n-ary parses (Stanza) -> binary ------------------------------------------------------------------
def binarize(tree: Tree) -> BinaryTree:
    """Binarise any n-ary constituency parse: collapse unary chains, then `chomsky_normal_form`.

    Constituent labels (NP, VP, ...) are not sentiment, so every node comes out unlabeled. Leaves keep
    their order.
    """
    tree = tree.copy(deep=True)
    tree.collapse_unary(collapsePOS=True, collapseRoot=True)
    tree.chomsky_normal_form()
    # Leaves directly under an n-ary node (rare in parser output) become one-word subtrees.
    for pos in tree.treepositions():
        node = tree[pos]
        if isinstance(node, Tree) and len(node) > 1:
            for i, kid in enumerate(node):
                if isinstance(kid, str):
                    node[i] = Tree(UNLABELED_TAG, [kid])
    tree = _strip_labels(tree)
    return BinaryTree.from_nltk(tree)


def _strip_labels(tree: Tree | str) -> Tree | str:
    if isinstance(tree, str):
        return tree
    return Tree(UNLABELED_TAG, [_strip_labels(k) for k in tree])


# ---- tokens for the encoder -----------------------------------------------------------------------------
# SST's spelling of round brackets (what parsers write): a bare bracket would break the PTB text
PTB_BRACKETS = {"(": "-LRB-", ")": "-RRB-"}
PTB_ESCAPES = {  # PTB token -> the text it stands for
    **{escaped: bracket for bracket, escaped in PTB_BRACKETS.items()}, "-LSB-": "[", "-RSB-": "]", "-LCB-": "{",
    "-RCB-": "}", "``": '"', "''": '"',
}
_SPACES = re.compile(r"\s+")


def normalize_token(token: str) -> str:
    """PTB token -> the text an encoder expects: brackets, quotes, `\\/` and `\\*` escapes, NFC, spaces."""
    token = PTB_ESCAPES.get(token, token).replace("\\/", "/").replace("\\*", "*")
    return _SPACES.sub(" ", unicodedata.normalize("NFC", token)).strip() or token
