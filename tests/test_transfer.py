import json
import math

import pytest
import torch

from sentibert.data.transfer import LabelledTextError, label_roots, read_labelled
from sentibert.data.tree import UNLABELED, BinaryTree
from sentibert.evaluation.metrics import transfer_metrics


@pytest.fixture
def files(tmp_path):
    rows = [('I\'m so "excited" 😀 &amp; happy', 3), ("meh.", 1)]
    (tmp_path / "a.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    (tmp_path / "a.csv").write_text('id,sentence,y\n1,"I\'m so ""excited"" 😀 &amp; happy",3\n2,meh.,1\n',
                                    encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows),
                                      encoding="utf-8")
    return tmp_path, rows


def test_reads_tsv_csv_jsonl_alike(files):
    tmp, rows = files
    expected = ([t for t, _ in rows], [y for _, y in rows])
    assert read_labelled(tmp / "a.tsv") == expected
    assert read_labelled(tmp / "a.csv", text="sentence", label="y") == expected
    assert read_labelled(tmp / "a.jsonl") == expected


@pytest.mark.parametrize("content, message", [
    ("text\tlabel\nfine\t1\n\t2\n", "x.tsv:3: empty text"),
    ("text\tlabel\nfine\tpositive\n", "x.tsv:2: label 'positive'"),
    ("sentence\tlabel\nfine\t1\n", "x.tsv:2: no column 'text'"),
])
def test_bad_rows_name_file_and_line(tmp_path, content, message):
    (tmp_path / "x.tsv").write_text(content)
    with pytest.raises(LabelledTextError, match=message):
        read_labelled(tmp_path / "x.tsv")


def test_unknown_format(tmp_path):
    with pytest.raises(LabelledTextError, match="unknown format"):
        read_labelled(tmp_path / "x.parquet")


def test_label_goes_on_the_root_only():
    tree = BinaryTree.from_ptb("(X (X not) (X (X very) (X good)))")
    (labelled,) = label_roots([tree], [3])
    assert labelled.labels == (3, UNLABELED) and labelled.tokens == tree.tokens


def test_transfer_metrics_against_hand_computation():
    gold, pred = [0, 1, 2, 3, 3, 1], [0, 2, 2, 3, 1, 1]
    m = transfer_metrics(gold, pred, num_classes=4)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class F1: 0 -> 1, 1 -> 2*1/(2+2)=.5, 2 -> 2*1/(1+2)=2/3, 3 -> 2*1/(2+1)=2/3
    assert m["macro_f1"] == pytest.approx((1 + 0.5 + 2 / 3 + 2 / 3) / 4)
    mg, mp = sum(gold) / 6, sum(pred) / 6
    cov = sum((g - mg) * (p - mp) for g, p in zip(gold, pred))
    r = cov / math.sqrt(sum((g - mg) ** 2 for g in gold) * sum((p - mp) ** 2 for p in pred))
    assert m["pearson"] == pytest.approx(r) and m["n"] == 6
    assert transfer_metrics([1, 1], [1, 1], 2)["pearson"] is None  # undefined for constant predictions


# ---- end to end: labelled text -> parsed trees -> root-only training -> transfer metrics ----------------------
def write_emoint_like(root, name, rows):
    (root / name).mkdir(parents=True)
    lines = "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows)
    for split in ("train", "test"):
        (root / name / f"{split}.tsv").write_text(lines, encoding="utf-8")


def test_transfer_training_from_an_sst_checkpoint(checkpoint, fake_parser, tmp_path):  # the text is parsed
    from hydra import compose, initialize_config_dir

    from sentibert.config import CONF_DIR
    from sentibert.models.model import TreeSentimentModel
    from sentibert.training.loop import train

    words = {0: "awful", 1: "bad", 2: "good", 3: "great"}
    rows = [(f"the film is {'very ' * (i % 3)}{words[i % 4]}", i % 4) for i in range(40)]
    write_emoint_like(tmp_path / "data", "emoint-joy", rows)

    overrides = ["experiment=emoint_joy", "encoder=tiny", f"data.root={tmp_path / 'data'}", "data.batch_size=8",
                 "logger=none", "trainer.max_epochs=2", "trainer.lr=1e-3", f"init_from={checkpoint}"]  # 5 classes
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    results = train(cfg, tmp_path / "run")

    assert set(results["test"]) == {"accuracy", "macro_f1", "pearson", "n"} and results["test"]["n"] == 40
    assert results["metric"] == "pearson" and results["reported"] == {"pearson": results["test"]["pearson"]}
    best = TreeSentimentModel.from_pretrained(tmp_path / "run" / "best_model")
    assert best.head.out_features == 4 and best.root_only
    start = TreeSentimentModel.from_pretrained(checkpoint)
    assert not torch.equal(best.composition.transform.weight, start.composition.transform.weight)  # it trained


def test_new_head_keeps_everything_else(checkpoint):
    from sentibert.models.model import TreeSentimentModel

    five = TreeSentimentModel.from_pretrained(checkpoint)
    four = TreeSentimentModel.from_pretrained(checkpoint, num_classes=4)
    assert four.head.out_features == 4 and four.hparams["num_classes"] == 4
    for (name, a), (_, b) in zip(five.named_parameters(), four.named_parameters()):
        if not name.startswith("head."):
            assert torch.equal(a, b), name
