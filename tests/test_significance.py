"""The paired bootstrap behind RESULTS.md's paired comparisons (sentibert.evaluation.significance)."""
import random

import numpy as np
import pytest
from conftest import FIXTURES

from sentibert.data.tree import read_trees
from sentibert.evaluation.metrics import evaluate_predictions, transfer_metrics
from sentibert.evaluation.significance import _pearson, paired_bootstrap, paired_bootstrap_roots, root_predictions, \
    sentence_scores

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


# ---- sentence-level tasks (SST-2, EmoInt): the root's prediction, accuracy or Pearson r per seed -----------------
def roots(trees, shift: list[int]):
    """A run predicting each root's gold class shifted by `shift[i]` (clipped to 0-4); other nodes: 2."""
    return [(tree, [min(4, max(0, tree.labels[0] + s)), *[2] * (len(tree) - 1)]) for tree, s in zip(trees, shift)]


def test_pearson_is_recomputed_on_each_resample_and_pooled_over_seeds():
    rng = random.Random(0)
    shifts = [[rng.choice([-1, 0, 0, 1]) for _ in TREES] for _ in range(3)]
    a = root_predictions([roots(TREES, s) for s in shifts[:2]])  # two seeds
    b = root_predictions([roots(TREES, shifts[2])])
    gold = [tree.labels[0] for tree in TREES]
    per_seed = [transfer_metrics(gold, [p[0] for _, p in roots(TREES, s)], 5)["pearson"] for s in shifts]
    diff = paired_bootstrap_roots(a, b, "pearson", samples=2000)
    assert diff.delta == pytest.approx((per_seed[0] + per_seed[1]) / 2 - per_seed[2])  # mean r over seeds
    assert diff.low < diff.delta < diff.high and diff.high - diff.low > 0.01
    counts = np.random.default_rng(1).multinomial(len(TREES), np.full(len(TREES), 1 / len(TREES)), size=2)
    for weights in counts:  # a resample's r is r on the drawn sentences, repeated as drawn
        drawn = np.repeat(np.arange(len(TREES)), weights)
        assert _pearson(weights[None], a.pred[0], a.gold)[0] == pytest.approx(
            np.corrcoef(a.pred[0][drawn], a.gold[drawn])[0, 1])
    accuracy = paired_bootstrap_roots(a, b, "accuracy", samples=500)
    assert accuracy.delta == pytest.approx((a.pred == a.gold).mean() - (b.pred == b.gold).mean())


def test_an_undefined_pearson_r_is_nan_and_other_sentences_are_refused():
    constant = root_predictions([[(tree, [0] * len(tree)) for tree in TREES]])  # one class for every sentence
    other = root_predictions([roots(TREES, [0] * len(TREES))])
    assert np.isnan(paired_bootstrap_roots(constant, other, "pearson", samples=200).delta)
    with pytest.raises(ValueError, match="different sentences"):
        paired_bootstrap_roots(other, root_predictions([roots(TREES[1:], [0] * len(TREES))]), "accuracy")
