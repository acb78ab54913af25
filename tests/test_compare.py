"""Two models compared phrase by phrase (sentibert.evaluation.compare, `sentibert compare`): the ranking on a fixture,
the html's side-by-side trees, and the command end to end on tiny models."""
import re
import shutil

import pytest
import transformers

from sentibert import cli
from sentibert.data.tree import BinaryTree
from sentibert.evaluation import compare
from sentibert.models.model import MeanPool, TreePrediction

from conftest import FIXTURES

transformers.logging.set_verbosity_error()
pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("very negative", "negative", "neutral", "positive", "very positive")
# Three gold trees of three nodes each: root, then "w1 w2", then "w3 w4" (pre-order).
TREES = [BinaryTree.from_ptb(f"({root} ({left} (2 a{s}) (2 b{s})) ({right} (2 c{s}) (2 d{s})))")
         for s, (root, left, right) in enumerate([(3, 1, 2), (1, 2, 0), (4, 3, 3)])]


def prediction(tree: BinaryTree, labels: list[int], confidence: list[float]) -> TreePrediction:
    """Each node's label with the given probability, the rest spread evenly over the other classes."""
    probs = [[c if k == label else (1 - c) / 4 for k in range(5)] for label, c in zip(labels, confidence)]
    return TreePrediction(tree, probs, labels, [], label_names=NAMES)


# A and B per sentence; gold in TREES. Sentence 0: both wrong at the root (a large gap), phrase 2 differs with gold
# neutral and A right. Sentence 1: phrase 1 differs, both wrong. Sentence 2: the root differs, B right (a small gap).
A = [prediction(TREES[0], [0, 1, 2], [0.9, 0.6, 0.6]), prediction(TREES[1], [1, 3, 0], [0.6, 0.5, 0.6]),
     prediction(TREES[2], [3, 3, 3], [0.5, 0.6, 0.6])]
B = [prediction(TREES[0], [1, 1, 4], [0.3, 0.6, 0.55]), prediction(TREES[1], [1, 4, 0], [0.6, 0.45, 0.6]),
     prediction(TREES[2], [4, 3, 3], [0.45, 0.6, 0.6])]


def test_gold_decided_disagreements_come_first_then_roots_then_by_gap():
    found = compare.disagreements(A, B, gold_classes=5)
    assert [(d.sentence, d.node, d.gold, d.decided) for d in found] == [
        (2, 0, 4, True),  # one right, one wrong, at a root
        (0, 2, 2, True),  # one right, one wrong, at a phrase
        (0, 0, 3, False),  # both wrong, at a root
        (1, 1, 2, False)]  # both wrong, at a phrase
    assert found[2].gap == pytest.approx((0.725 + 0.275 + 3 * 0.15) / 2) and found[0].gap < found[2].gap
    assert compare.sentence_order(found) == [2, 0, 1]


def test_without_gold_the_biggest_gaps_come_first_and_sst_gold_maps_to_three_classes():
    assert [(d.sentence, d.node) for d in compare.disagreements(A, B)] == [(0, 0), (2, 0), (0, 2), (1, 1)]
    three = [TreePrediction(p.tree, [[sum(q[:2]), q[2], sum(q[3:])] for q in p.probs],
                            [(0, 0, 1, 2, 2)[label] for label in p.labels], []) for p in (*A, *B)]
    found = compare.disagreements(three[:3], three[3:], gold_classes=5)
    assert [(d.sentence, d.node, d.gold) for d in found] == [(0, 2, 1)]  # neutral vs positive; 3 and 4 now agree


def test_models_with_different_classes_cannot_be_compared():
    two = [TreePrediction(p.tree, [[0.5, 0.5]] * 3, [0, 0, 0], []) for p in B]
    with pytest.raises(compare.CompareError, match=r"different numbers of classes \(5 and 2\)"):
        compare.disagreements(A, two)


def test_the_summary_counts_what_gold_says_and_each_models_accuracy():
    text = compare.summary(compare.disagreements(A, B, 5), A, B, "runs/a", "runs/b", gold_classes=5)
    assert "roots that differ: 2 (A right, B wrong: 0; B right, A wrong: 1; both wrong: 1; no gold: 0)" in text
    assert "phrases that differ, roots included: 4 (A right, B wrong: 1; B right, A wrong: 1; both wrong: 2;" in text
    assert "A: 66.67% of the gold-labelled nodes right" in text and "B: 66.67%" in text  # 6 of 9 each
    assert text.index('sentence 3, root "a2 b2 c2 d2"') < text.index('sentence 1, phrase "c0 d0"')


def test_the_html_draws_both_trees_of_each_disagreeing_sentence_in_rank_order():
    page = compare.to_html(compare.disagreements(A, B, 5), A, B, "runs/a", "runs/b", gold_classes=5)
    sections = re.findall(r'<section class="sentence".*?</section>', page, re.S)
    assert [re.search(r"<h2>\d+\. (.*?)</h2>", s).group(1) for s in sections] == [
        "a2 b2 c2 d2", "a0 b0 c0 d0", "a1 b1 c1 d1"]
    for section in sections:
        assert section.count("<svg") == 2 and "A: runs/a" in section and "B: runs/b" in section
    assert '<td class="right">4</td>' in sections[0] and '<td class="wrong">3</td>' in sections[0]
    marked = [re.findall(r'<g class="node marked" tabindex="0" data-node="(\d+)"', s) for s in sections]
    assert marked == [["0", "0"], ["0", "2", "0", "2"], ["1", "1"]]  # the nodes that differ, ringed in both trees


# ---- the command -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(checkpoint, tiny_model):
    return checkpoint, tiny_model(MeanPool, seed=1)


def test_compare_on_a_prepared_split_writes_both_trees_per_disagreeing_sentence(checkpoints, tmp_path, monkeypatch,
                                                                                 capsys):
    shutil.copytree(FIXTURES / "sst_tiny", tmp_path / "data" / "sst")
    monkeypatch.setenv("SENTIBERT_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "compare.html"
    assert cli.main(["compare", *map(str, checkpoints), "--data", "sst", "--split", "test", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert re.search(r"^2 sentences, \d+ phrase nodes", summary, re.M)
    assert re.search(r"^A: \d+\.\d\d% of the gold-labelled nodes right", summary, re.M)
    differing = int(re.search(r"^sentences with a difference: (\d+)", summary, re.M).group(1))
    page = out.read_text(encoding="utf-8")
    assert differing > 0 and page.count("<section") == differing and page.count("<svg") == 2 * differing


def test_compare_refuses_a_missing_split_in_one_line(checkpoints, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SENTIBERT_DATA_DIR", str(tmp_path))
    assert cli.main(["compare", *map(str, checkpoints), "--data", "sst"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentibert compare: error: ") and "test.txt not found" in err and "\n" not in err
