"""The behaviour suite (sentibert.evaluation.probe) and `sentibert probe`: generation, expectations on hand-made
predictions, the interval, suite errors, and the command end to end on a tiny model."""
import dataclasses
import json
import re
from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest
import transformers

from sentibert import cli
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.evaluation import probe
from sentibert.models.model import TreePrediction
from sentibert.parsing.parse import ptb_tokenize

transformers.logging.set_verbosity_error()
pytestmark = pytest.mark.usefixtures("one_thread")

PHENOMENA = ["negation_positive", "negation_negative", "double_negation", "negated_intensifier", "intensifier",
             "diminisher", "contrast", "irrealis", "negative_polarity", "far_from", "neutral_filler"]


@pytest.fixture(scope="module")
def items():
    return probe.generate(probe.load_suite())


# ---- the suite ---------------------------------------------------------------------------------------------------
def test_the_suite_gives_the_same_items_twice_and_a_fixed_count(items):
    assert probe.generate(probe.load_suite()) == items
    assert Counter(item.phenomenon for item in items) == {name: 300 for name in PHENOMENA}
    assert len({(item.sentence, item.base) for item in items}) == len(items)  # no item twice
    # a marked phrase is whole words of its sentence, "a" before a vowel is "an"
    for item in items:
        for sentence in filter(None, (item.sentence, item.base)):
            start, end = sentence.span
            assert sentence.text[start:end].strip() == sentence.text[start:end] != ""
            assert "[" not in sentence.text and " a e" not in sentence.text and " a u" not in sentence.text


def test_another_seed_draws_other_items(items):
    suite = probe.load_suite()
    other = probe.generate(dataclasses.replace(suite, seed=suite.seed + 1))
    assert len(other) == len(items) and other != items


@pytest.mark.mirror
def test_the_lists_from_sst_train_meet_their_stated_rule(mirror):
    """README.md beside the suite: each word of an sst-train list has >= 10 leaves in SST train, >= 90% of them
    labelled with the list's polarity."""
    counts = defaultdict(Counter)
    for tree in read_trees(mirror / "sst" / "trees" / "train.txt"):
        for word, label in zip(tree.tokens, tree.word_labels):
            counts[word.lower()][{0: "negative", 1: "negative", 2: "neutral"}.get(label, "positive")] += 1
    checked = 0
    for name, entry in probe.load_suite().lists.items():
        if entry["source"] == "sst-train":
            for word in (w for entry_word in entry["words"] for w in entry_word.lower().split()):
                seen = counts[word]
                assert sum(seen.values()) >= 10 and seen[entry["polarity"]] >= 0.9 * sum(seen.values()), (name, word)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("change, message", [
    (("version: 1", "version: one"), r"suite.yaml: not a probe suite: a mapping with version, seed"),
    (("  - name: negation_positive", "  - nom: negation_positive"), r"phenomena\[0\]: a mapping with a name"),
    (("{noun}", "{nouns}"), r"phenomena\[0\] \(negation_positive\), template 1: \{nouns\} is not one of the lists"),
    (("[is not", "is not"), r"template 1: .* must mark the operator's phrase with one \[ \.\.\. \]"),
    (("root: negative", "root: negatve"), r"template 1: expectation 'negatve'; a sentence takes positive, negative"),
    (("phrase: negative}", "phrase: same_polarity}"), r"expectation 'same_polarity'; a sentence takes"),
])
def test_a_broken_suite_is_refused_naming_where(tmp_path, change, message):
    text = probe.DEFAULT_SUITE.read_text(encoding="utf-8").replace(*change, 1)
    (tmp_path / "suite.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(probe.ProbeError, match=message):
        probe.load_suite(tmp_path / "suite.yaml")


def test_wilson_interval():
    assert probe.wilson(7, 10) == pytest.approx((0.3968, 0.8922), abs=1e-4)  # scipy's binomtest(...).proportion_ci
    low, high = probe.wilson(0, 300)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.0126, abs=1e-4)
    assert probe.wilson(0, 0) == (0.0, 1.0)


