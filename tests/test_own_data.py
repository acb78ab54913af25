"""`data=labelled`: a user's own labelled text, with a config only: train, evaluate and predict with the run, and
the errors bad files get (file:line, labels out of range, missing columns and files)."""
import json
import re
import sys

import pytest
from fakes import RightBranchingParser
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from sentibert import cli
from sentibert.config import CONF_DIR
from sentibert.data.datasets import DataError, load_splits
from sentibert.data.transfer import LabelledTextError
from sentibert.data.tree import UNLABELED
from sentibert.models.model import TreeSentimentModel

# fake_parser: the parser that training, evaluation and predict load (the tests below pass theirs to load_splits)
pytestmark = pytest.mark.usefixtures("one_thread", "fake_parser")

WORDS = {0: ["awful", "dull", "bad"], 1: ["great", "good", "fun"]}
ROWS = [(f"the film is {'very ' * (i % 2)}{WORDS[i % 2][i % 3]}", i % 2) for i in range(24)]


def write_tsv(path, rows, header="text\tlabel"):
    path.write_text(header + "\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    return path


def data_config(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=["data=labelled", "data.num_classes=2", *overrides]).data


def sentibert(capsys, *argv):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exit_:  # Hydra commands exit on a user error
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_evaluate_and_predict_from_a_tsv(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", sys.argv[:1])  # Hydra reads sys.argv; the CLI puts it back
    train, test = write_tsv(tmp_path / "my.tsv", ROWS), write_tsv(tmp_path / "my_test.tsv", ROWS[:8])
    files = [f"data.train={train}", f"data.test={test}", "data.num_classes=2"]
    run = tmp_path / "run"
    rc, _, err = sentibert(capsys, "train", "data=labelled", *files, "encoder=tiny", "trainer.max_epochs=1",
                           "data.batch_size=4", "trainer.limit_train_batches=3", "logger=none", f"hydra.run.dir={run}")
    assert rc == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["metric"] == "accuracy" and set(metrics["test"]) == {"accuracy", "macro_f1", "pearson", "n"}
    assert metrics["test"]["n"] == 8 and metrics["dev"][0]["n"] == 2  # no dev file: 10% of the 24 train rows
    model = TreeSentimentModel.from_pretrained(run / "best_model")
    assert model.head.out_features == 2 and model.root_only

    rc, _, err = sentibert(capsys, "evaluate", f"checkpoint={run / 'best_model'}", "data=labelled", *files,
                           f"hydra.run.dir={tmp_path / 'eval'}")
    assert rc == 0, err
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {k: evaluated[k] for k in metrics["test"]} == metrics["test"]  # the run's own test, recomputed

    rc, out, err = sentibert(capsys, "predict", "--checkpoint", run, "--format", "json", "not a bad film")
    assert rc == 0, err
    [doc] = json.loads(out)
    assert len(doc["nodes"]) == 3 and all(len(node["probs"]) == 2 for node in doc["nodes"])


def test_a_bad_row_is_one_line_naming_file_and_line(tmp_path, capsys):
    train = tmp_path / "my.tsv"
    train.write_text("text\tlabel\ngood\t1\nno label here\nbad\t0\n", encoding="utf-8")
    rc, _, err = sentibert(capsys, "train", "data=labelled", f"data.train={train}", "data.num_classes=2",
                           "encoder=tiny", "logger=none", f"hydra.run.dir={tmp_path / 'run'}")
    assert rc == 1 and "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"sentibert train: error: {train}:3: not a TSV row: fewer fields than the header's 2 (text, label)")


@pytest.mark.parametrize("content, overrides, message", [
    ("text\tlabel\ngood\t1\nbad\t2\n", [], r"my.tsv:3: label 2 in column 'label' is out of range: .* 0-1"),
    ("text\tlabel\ngood\t1\n", ["data.text_column=review"], r"my.tsv:2: no column 'review'"),
    ("review\tlabel\ngood\t1\n", [], r"my.tsv:2: no column 'text' or 'sentence'"),
    ("text\tstars\ngood\t1\n", [], r"my.tsv:2: no column 'label'"),
    ("text\tlabel\ngood\tpositive\n", [], r"my.tsv:2: label 'positive' in column 'label' is not an integer class"),
])
def test_bad_labels_and_columns_name_file_and_line(tmp_path, content, overrides, message):
    (tmp_path / "my.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(LabelledTextError, match=message):
        load_splits(data_config(f"data.train={tmp_path / 'my.tsv'}", "data.dev_from_train=0", *overrides), ["train"],
                    RightBranchingParser)


@pytest.mark.parametrize("overrides, message", [
    (["data.train={missing}"], "{missing}: file not found"),
    (["data.train={empty}"], "{empty}: empty, data.train has no labelled rows"),
    ([], "data=labelled has no train file: set data.train=FILE"),
    (["data.train={good}", "data.num_classes=null"], "data=labelled needs data.num_classes=N"),
    (["data.train={good}", "data.label_names=[bad]"], "data.label_names has 1 names for data.num_classes=2"),
])
def test_missing_and_empty_files_and_settings_say_what(tmp_path, overrides, message):
    paths = {"good": tmp_path / "good.tsv", "empty": tmp_path / "empty.tsv", "missing": tmp_path / "nothing.tsv"}
    paths["good"].write_text("text\tlabel\ngood\t1\n", encoding="utf-8")
    paths["empty"].write_text("text\tlabel\n", encoding="utf-8")
    data = data_config(*(o.format(**paths) for o in overrides), "data.dev_from_train=0")
    with pytest.raises((DataError, LabelledTextError), match="^" + re.escape(message.format(**paths))):
        load_splits(data, ["train"], RightBranchingParser)


def test_a_dev_file_wins_over_the_hold_out_which_is_fixed(tmp_path):
    train, dev = write_tsv(tmp_path / "my.tsv", ROWS), write_tsv(tmp_path / "my_dev.tsv", ROWS[:3])
    held_out = load_splits(data_config(f"data.train={train}"), ["train", "dev"], RightBranchingParser)
    assert (len(held_out["train"]), len(held_out["dev"])) == (22, 2)
    again = load_splits(data_config(f"data.train={train}"), ["dev"], RightBranchingParser)
    assert again["dev"] == held_out["dev"]  # the same every time
    with_dev = load_splits(data_config(f"data.train={train}", f"data.dev={dev}"), ["train", "dev"],
                           RightBranchingParser)
    assert (len(with_dev["train"]), len(with_dev["dev"])) == (24, 3)
    tree = with_dev["dev"][0]
    assert tree.root_label == ROWS[0][1] and set(tree.labels[1:]) == {UNLABELED}  # only the root is supervised


def test_csv_jsonl_sentence_column_and_label_names(tmp_path):
    (tmp_path / "my.csv").write_text('sentence,label\n"fun, and good",positive\nawful,0\n', encoding="utf-8")
    (tmp_path / "my.jsonl").write_text('{"review": "fun", "y": "positive"}\n', encoding="utf-8")
    names = "data.label_names=[negative,positive]", "data.dev_from_train=0"
    trees = load_splits(data_config(f"data.train={tmp_path / 'my.csv'}", *names), ["train"],
                        RightBranchingParser)["train"]
    assert [(t.tokens, t.root_label) for t in trees] == [(("fun,", "and", "good"), 1), (("awful",), 0)]
    trees = load_splits(data_config(f"data.train={tmp_path / 'my.jsonl'}", "data.text_column=review",
                                    "data.label_column=y", *names), ["train"], RightBranchingParser)["train"]
    assert [t.root_label for t in trees] == [1]


def test_the_own_data_keys_exist_only_for_data_labelled():
    with pytest.raises(ConfigCompositionException, match="data.train"):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            compose("train", overrides=["data=sst", "data.train=my.tsv"])
    with pytest.raises(ConfigCompositionException, match="data.trian"):
        data_config("data.trian=my.tsv")
