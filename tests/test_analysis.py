import json
from pathlib import Path

import pytest

from sentibert.commands import data as data_command
from sentibert.data.tree import BinaryTree, TreeFormatError
from sentibert.evaluation.analysis import analyze, analyze_file, write_analysis

FIXTURE = Path(__file__).parent / "fixtures" / "sst_analysis.txt"
PAPER = Path(__file__).parents[2] / "shared" / "data" / "sentibert-paper"


@pytest.fixture(scope="module")
def records():
    return analyze_file(FIXTURE)  # one hand-made tree per definition, see the comments below


def test_record_fields_and_order(records):
    assert list(records[0]) == [
        "line", "tree", "phrase_labels", "edges", "child_switches", "tree_switches", "negations", "contrast",
    ]
    assert records[0]["line"] == 1 and records[0]["tree"] == FIXTURE.read_text().splitlines()[0]


def test_edges_list_phrase_children_first(records):
    assert records[0]["edges"] == [[0, 1, 2], [1, -1, -1], [2, -1, -1]]
    # "(3 (2 but) (4 great end))": the word is the left child, yet the phrase comes first
    assert records[2]["edges"] == [[0, 1, 2], [1, -1, -1], [2, 3, -1], [3, -1, -1]]
    assert records[10]["edges"] == [[0, -1, -1]]  # one-word sentence


def test_switches_compare_three_class_polarity(records):
    assert records[0]["child_switches"] == [2, 0, 0]  # neutral root over a positive and a negative phrase
    assert records[3]["child_switches"] == [0, 0, 0, 0]  # labels 3 under 3 and 4 under 3: same polarity
    assert [r["tree_switches"] for r in records[:4]] == [2, 1, 1, 0]


def test_negations_count_substrings(records):
    # "It is not nothing , it is no fun and ca n't last": " not" twice (not, nothing), " no ", "n't"
    assert records[8]["negations"] == 4
    # "Not bad , no": capitalised "Not", and a final "no" has no space after it
    assert records[9]["negations"] == 0


@pytest.mark.parametrize(
    "line, expected, why",
    [
        (1, [], "'Effective but': the other side of 'but' is a word"),
        (2, [2, 3, 0], "'good fun but' + 'too long': x left of but, positive vs negative"),
        (3, [3, 1, 0], "'dull start' + 'but great end': x is the phrase sharing a node with 'but'"),
        (4, [], "labels 3 vs 4 differ, but both are positive"),
        (5, [2, 3, 0], "neutral vs positive counts as different"),
        (6, [], "x 'fine debut' contains the substring 'but'"),
        (7, [], "only the first 'but' counts, and it hangs off the root"),
        (8, [], "'But' (capitalised) is not 'but'"),
    ],
)
def test_contrast(records, line, expected, why):
    assert records[line - 1]["contrast"] == expected, why


def test_line_numbers_skip_blank_lines(tmp_path):
    trees = tmp_path / "trees.txt"
    trees.write_text("(3 good)\n\n(1 bad)\n")
    assert [r["line"] for r in analyze_file(trees)] == [1, 3]


def test_unlabelled_tree_is_an_error_with_its_line(tmp_path):
    trees = tmp_path / "trees.txt"
    trees.write_text("(3 good)\n(X (2 a) (2 b))\n")
    with pytest.raises(TreeFormatError, match=r"trees\.txt:2: analysis needs a 0-4 label"):
        analyze_file(trees)


def test_cli_analyze(tmp_path):
    out = tmp_path / "analysis.jsonl"
    assert data_command.main(["analyze", "--trees", str(FIXTURE), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 11 and json.loads(lines[1])["contrast"] == [2, 3, 0]


def test_analyze_is_the_record_without_line_and_tree():
    tree = BinaryTree.from_ptb("(1 (3 (3 (3 good) (2 fun)) (2 but)) (0 (2 too) (0 long)))")
    assert analyze(tree)["contrast"] == [2, 3, 0] and "line" not in analyze(tree)


@pytest.mark.mirror
def test_paper_test_set_matches_the_authors_analysis(tmp_path):
    if not PAPER.is_dir():
        pytest.skip(f"data mirror not found at {PAPER}")
    out = tmp_path / "analysis.jsonl"
    assert write_analysis(PAPER / "test_trees.txt", out) == 2184
    ours = [json.loads(line) for line in out.read_text().splitlines()]
    theirs = [json.loads(line) for line in (PAPER / "test_analysis.jsonl").read_text().splitlines()]
    assert len(ours) == len(theirs) == 2184
    mismatches = [(a["line"], key) for a, b in zip(ours, theirs) for key in b if a[key] != b[key]]
    assert mismatches == []
    assert out.read_bytes() == (PAPER / "test_analysis.jsonl").read_bytes()  # byte for byte, too
    assert sum(bool(r["contrast"]) for r in ours) == 158