# ---- expectations on hand-made predictions ------------------------------------------------------------------------
def rb(words: list[str]) -> str:
    """Right-branching PTB over words."""
    return f"(2 {words[0]})" if len(words) == 1 else f"(2 (2 {words[0]}) {rb(words[1:])})"


def tree_with_span(text: str, span: tuple[int, int]) -> BinaryTree:
    """The text's PTB tokens, with the marked phrase as one node: (before (phrase after))."""
    before, phrase, after = (ptb_tokenize(part) for part in (text[:span[0]], text[span[0]:span[1]], text[span[1]:]))
    inner = rb(phrase) if not after else f"(2 {rb(phrase)} {rb(after)})"
    return BinaryTree.from_ptb(inner if not before else f"(2 {rb(before)} {inner})")


PROBS = {"very negative": [0.8, 0.1, 0.05, 0.03, 0.02], "negative": [0.1, 0.7, 0.1, 0.05, 0.05],
         "neutral": [0.05, 0.1, 0.7, 0.1, 0.05], "positive": [0.05, 0.05, 0.1, 0.7, 0.1],
         "very positive": [0.02, 0.03, 0.05, 0.1, 0.8]}
# expectation -> (base, variant) that meet it, and (base, variant) that do not; single sentences have no base
CASES = {
    "positive": ((None, "positive"), (None, "negative")),
    "negative": ((None, "negative"), (None, "positive")),
    "not_positive": ((None, "neutral"), (None, "positive")),
    "not_negative": ((None, "neutral"), (None, "negative")),
    "same_polarity": (("negative", "very negative"), ("positive", "neutral")),
    "more_positive": (("positive", "very positive"), ("very positive", "positive")),
    "more_negative": (("negative", "very negative"), ("negative", "neutral")),
}


def prediction(sentence: probe.Sentence, root: str, phrase: str) -> TreePrediction:
    """Root and the marked phrase's node labelled as given, every other node neutral."""
    tree = tree_with_span(sentence.text, sentence.span)
    node = probe.covering_node(tree, sentence.text, sentence.span)
    assert node != 0  # the phrase has a node of its own: root and phrase can differ
    probs = [PROBS["neutral"]] * len(tree)
    probs[node], probs[0] = PROBS[phrase], PROBS[root]
    return TreePrediction(tree, probs, [max(range(5), key=p.__getitem__) for p in probs], [])


def outcome(item: probe.Item, root_case: int, phrase_case: int) -> probe.Outcome:
    """item scored with root meeting (case 0) or missing (case 1) its expectation, and the phrase likewise."""
    (root_base, root), (phrase_base, phrase) = CASES[item.root][root_case], CASES[item.phrase][phrase_case]
    predictions = {item.sentence.text: prediction(item.sentence, root, phrase)}
    if item.base:
        predictions[item.base.text] = prediction(item.base, root_base, phrase_base)
    return probe.score([item], predictions)[0]


@pytest.mark.parametrize("phenomenon", PHENOMENA)
def test_each_phenomenons_expectations_pass_and_fail_on_hand_made_predictions(items, phenomenon):
    firsts = {item.template: item for item in reversed(items) if item.phenomenon == phenomenon}
    for item in firsts.values():  # one item per template
        assert outcome(item, 0, 0).passed
        assert not outcome(item, 1, 1).passed
        wrong_phrase = outcome(item, 0, 1)
        assert wrong_phrase.root_pass and not wrong_phrase.phrase_pass and not wrong_phrase.passed
        wrong_root = outcome(item, 1, 0)
        assert wrong_root.phrase_pass and not wrong_root.root_pass and not wrong_root.passed


