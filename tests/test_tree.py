import pytest
from nltk import Tree

from sentibert.data.tree import (UNLABELED, BinaryTree, TreeFormatError, binarize, child_token, normalize_token,
                                 read_trees, write_trees)

SST = "(3 (2 (2 The) (2 Rock)) (4 (3 (2 is) (4 great)) (2 .)))"


def test_preorder_spans_children_labels():
    t = BinaryTree.from_ptb(SST)
    assert t.tokens == ("The", "Rock", "is", "great", ".")
    assert t.spans == ((0, 5), (0, 2), (2, 5), (2, 4))  # root first, then left subtree, then right
    assert t.children == ((1, 2), (-1, -2), (3, -5), (-3, -4))
    assert t.labels == (3, 2, 4, 3) and t.word_labels == (2, 2, 2, 4, 2)
    assert [t.phrase(i) for i in range(len(t))] == ["The Rock is great .", "The Rock", "is great .", "is great"]
    assert child_token(t.children[2][1]) == 4


def test_ptb_round_trip_exact():
    odd = "(2 (2 2\xa01\\/2) (1 (2 -LRB-) (2 ``)))"  # no-break space inside a token, escapes, quotes
    for s in (SST, odd, "(4 Wow)"):
        assert BinaryTree.from_ptb(s).to_ptb() == s


def test_one_word_sentence_has_a_root():
    t = BinaryTree.from_ptb("(4 Wow)")
    assert len(t) == 1 and t.spans == ((0, 1),) and t.root_label == 4


def test_file_round_trip(tmp_path):
    path = tmp_path / "trees.txt"
    trees = [BinaryTree.from_ptb(SST), BinaryTree.from_ptb("(1 (2 not) (3 good))")]
    write_trees(trees, path)
    assert read_trees(path) == trees
    assert path.read_text() == SST + "\n(1 (2 not) (3 good))\n"


@pytest.mark.parametrize("bad, message", [
    ("(2 (3 a) (1 b)", "unbalanced brackets"),
    ("(2 (1 a) (2 b) (3 c))", "not binary"),
    ("(2 (3 a) b)", "not binary"),
    ("(2 (1 a) (2 b)) (3 c)", "not a PTB tree"),
])
def test_malformed_tree_names_file_and_line(tmp_path, bad, message):
    path = tmp_path / "bad.txt"
    path.write_text(SST + "\n\n" + bad + "\n")
    with pytest.raises(TreeFormatError) as err:
        read_trees(path)
    assert f"{path}:3:" in str(err.value) and message in str(err.value) and bad[:20] in str(err.value)


def test_binarize_stanza_style_parse():
    parse = Tree.fromstring("(ROOT (S (NP (DT The) (NN film)) (VP (VBZ is) (RB not) (ADJP (JJ bad))) (. .)))")
    t = binarize(parse)
    assert t.tokens == ("The", "film", "is", "not", "bad", ".")  # leaves keep their order
    assert all(label == UNLABELED for label in t.labels)
    assert t.to_ptb() == "(X (X (X The) (X film)) (X (X (X is) (X (X not) (X bad))) (X .)))"
    assert len(t) == len(t.tokens) - 1  # a full binary tree


def test_binarize_single_word():
    t = binarize(Tree.fromstring("(ROOT (NP (NN good)))"))
    assert t.tokens == ("good",) and len(t) == 1


@pytest.mark.parametrize("token, text", [
    ("-LRB-", "("), ("-RRB-", ")"), ("``", '"'), ("''", '"'), ("1\\/2", "1/2"), ("\\*", "*"),
    ("2\xa01\\/2", "2 1/2"), ("Cafe\u0301", "Café"), ("good", "good"),
])
def test_normalize_token(token, text):
    assert normalize_token(token) == text


def test_every_sst_file_round_trips(mirror):
    for path in sorted((mirror / "sst" / "trees").glob("*.txt")) + sorted((mirror / "sentibert-paper").glob("*_trees.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        trees = read_trees(path)
        assert len(trees) == len(lines)
        assert [t.to_ptb() for t in trees] == lines, path
