"""The paired bootstrap behind RESULTS.md's paired comparisons (sentibert.evaluation.significance)."""
import random

import pytest
from conftest import FIXTURES

from sentibert.data.tree import read_trees
from sentibert.evaluation.metrics import evaluate_predictions
from sentibert.evaluation.significance import paired_bootstrap, sentence_scores

TREES = read_trees(FIXTURES / "report_trees.txt") * 20  # 300 sentences


def noisy(trees, error_rate: float, seed: int) -> list[list[int]]:
    """The gold labels, each node wrong (shifted by one class) with probability `error_rate`."""
    rng = random.Random(seed)
    return [[(g + 1) % 5 if rng.random() < error_rate else g for g in tree.labels] for tree in trees]


def run(predictions):
    return list(zip(TREES, predictions))


def test_the_observed_difference_is_the_metrics_difference():
    a, b = noisy(TREES, 0.2, 1), noisy(TREES, 0.3, 2)
    diff = paired_bootstrap(sentence_scores([run(a)]), sentence_scores([run(b)]), samples=2000)
    metrics_a, metrics_b = evaluate_predictions(TREES, a), evaluate_predictions(TREES, b)
    for metric in ("phrase_acc", "sst5_root_acc"):
        assert diff[metric].delta == pytest.approx(metrics_a[metric] - metrics_b[metric])
        assert diff[metric].low <= diff[metric].delta <= diff[metric].high


def test_seeds_are_averaged_per_sentence():
    seeds = [noisy(TREES, 0.2, s) for s in (1, 2, 3)]
    scores = sentence_scores([run(p) for p in seeds])
    mean_acc = sum(evaluate_predictions(TREES, p)["phrase_acc"] for p in seeds) / 3
    assert scores.correct.sum() / scores.nodes.sum() == pytest.approx(mean_acc)  # every seed has the same nodes
    assert scores.root.mean() == pytest.approx(sum(evaluate_predictions(TREES, p)["sst5_root_acc"]
                                                   for p in seeds) / 3)


def test_a_clear_gap_excludes_zero_and_a_model_against_itself_does_not():
    good, bad = sentence_scores([run(noisy(TREES, 0.1, 1))]), sentence_scores([run(noisy(TREES, 0.5, 2))])
    gap = paired_bootstrap(good, bad, samples=2000)["phrase_acc"]
    assert gap.excludes_zero and gap.low > 0.2
    same = paired_bootstrap(good, good, samples=2000)["phrase_acc"]
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero
    near = paired_bootstrap(sentence_scores([run(noisy(TREES, 0.3, 3))]), sentence_scores([run(noisy(TREES, 0.3, 4))]),
                            samples=2000)["phrase_acc"]
    assert near.low < near.delta < near.high and near.high - near.low > 0.01  # same error rate: a real interval


def test_the_same_seed_gives_the_same_interval_and_another_seed_a_close_one():
    a, b = sentence_scores([run(noisy(TREES, 0.2, 1))]), sentence_scores([run(noisy(TREES, 0.3, 2))])
    first = paired_bootstrap(a, b, samples=3000, seed=0)
    assert paired_bootstrap(a, b, samples=3000, seed=0) == first
    other = paired_bootstrap(a, b, samples=3000, seed=1)["phrase_acc"]
    assert other != first["phrase_acc"] and abs(other.low - first["phrase_acc"].low) < 0.01


def test_different_test_sentences_are_refused():
    scores = sentence_scores([run(noisy(TREES, 0.2, 1))])
    shorter = sentence_scores([list(zip(TREES[:-1], noisy(TREES[:-1], 0.2, 1)))])
    with pytest.raises(ValueError, match="different sentences"):
        paired_bootstrap(scores, shorter)
    with pytest.raises(ValueError, match="seed 2 of 2"):
        sentence_scores([run(noisy(TREES, 0.2, 1)), list(reversed(run(noisy(TREES, 0.2, 2))))])