def test_the_phrase_is_the_smallest_parsed_node_covering_the_operators_words():
    text = "The film isn't bad at all."
    tree = BinaryTree.from_ptb("(2 (2 (2 The) (2 film)) (2 (2 (2 is) (2 (2 n't) (2 bad))) (2 (2 (2 at) (2 all)) (2 .))))")
    span = (text.index("isn't"), text.index(" at"))
    assert tree.phrase(probe.covering_node(tree, text, span)) == "is n't bad"
    span = (text.index("n't"), text.index(" at"))  # part of a token counts as the token
    assert tree.phrase(probe.covering_node(tree, text, span)) == "n't bad"
    span = (text.index("bad"), text.index("all") + 3)  # across constituents: the node above both
    assert tree.phrase(probe.covering_node(tree, text, span)) == "is n't bad at all ."


def test_two_and_three_class_models_are_read_by_polarity():
    assert [probe.polarity(p) for p in ([0.6, 0.4], [0.3, 0.7], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7])] == [-1, 1, 0, 1]
    assert probe.expected_score([0.25, 0.75]) == pytest.approx(0.5)
    with pytest.raises(probe.ProbeError, match="a model with 4 classes"):
        probe.polarity([0.25] * 4)


# ---- the command -------------------------------------------------------------------------------------------------
SMALL_SUITE = """
version: 0
seed: 1
items_per_phenomenon: 4
lists:
  pos: {source: hand, words: [good, funny]}
  noun: {source: hand, words: [film, story]}
  very: {source: hand, words: [very, really]}
phenomena:
  - name: negation
    templates:
      - {text: "The {noun} [is not {pos}].", root: negative, phrase: negative}
  - name: intensifier
    templates:
      - {base: "The {noun} [is {pos}].", text: "The {noun} [is {very} {pos}].", root: more_positive,
         phrase: more_positive}
"""


class FakeParser:
    """Right-branching trees over PTB tokens."""
    model = SimpleNamespace(name="fake-parser")

    def parse(self, texts, source="input"):
        return [BinaryTree.from_ptb(rb(ptb_tokenize(text))) for text in texts]


@pytest.fixture
def small_suite(tmp_path, monkeypatch):
    monkeypatch.setattr("sentibert.inference.predict.load_parser", lambda *args, **kwargs: FakeParser())
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_SUITE, encoding="utf-8")
    return path


