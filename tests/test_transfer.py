import json
import math

import pytest

from sentibert.transfer import LabelledTextError, label_roots, read_labelled, transfer_metrics
from sentibert.tree import UNLABELED, BinaryTree


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
    assert math.isnan(transfer_metrics([1, 1], [1, 1], 2)["pearson"])  # undefined for constant predictions
