import json
from pathlib import Path

import numpy as np
import pytest

from sentibert.data.tree import BinaryTree, read_trees
from sentibert.evaluation.analysis import analyze_file
from sentibert.evaluation.metrics import evaluate_predictions, evaluate_records, flatten

FIXTURE = Path(__file__).parent / "fixtures" / "sst_analysis.txt"
PAPER_ANALYSIS = Path(__file__).parents[2] / "shared" / "data" / "sentibert-paper" / "test_analysis.jsonl"


def reference(records, predictions):
    """The paper's metrics recomputed with numpy masks over all nodes of all trees at once."""
    polarity = np.array([0, 0, 1, 2, 2])
    sizes = [len(r["phrase_labels"]) for r in records]
    gold = np.concatenate([r["phrase_labels"] for r in records])
    pred = np.concatenate(predictions)
    tree_of = np.repeat(np.arange(len(records)), sizes)
    roots = np.cumsum([0] + sizes[:-1])
    right5, right3 = gold == pred, polarity[gold] == polarity[pred]
    negations = np.array([r["negations"] for r in records])[tree_of]
    child_switches = np.concatenate([r["child_switches"] for r in records])
    tree_switches = np.array([r["tree_switches"] for r in records])[tree_of]

    def acc(mask):
        return {"acc": right3[mask].mean(), "n": int(mask.sum())}

    def nonempty(buckets):
        return {k: acc(mask) for k, mask in buckets.items() if mask.any()}

    polar_roots = roots[gold[roots] != 2]
    contrast = [all(right3[roots[i] + node] for node in r["contrast"]) for i, r in enumerate(records) if r["contrast"]]
    return {
        "phrase_acc": right5.mean(),
        "sst5_root_acc": right5[roots].mean(),
        "sst3_from_5class_root_acc": right3[roots].mean(),
        "sst2_from_5class_root_acc": ((pred[polar_roots] > 2) == (gold[polar_roots] > 2))[pred[polar_roots] != 2].sum() / len(polar_roots),
        "n": {"phrases": len(gold), "roots": len(records), "sst2_roots": len(polar_roots)},
        "negation": nonempty({"0": negations == 0, "1": negations == 1, "2+": negations >= 2}),
        "contrast": {"acc": np.mean(contrast), "n": len(contrast)},
        "local_difficulty": nonempty({str(k): child_switches == k for k in range(3)}),
        "global_difficulty": nonempty({f"{lo}-{lo + 4}": (tree_switches >= lo) & (tree_switches <= lo + 4) for lo in range(0, 25, 5)}),
    }


def random_predictions(records, seed):
    rng = np.random.default_rng(seed)
    # mostly right, so that every bucket has both hits and misses
    return [
        [label if rng.random() < 0.6 else int(rng.integers(5)) for label in r["phrase_labels"]] for r in records
    ]


def test_by_hand():
    trees = [
        BinaryTree.from_ptb("(1 (3 (3 (3 good) (2 fun)) (2 but)) (0 (2 too) (0 long)))"),  # contrast [2, 3, 0]
        BinaryTree.from_ptb("(3 (2 (2 is) (1 not)) (3 good))"),  # one negation
    ]
    metrics = evaluate_predictions(trees, [[0, 4, 2, 0], [2, 2]])
    assert metrics == {
        "phrase_acc": pytest.approx(2 / 6),
        "sst5_root_acc": 0.0,
        "sst3_from_5class_root_acc": 0.5,
        "sst2_from_5class_root_acc": 0.5,  # 1 -> 0 right (both negative); 3 -> 2 wrong (neutral prediction)
        "n": {"phrases": 6, "roots": 2, "sst2_roots": 2},
        "negation": {"0": {"acc": 0.75, "n": 4}, "1": {"acc": 0.5, "n": 2}},
        "contrast": {"acc": 0.0, "n": 1},  # node 2 (3 -> 2) is wrong in 3-class
        "local_difficulty": {"0": {"acc": 0.75, "n": 4}, "1": {"acc": 0.5, "n": 2}},
        "global_difficulty": {"0-4": {"acc": pytest.approx(4 / 6), "n": 6}},
    }


def test_global_bins_stop_at_24_and_empty_bins_are_left_out():
    def record(switches):
        return {"phrase_labels": [3], "child_switches": [0], "tree_switches": switches, "negations": 0, "contrast": []}

    metrics = evaluate_records([record(0), record(24), record(25)], [[3], [1], [3]])
    assert metrics["global_difficulty"] == {"0-4": {"acc": 1.0, "n": 1}, "20-24": {"acc": 0.0, "n": 1}}
    assert metrics["contrast"] == {"acc": None, "n": 0}


def test_bad_predictions_are_named():
    tree = BinaryTree.from_ptb("(3 (3 good) (2 fun))")
    with pytest.raises(ValueError, match="tree 0: 2 predictions for 1 nodes"):
        evaluate_predictions([tree], [[3, 3]])
    with pytest.raises(ValueError, match="1 prediction lists for 2 trees"):
        evaluate_predictions([tree, tree], [[3]])
    with pytest.raises(ValueError, match="0-4"):
        evaluate_predictions([tree], [[5]])


def test_fixture_trees_against_reference():
    trees, records = read_trees(FIXTURE), analyze_file(FIXTURE)
    predictions = random_predictions(records, seed=0)
    assert flatten(evaluate_predictions(trees, predictions)) == pytest.approx(flatten(reference(records, predictions)))


def test_flatten():
    assert flatten({"phrase_acc": 0.5, "negation": {"2+": {"acc": 1.0, "n": 3}}}) == {
        "phrase_acc": 0.5, "negation/2+/acc": 1.0, "negation/2+/n": 3,
    }


@pytest.mark.mirror
@pytest.mark.parametrize("seed", [1, 2])
def test_paper_test_set_against_reference(seed):
    if not PAPER_ANALYSIS.is_file():
        pytest.skip(f"data mirror not found at {PAPER_ANALYSIS}")
    records = [json.loads(line) for line in PAPER_ANALYSIS.read_text().splitlines()]
    predictions = random_predictions(records, seed)
    metrics = evaluate_records(records, predictions)
    assert flatten(metrics) == pytest.approx(flatten(reference(records, predictions)))
    assert list(metrics["negation"]) == ["0", "1", "2+"] and metrics["contrast"]["n"] == 158
