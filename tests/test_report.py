"""`sentibert report`: the predictions file, the statistics, and the plots and summary of run directories."""
import json

import pytest
import yaml
from conftest import FIXTURES

from sentibert import cli
from sentibert.data.labels import SST3_NAMES, SST5_NAMES, to_sst3
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.evaluation.metrics import evaluate_predictions
from sentibert.evaluation.report import LENGTH_BIN_NAMES, accuracy_by_length, confusion, load_run, load_runs
from sentibert.io import atomic_write_json
from sentibert.runs import RunFolderError, read_predictions, write_predictions

TREES = read_trees(FIXTURES / "report_trees.txt")


def make_run(path, model: str, predictions, with_predictions: bool = True):
    """A run directory as `sentibert train` leaves it (config.yaml, metrics.json) plus test_predictions.jsonl."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"name": "sst_phrase", "model": {"_target_": model}}))
    atomic_write_json(path / "metrics.json", {"name": "sst_phrase", "metric": "phrase_acc", "best_epoch": 2,
                                              "test": evaluate_predictions(TREES, predictions)})
    if with_predictions:
        write_predictions(path / "test_predictions.jsonl", TREES, predictions, SST5_NAMES)
    return path


def gold_but_root_neutral():
    return [[2, *tree.labels[1:]] for tree in TREES]


def all_neutral():
    return [[2] * len(tree) for tree in TREES]


def test_predictions_file_round_trips_and_holds_gold_and_spans(tmp_path):
    path = write_predictions(tmp_path / "test_predictions.jsonl", TREES, gold_but_root_neutral(), SST5_NAMES)
    read = read_predictions(path)
    assert read.records == list(zip(TREES, gold_but_root_neutral())) and read.label_names == SST5_NAMES
    again = read_predictions(path)  # the same gold trees recur in every run's file: each text is parsed once
    assert all(tree is same for (tree, _), (same, _) in zip(read.records, again.records))
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"tree": TREES[0].to_ptb(), "spans": [list(s) for s in TREES[0].spans],
                     "gold": list(TREES[0].labels), "pred": [2, *TREES[0].labels[1:]], "label_names": list(SST5_NAMES)}
    with pytest.raises(ValueError, match=r"tree 0: \[2\] is not one of the 5 classes for each of its 3 nodes"):
        write_predictions(tmp_path / "bad.jsonl", TREES[:1], [[2]], SST5_NAMES)
    with pytest.raises(ValueError, match=r"tree 0: \[2, 2, 3\] is not one of the 3 classes"):
        write_predictions(tmp_path / "bad.jsonl", TREES[:1], [[2, 2, 3]], SST3_NAMES)


def test_confusion_counts_gold_rows_and_predicted_columns():
    tree = BinaryTree.from_ptb("(3 (1 (1 Not) (2 bad)) (4 (3 at) (4 all)))")
    counts = confusion([(tree, [3, 2, 0])], 5)
    assert counts[3][3] == counts[1][2] == counts[4][0] == 1 and sum(map(sum, counts)) == 3


def test_accuracy_by_length_bins_phrases_by_words():
    words = "a b c d e f g".split()  # right-branching: phrases of 7, 6, 5, 4, 3 and 2 words
    ptb = f"(2 {words[-1]})"
    for word in reversed(words[:-1]):
        ptb = f"(2 (2 {word}) {ptb})"
    tree = BinaryTree.from_ptb(ptb)
    assert [end - start for start, end in tree.spans] == [7, 6, 5, 4, 3, 2]
    assert accuracy_by_length([(tree, [0, 2, 2, 2, 2, 2])]) == {"1-5": {"acc": 1.0, "n": 4},
                                                                "6-10": {"acc": 0.5, "n": 2}}
    assert LENGTH_BIN_NAMES[-1] == "31+"


def test_report_compares_runs_with_plots_and_markdown(tmp_path, capsys):
    sentibert = make_run(tmp_path / "a", "sentibert.models.model.SentiBERT", gold_but_root_neutral())
    mean_pool = make_run(tmp_path / "b", "sentibert.models.model.MeanPool", all_neutral())
    out = tmp_path / "report"
    assert cli.main(["report", str(sentibert), str(mean_pool), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")
    for name in ("overview.png", "confusion.png", "length.png", "fine_grained.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    md = (out / "report.md").read_text()
    for run, predictions in (("SentiBERT", gold_but_root_neutral()), ("MeanPool", all_neutral())):
        test = evaluate_predictions(TREES, predictions)
        row = next(line for line in md.splitlines() if line.startswith(f"| {run} |"))
        assert f"| {100 * test['phrase_acc']:.1f} | {100 * test['sst5_root_acc']:.1f} |" in row
        negation = next(line for line in md.splitlines()[md.splitlines().index("### Negation (count in the sentence)"):]
                        if line.startswith(f"| {run} |"))
        assert f"{100 * test['negation']['0']['acc']:.1f} ({test['negation']['0']['n']})" in negation
    for image in ("overview", "confusion", "length", "fine_grained"):
        assert f"({image}.png)" in md


def test_runs_of_one_model_class_are_told_apart_by_directory(tmp_path):
    runs = load_runs([make_run(tmp_path / f"seed{s}", "sentibert.models.model.SentiBERT", all_neutral()) for s in (1, 2)])
    assert [run.label for run in runs] == ["SentiBERT (seed1)", "SentiBERT (seed2)"]


def test_a_run_without_predictions_is_left_out_of_confusion_and_length(tmp_path, capsys):
    with_predictions = make_run(tmp_path / "a", "sentibert.models.model.SentiBERT", all_neutral())
    without = make_run(tmp_path / "b", "sentibert.models.model.MeanPool", all_neutral(), with_predictions=False)
    assert cli.main(["report", str(with_predictions), str(without), "--out", str(tmp_path / "out")]) == 0
    assert f"{without} has no test_predictions.jsonl" in capsys.readouterr().err
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.count("MeanPool has no test_predictions.jsonl and is left out of this section.") == 2
    length_table = md[md.index("## Accuracy by phrase length"):md.index("## Negation")]
    assert "| SentiBERT |" in length_table and "| MeanPool |" not in length_table


@pytest.mark.parametrize("breakage, message", [
    ("no directory", "is not a directory"),
    ("no metrics", "is not a training run: metrics.json is missing"),
    ("unfinished", "has no test results"),
    ("bad labels", r"test_predictions.jsonl:1: expected gold and predicted labels of the 5 classes \(very negative, "
                   r"negative, neutral, positive, very positive\) for each of the tree's 3 nodes, got gold \[2, 3, 1\] "
                   r"and predictions \[2, 2, 7\]"),
    # the tree's own error says where too (gold trees are parsed once per text, and again to locate an error)
    ("bad predictions", r"test_predictions.jsonl:2: not a prediction record \(\S*test_predictions.jsonl:2: unbalanced"),
])
def test_a_run_directory_the_report_cannot_use_is_named(tmp_path, capsys, breakage, message):
    run = tmp_path / "run"
    if breakage != "no directory":
        make_run(run, "sentibert.models.model.SentiBERT", all_neutral())
    if breakage == "no metrics":
        (run / "metrics.json").unlink()
    if breakage == "unfinished":
        atomic_write_json(run / "metrics.json", {"name": "sst_phrase", "dev": []})
    if breakage == "bad labels":
        record = {"tree": TREES[0].to_ptb(), "pred": [2, 2, 7], "label_names": list(SST5_NAMES)}
        (run / "test_predictions.jsonl").write_text(json.dumps(record) + "\n")
    if breakage == "bad predictions":
        lines = (run / "test_predictions.jsonl").read_text().splitlines()
        (run / "test_predictions.jsonl").write_text("\n".join([lines[0], '{"tree": "(2 a"}', *lines[2:]]) + "\n")
    with pytest.raises(RunFolderError, match=message):
        load_runs([run])
    assert cli.main(["report", str(run), "--out", str(tmp_path / "out")]) == 1
    assert "sentibert report: error:" in capsys.readouterr().err


# ---- one label space per run -------------------------------------------------------------------------------------
def make_sst3_run(path, predictions, legacy: bool = False):
    """A 3-class SST-3 run's directory; legacy: its predictions file as written before it named its classes (the
    dataset's 5-class gold beside 3-class predictions)."""
    make_run(path, "sentibert.models.model.SentiBERT", [[to_sst3(g) for g in t.labels] for t in TREES], False)
    (path / "config.yaml").write_text(yaml.safe_dump({"model": {"_target_": "sentibert.models.model.SentiBERT",
                                                                "num_classes": 3},
                                                      "data": {"dataset": "sst", "label_view": "sst3"}}))
    if legacy:
        (path / "test_predictions.jsonl").write_text("".join(
            json.dumps({"tree": t.to_ptb(), "gold": list(t.labels), "pred": p}) + "\n"
            for t, p in zip(TREES, predictions)))
    else:
        write_predictions(path / "test_predictions.jsonl", TREES, predictions, SST3_NAMES, "sst3")
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "before label_names"])
def test_a_three_class_run_stores_and_reports_three_classes(tmp_path, capsys, legacy):
    predictions = [[to_sst3(g) for g in tree.labels] for tree in TREES]  # every node right, in 3 classes
    run = load_run(make_sst3_run(tmp_path / "sst3", predictions, legacy))
    assert run.label_names == SST3_NAMES
    assert [tree.labels for tree, _ in run.predictions] == [tuple(p) for p in predictions]  # gold in 3 classes too
    counts = confusion(run.predictions, 3)
    assert len(counts) == 3 and sum(counts[k][k] for k in range(3)) == sum(map(sum, counts)) == sum(map(len, TREES))
    if not legacy:
        lines = (tmp_path / "sst3" / "test_predictions.jsonl").read_text().splitlines()
        gold = [json.loads(line)["gold"] for line in lines]
        assert gold == predictions and max(map(max, gold)) == 2
    assert cli.main(["report", str(tmp_path / "sst3"), "--out", str(tmp_path / "out")]) == 0
    assert accuracy_by_length(run.predictions)["1-5"]["acc"] == 1.0


def test_the_committed_sst3_results_read_in_three_classes():
    committed = FIXTURES.parents[1] / "experiments" / "results" / "minilm-sst3-sentibert-s1"
    if not committed.is_dir():
        pytest.skip("no committed results in this checkout")
    run = load_run(committed)  # read only
    assert run.label_names == SST3_NAMES and len(run.predictions) == 2210
    assert {g for tree, _ in run.predictions for g in tree.labels} <= {-1, 0, 1, 2}
    accuracy = sum(p[0] == tree.labels[0] for tree, p in run.predictions) / len(run.predictions)
    assert accuracy == pytest.approx(run.test["sst3_root_acc"])  # the gold the run was scored against