def test_probe_runs_end_to_end_on_a_tiny_model(checkpoint, small_suite, tmp_path, capsys):
    out = tmp_path / "probe.json"
    assert cli.main(["probe", "--model", str(checkpoint), "--suite", str(small_suite), "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["model"] == str(checkpoint) and doc["parser"] == "fake-parser" and doc["suite"] == "small.yaml"
    assert [(row["name"], row["n"]) for row in doc["phenomena"]] == [("negation", 4), ("intensifier", 4)]
    for row in doc["phenomena"]:
        for key in ("", "root_", "phrase_"):
            low, high = row[f"{key}ci95"]
            assert low <= row[f"{key}pass_rate"] <= high
    failed = sum(round(row["n"] * (1 - row["pass_rate"])) for row in doc["phenomena"])
    assert len(doc["failures"]) == failed  # fewer than 20 per phenomenon: all are listed

    assert cli.main(["probe", "--model", str(checkpoint), "--suite", str(small_suite)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^negation +4 ", text, re.M) and re.search(r"^intensifier +4 ", text, re.M)

    page = tmp_path / "probe.html"
    assert cli.main(["probe", "--model", str(checkpoint), "--suite", str(small_suite), "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    pairs = sum(1 for f in doc["failures"] if "base" in f)
    assert html.count("<section") == len(doc["failures"])
    assert html.count("<svg") == len(doc["failures"]) + pairs  # a pair draws its base beside it


def test_a_bad_suite_ends_the_command_in_one_line(checkpoint, small_suite, capsys):
    small_suite.write_text(SMALL_SUITE.replace("{pos}].", "{pos}.", 1), encoding="utf-8")
    assert cli.main(["probe", "--model", str(checkpoint), "--suite", str(small_suite)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentibert probe: error: ") and "template 1" in err and "\n" not in err


# ---- two models on the same items ----------------------------------------------------------------------------------
def test_a_paired_difference_has_its_sign_and_an_interval_around_it():
    a = [False] * 60 + [True] * 40  # A passes 40 of 100, B the same 40 and 30 more
    b = [False] * 30 + [True] * 70
    difference, (low, high) = probe.paired_difference(a, b)
    assert difference == pytest.approx(0.30) and 0.2 < low < 0.3 < high < 0.4
    assert probe.paired_difference(a, b) == (difference, (low, high))  # a fixed seed: the same interval
    back, (back_low, back_high) = probe.paired_difference(b, a)
    assert back == pytest.approx(-0.30) and back_high < 0
    assert probe.paired_difference(a, a) == (0.0, (0.0, 0.0))  # the same outcomes: no difference at all
    # Each model wins as often: the interval straddles 0.
    _, (low, high) = probe.paired_difference([True, False] * 50, [False, True] * 50)
    assert low < 0 < high
    with pytest.raises(probe.ProbeError, match="same items"):
        probe.paired_difference(a, b[:-1])


def test_a_paired_report_gives_both_rates_and_marks_only_differences_that_exclude_zero(items):
    suite = probe.load_suite()
    mine = [item for item in items if item.phenomenon in ("negation_positive", "contrast")]

    def outcomes(passes) -> list:
        return [SimpleNamespace(item=item, passed=passes(k, item)) for k, item in enumerate(mine)]

    a = outcomes(lambda k, item: k % 2 == 0)  # half of each phenomenon
    b = outcomes(lambda k, item: item.phenomenon == "negation_positive" or k % 2 == 1)
    doc = probe.paired_report(a, b, suite, model_a="A", model_b="B")
    rows = {row["name"]: row for row in doc["phenomena"]}
    assert list(rows) == ["negation_positive", "contrast"] and rows["contrast"]["n"] == 300
    gain, same = rows["negation_positive"], rows["contrast"]
    assert (gain["a_pass_rate"], gain["b_pass_rate"], gain["difference"]) == (0.5, 1.0, 0.5)
    assert gain["significant"] and 0 < gain["difference_ci95"][0] < 0.5 < gain["difference_ci95"][1]
    assert (same["a_pass_rate"], same["b_pass_rate"], same["difference"]) == (0.5, 0.5, 0.0)
    assert not same["significant"] and same["difference_ci95"][0] < 0 < same["difference_ci95"][1]
    assert "10,000 resamples" in doc["difference_interval"]
    text = probe.pair_to_text(doc)
    assert re.search(r"^negation_positive +300 .*\+50\.0 \[.*\] \*$", text, re.M)
    assert re.search(r"^contrast +300 .*\+0\.0 \[.*\]$", text, re.M)
    assert probe.pair_to_markdown(doc).count("| negation_positive | 300 |") == 1
    with pytest.raises(probe.ProbeError, match="same items"):
        probe.paired_report(a, b[::-1], suite)


def test_probe_against_scores_two_models_on_the_same_items(checkpoint, small_suite, tmp_path, capsys):
    out = tmp_path / "pair.json"
    argv = ["probe", "--model", str(checkpoint), "--against", str(checkpoint), "--suite", str(small_suite)]
    assert cli.main([*argv, "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["model_a"] == doc["model_b"] == str(checkpoint) and doc["parser_b"] == "fake-parser"
    for row in doc["phenomena"]:  # a model against itself: no difference
        assert row["a_pass_rate"] == row["b_pass_rate"] and row["difference"] == 0 and not row["significant"]
    assert cli.main([*argv, "--format", "md"]) == 0
    assert "| negation | 4 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([*argv, "--format", "html"])
    assert "not html" in capsys.readouterr().err
