"""Class names follow the task: a model carries its task's names (config.json), every output shows them, and a run's
predictions file holds one label space. End to end on tiny 3-class (SST-3) and 2-class (SST-2) runs."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from sentibert import cli
from sentibert.config import SAMPLE_DATA_DIR
from sentibert.data.labels import SST2_NAMES, SST3_NAMES, SST5_NAMES, label_names
from sentibert.models.model import SentiBERT, TreeSentimentModel
from sentibert.runs import read_predictions

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["encoder=tiny", "logger=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.lr=1e-3"]


def test_names_come_from_the_view_the_dataset_or_the_class_count():
    assert label_names(3, "sst", "sst3") == SST3_NAMES and label_names(5, "sst-paper") == SST5_NAMES
    assert label_names(2, "sst2-glue") == SST2_NAMES
    assert label_names(4, "emoint-sad") == ("no sadness", "low sadness", "moderate sadness", "high sadness")
    assert label_names(4, "emoint-joy")[3] == "high joy"
    assert label_names(3) == SST3_NAMES and label_names(5) == SST5_NAMES  # a checkpoint saved without names
    assert label_names(2, "labelled") == ("class 0", "class 1")  # own data without data.label_names
    assert label_names(2, "labelled", names=["spam", "ham"]) == ("spam", "ham")


def test_a_checkpoint_carries_its_names_and_one_without_them_falls_back_to_its_class_count(tiny_model, tmp_path):
    torch.manual_seed(0)
    model = SentiBERT("tiny", num_classes=4)
    model.label_names = label_names(4, "emoint-anger")
    saved = model.save_pretrained(tmp_path / "emoint")
    assert json.loads((saved / "config.json").read_text())["label_names"][0] == "no anger"
    assert TreeSentimentModel.from_pretrained(saved).label_names == label_names(4, "emoint-anger")
    assert TreeSentimentModel.from_pretrained(saved, num_classes=3).label_names == SST3_NAMES  # a new head

    config = json.loads((saved / "config.json").read_text())
    del config["label_names"]  # as the bundled MiniLM model was saved
    (saved / "config.json").write_text(json.dumps(config))
    assert TreeSentimentModel.from_pretrained(saved).label_names == ("class 0", "class 1", "class 2", "class 3")
    three = shutil.copytree(tiny_model(num_classes=3), tmp_path / "three")
    config = json.loads((three / "config.json").read_text())
    del config["label_names"]
    (three / "config.json").write_text(json.dumps(config))
    assert TreeSentimentModel.from_pretrained(three).label_names == SST3_NAMES


def predict_json(run: Path, capsys) -> list[dict]:
    capsys.readouterr()  # training's log
    assert cli.main(["predict", "--checkpoint", str(run), "--format", "json", "not bad at all", "great"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_three_class_run_predicts_and_stores_three_classes(tmp_path, fake_parser, capsys):
    run = tmp_path / "sst3"
    assert cli.main(["train", *TINY, "experiment=sst3", "data=fixture", f"data.root={SAMPLE_DATA_DIR}",
                     f"hydra.run.dir={run}"]) == 0
    assert TreeSentimentModel.from_pretrained(run / "best_model").label_names == SST3_NAMES

    docs = predict_json(run, capsys)
    for doc in docs:
        assert doc["label_names"] == ["negative", "neutral", "positive"] and doc["model"] == str(run)
        assert all(len(node["probs"]) == 3 and node["label_name"] == SST3_NAMES[node["label"]]
                   for node in doc["nodes"])
    assert cli.main(["predict", "--checkpoint", str(run), "not bad at all"]) == 0
    assert "# (label name  p(negative) p(neutral) p(positive)) phrase" in capsys.readouterr().out

    stored = read_predictions(run / "test_predictions.jsonl")  # the test split: gold in the model's 3 classes
    assert stored.label_names == SST3_NAMES
    assert {g for tree, _ in stored.records for g in tree.labels} <= {0, 1, 2}
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    root = sum(pred[0] == tree.labels[0] for tree, pred in stored.records) / len(stored.records)
    assert root == pytest.approx(metrics["sst3_root_acc"])  # the stored gold is the gold it was scored against

    out = tmp_path / "evaluate"
    assert cli.main(["evaluate", f"checkpoint={run}", "data=fixture", f"data.root={SAMPLE_DATA_DIR}",
                     "data.label_view=sst3", f"hydra.run.dir={out}"]) == 0
    assert read_predictions(out / "test_predictions.jsonl").records == stored.records

    assert cli.main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert "in each run's classes" in (tmp_path / "report" / "report.md").read_text()


def test_a_two_class_run_predicts_two_probabilities_per_node(tmp_path, fake_parser, capsys):  # text is parsed
    words = {0: ["awful", "bad", "boring"], 1: ["good", "great", "fun"]}
    rows = "".join(f"the film is {words[i % 2][i % 3]}\t{i % 2}\n" for i in range(40))
    (tmp_path / "data" / "sst2-glue").mkdir(parents=True)
    for name in ("train.tsv", "test.tsv"):
        (tmp_path / "data" / "sst2-glue" / name).write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    run = tmp_path / "sst2"
    assert cli.main(["train", *TINY, "experiment=sst2_glue", f"data.root={tmp_path / 'data'}", "data.batch_size=8",
                     f"hydra.run.dir={run}"]) == 0

    docs = predict_json(run, capsys)
    for doc in docs:
        assert doc["label_names"] == ["negative", "positive"] and doc["model"] == str(run)
        assert all(len(node["probs"]) == 2 and node["label_name"] in SST2_NAMES for node in doc["nodes"])
    stored = read_predictions(run / "test_predictions.jsonl")
    assert stored.label_names == SST2_NAMES and all(0 <= pred[0] <= 1 for _, pred in stored.records)
