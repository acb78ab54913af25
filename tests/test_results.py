"""`sentibert results`: the tables regenerated from a campaign's results folder (a small hand-made one)."""
import csv
import gzip
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from sentibert import cli
from sentibert.data.labels import SST3_NAMES, SST5_NAMES, relabel, to_sst3
from sentibert.data.tree import read_trees
from sentibert.evaluation.metrics import evaluate_predictions, transfer_metrics
from sentibert.evaluation.report import load_run
from sentibert.campaign.results import ResultsError, build, load_paper
from sentibert.campaign.spec import load_campaign
from sentibert.campaign.tables import GRID_END_NOTE, README_BEGIN, README_END, readme_tables
from sentibert.runs import write_predictions

PAPER = Path(__file__).resolve().parents[1] / "experiments" / "paper.yaml"
CAMPAIGN = """\
overrides: [logger=csv]
paper_test: [experiment=sst_phrase]
groups:
  - {group: pre, task: sst_phrase_pretrain, model: sentibert, encoder: tiny, variant: pre-training,
     overrides: [experiment=sst_phrase_pretrain], lr: 2.0e-5, seeds: [1]}
  - {group: sb, task: sst_phrase, model: sentibert, encoder: tiny, variant: pre-trained,
     overrides: [experiment=sst_phrase], init_from: pre, lr_grid: [2.0e-5, 5.0e-5, 1.0e-4], seeds: [1, 2, 3]}
  - {group: mp, task: sst_phrase, model: mean_pool, encoder: tiny, variant: "",
     overrides: [experiment=sst_phrase, model=mean_pool], lr_grid: [2.0e-5, 5.0e-5], seeds: [1, 2]}
  - {group: s3, task: sst3, model: sentibert, encoder: tiny, variant: pre-trained, overrides: [experiment=sst3],
     init_from: pre, lr_from: sb, seeds: [1, 2]}
  - {group: joy, task: emoint_joy, model: cls, encoder: tiny, variant: "",
     overrides: [experiment=emoint_joy, model=cls], lr: 2.0e-5, seeds: [1]}
"""
README = f"""\
# Project

## Results

Prose before the tables.

{README_BEGIN}
| a hand-copied table | that drifted |
{README_END}

Prose after the tables.

## Another section
"""
GROUPS = {"pre": ("sst_phrase_pretrain", "sentibert", "pre-training"), "sb": ("sst_phrase", "sentibert", "pre-trained"),
          "mp": ("sst_phrase", "mean_pool", ""), "s3": ("sst3", "sentibert", "pre-trained"),
          "joy": ("emoint_joy", "cls", ""), "joysb": ("emoint_joy", "sentibert", "pre-trained"),
          "mpbf": ("sst_phrase", "mean_pool", "bf16"), "sc": ("sst_phrase", "sentibert", "no pre-training"),
          "lo": ("sst_phrase", "sentibert", "LoRA"), "lo32": ("sst_phrase", "sentibert", "LoRA r32"),
          "ab": ("sst_phrase", "sentibert", "no token attention"),
          "sbbf": ("sst_phrase", "sentibert", "pre-trained (bf16)"), "mpt": ("sst_phrase", "mean_pool", "tuned (bf16)"),
          "scbf": ("sst_phrase", "sentibert", "no pre-training (bf16)"), "lobf": ("sst_phrase", "sentibert", "LoRA (bf16)"),
          "s3mp": ("sst3", "mean_pool", ""), "bigmp": ("sst_phrase", "mean_pool", "big"),
          "late": ("sst_phrase", "cls", "")}


def sst5_test(phrase: float, root: float, contrast: float) -> dict:
    return {"phrase_acc": phrase, "sst5_root_acc": root, "sst3_from_5class_root_acc": 0.7,
            "sst2_from_5class_root_acc": 0.8, "n": 10,
            "negation": {"0": {"acc": 0.8, "n": 6}, "1": {"acc": 0.5, "n": 3}, "2+": {"acc": 1.0, "n": 1}},
            "contrast": {"acc": contrast, "n": 4}, "local_difficulty": {"0": {"acc": 0.9, "n": 8}},
            "global_difficulty": {"0-4": {"acc": 0.75, "n": 10}}}


def write_run(results: Path, run: str, group: str, seed: int, lr: float, best_dev: float, test: dict | None,
              paper_test: dict | None = None, commit: str = "a" * 40, dirty: bool = False,
              init_from: dict | None = None, precision: str | None = None, measured_on: dict | None = None) -> None:
    """A result folder; its config.yaml sets trainer.precision only where `precision` is given (else the default).
    `measured_on`: the campaign block's machine, threads and jobs (none by default, as for runs collected before the
    runner recorded them)."""
    task, model, variant = GROUPS[group]
    folder = results / run
    folder.mkdir(parents=True)
    metrics = {"name": task, "metric": (test and next(iter(test))) or "phrase_acc", "select": "best",
               "dev": [{"epoch": 1, "phrase_acc": best_dev}], "best_epoch": 1, "best_dev": best_dev,
               "campaign": {"run": run, "group": group, "task": task, "model": model, "encoder": "tiny",
                            "variant": variant, "seed": seed, "lr": lr, "grid": "-lr" in run, "seconds": 1800,
                            "commit": commit, "dirty": dirty}}
    if init_from is not None:
        metrics["campaign"]["init_from"] = init_from
    metrics["campaign"].update(measured_on or {})
    if test is not None:
        metrics.update(test=test, reported={metrics["metric"]: next(iter(test.values()))})
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.yaml").write_text("name: x\n" + (f"trainer:\n  precision: {precision}\n" if precision else ""))
    if paper_test is not None:
        (folder / "paper_test_metrics.json").write_text(json.dumps({"dataset": "sst_paper", **paper_test}))


@pytest.fixture
def campaign(tmp_path):
    """experiments/{campaign.yaml,paper.yaml,results/} and README.md: sb's grid is done (5e-05 and 1e-04 tie on dev:
    5e-05, listed first, is picked), seed 2 too, seed 3 not; mp's grid is half done (a provisional pick); s3 (sb's lr)
    has seed 1 of 2; joy is done."""
    root = tmp_path / "experiments"
    results = root / "results"
    results.mkdir(parents=True)
    (tmp_path / "README.md").write_text(README)
    (root / "campaign.yaml").write_text(CAMPAIGN)
    (root / "paper.yaml").write_text(PAPER.read_text())
    write_run(results, "pre-s1", "pre", 1, 2e-5, 0.5, None)
    write_run(results, "sb-lr2e-05-s1", "sb", 1, 2e-5, 0.60, sst5_test(0.99, 0.99, 0.99))  # not picked: not counted
    write_run(results, "sb-lr5e-05-s1", "sb", 1, 5e-5, 0.62, sst5_test(0.70, 0.55, 0.40),
              sst5_test(0.71, 0.56, 0.375))
    write_run(results, "sb-lr1e-04-s1", "sb", 1, 1e-4, 0.62, sst5_test(0.10, 0.10, 0.10))
    write_run(results, "sb-s2", "sb", 2, 5e-5, 0.61, sst5_test(0.68, 0.57, 0.50), commit="b" * 40, dirty=True,
              init_from={"run": "pre-s1", "best_dev": 0.5})  # the committed checkpoint
    write_run(results, "mp-lr2e-05-s1", "mp", 1, 2e-5, 0.55, sst5_test(0.6, 0.5, 0.3))
    write_run(results, "s3-s1", "s3", 1, 5e-5, 0.74, {"sst3_root_acc": 0.75, "phrase_acc": 0.8},
              init_from={"run": "pre-s1", "best_dev": 0.4999})  # pre-s1's checkpoint, rebuilt
    write_run(results, "joy-s1", "joy", 1, 2e-5, 0.6, {"pearson": 0.6, "accuracy": 0.4, "macro_f1": 0.3, "n": 5})
    return root


def run_results(*args: str) -> None:
    assert cli.main(["results", *args]) == 0


def summary(root: Path) -> dict[tuple[str, str], dict]:
    rows = list(csv.DictReader(io.StringIO((root / "results" / "summary.csv").read_text())))
    return {(row["task"] + "/" + row["model"], row["metric"]): row for row in rows}


def test_tables_from_the_picked_lr_and_the_other_seeds(campaign, capsys):
    run_results(str(campaign / "results"))
    assert capsys.readouterr().out.split() == [str(campaign / "results" / "summary.csv"),
                                               str(campaign / "RESULTS.md"), str(campaign.parent / "README.md")]
    text = (campaign / "results" / "summary.csv").read_text()
    assert text.splitlines()[0] == \
        "group,task,model,encoder,variant,precision,lr,n_seeds,provisional,mean,sd,paper,metric"
    rows = summary(campaign)
    # sb: the 5e-05 grid run (the tie goes to the lr listed first) and seed 2; seed 3 has no results yet
    assert rows["sst_phrase/sentibert", "phrase_acc"] == {
        "group": "sb", "task": "sst_phrase", "model": "sentibert", "encoder": "tiny", "variant": "pre-trained",
        "precision": "32", "lr": "5e-05", "n_seeds": "2", "provisional": "",
        "mean": "69.00", "sd": "1.41", "paper": "68.98", "metric": "phrase_acc"}
    assert (rows["sst_phrase/sentibert", "sst5_root_acc"]["mean"], rows["sst_phrase/sentibert", "sst5_root_acc"]["sd"],
            rows["sst_phrase/sentibert", "sst5_root_acc"]["paper"]) == ("56.00", "1.41", "56.04")
    assert (rows["sst_phrase/sentibert", "contrast"]["mean"], rows["sst_phrase/sentibert", "contrast"]["sd"],
            rows["sst_phrase/sentibert", "contrast"]["paper"]) == ("45.00", "7.07", "39.87")
    # only the grid run has a paper-subset evaluation: one seed, no sd; the paper's number is on that subset
    paper_phrase = rows["sst_phrase/sentibert", "paper_subset/phrase_acc"]
    assert (paper_phrase["n_seeds"], paper_phrase["mean"], paper_phrase["sd"], paper_phrase["paper"]) == \
        ("1", "71.00", "", "68.98")
    assert rows["sst_phrase/sentibert", "paper_subset/contrast"]["mean"] == "37.50"
    # mp: its grid is unfinished (1 of 2 runs), so its row is provisional: the best lr so far and its run
    assert {k: rows["sst_phrase/mean_pool", "phrase_acc"][k]
            for k in ("variant", "precision", "lr", "n_seeds", "provisional", "mean", "sd", "paper")} \
        == {"variant": "", "precision": "32", "lr": "2e-05", "n_seeds": "1", "provisional": "1/2", "mean": "60.00",
            "sd": "", "paper": "65.22"}
    assert rows["sst_phrase/mean_pool", "contrast"]["paper"] == "28.48"  # BERT*'s, from the authors' README
    # s3 (1 of 2 seeds) and the transfer row
    assert [rows["sst3/sentibert", "sst3_root_acc"][k] for k in ("n_seeds", "mean", "sd", "paper")] == \
        ["1", "75.00", "", "77.34"]
    assert [rows["emoint_joy/cls", "pearson"][k] for k in ("n_seeds", "mean", "paper")] == ["1", "60.00", "65.18"]
    assert ("sst3/sentibert", "phrase_acc") not in rows and ("emoint_joy/cls", "accuracy") not in rows
    assert not any(task.startswith("sst_phrase_pretrain") for task, _ in rows)  # a stage: no test metrics
    assert [key for key in rows][:6] == [("sst_phrase/sentibert", m) for m in (
        "phrase_acc", "sst5_root_acc", "contrast", "paper_subset/phrase_acc", "paper_subset/sst5_root_acc",
        "paper_subset/contrast")]

    md = (campaign / "RESULTS.md").read_text()
    assert md.splitlines()[0].startswith("_Generated by `sentibert results experiments/results` ")
    assert "do not edit by hand" in md.splitlines()[0]
    assert "| sentibert | tiny | pre-trained | 32 | 2/3 | 5e-05 (grid) | 69.00 ± 1.41 | 56.00 ± 1.41 | 45.00 ± 7.07 | " \
           "71.00 | 56.00 | 37.50 | 68.98 / 56.04 / 39.87 | aaaaaaa, bbbbbbb (dirty) |" in md
    assert "| mean_pool | tiny |  | 32 | 1/2, grid 1/2 | 2e-05 (grid, provisional) | 60.00 | 50.00 | 30.00 | – |" in md
    assert "`grid k/n` in `seeds`: provisional: dev picked the row's lr among the k finished runs" in md
    assert "| sb | phrase_acc | 60.00 | **62.00** | 62.00 | 5e-05 |" in md  # the lr grid: 1e-04 lost the tie
    assert "| mp | phrase_acc | *55.00* | – |  | 2e-05 so far (1 of 2 runs) |" in md  # italics: provisional
    assert "| mp | mp-lr2e-05-s1 | lr grid (1 of 2 runs) mp-s2 | aaaaaaa | 32 | 0.5 |" in md
    assert "| sentibert | tiny | pre-trained | 32 | 1/2 | 5e-05 (from sb) | 75.00 | 77.34 | aaaaaaa |" in md
    # the runs, the missing, and the hours: the row's two runs and its grid's other two (half an hour each)
    assert "| sb | sb-lr5e-05-s1 sb-s2 | sb-s3 | aaaaaaa, bbbbbbb (dirty) | 32 | 2.0 |" in md
    assert "| pre | tiny | 32 | 1/1 | 2e-05 (fixed) | phrase_acc | 50.00 | 1 | aaaaaaa |" in md
    # s3-s1 started from a rebuilt pre-s1 (another dev score); sb-s2 from the committed one, so it is not listed
    assert "| run | started from | its dev | committed dev |\n| --- | --- | --- | --- |\n" \
           "| s3-s1 | pre-s1 | 49.99 | 50.00 |\n\n" in md
    # the fine-grained analyses, mean over seeds
    assert "| sentibert | tiny | pre-trained | 32 | 2/3 | 80.00 / 50.00 / 100.00 | 45.00 | 90.00 / – / – | " \
           "75.00 / – / – / – / – |" in md
    assert "None yet: no SST-phrase run has test predictions." in md


def test_same_inputs_give_the_same_bytes_from_anywhere(campaign, tmp_path, monkeypatch):
    outputs = [campaign / "RESULTS.md", campaign / "results" / "summary.csv"]
    run_results(str(campaign / "results"))
    first = [p.read_bytes() for p in outputs]
    run_results(str(campaign / "results"))
    assert [p.read_bytes() for p in outputs] == first
    monkeypatch.chdir(tmp_path)  # a relative path, and explicit options naming the defaults
    run_results("experiments/results", "--campaign", "experiments/campaign.yaml", "--csv",
                "experiments/results/summary.csv", "--out", "experiments/RESULTS.md", "--paper",
                "experiments/paper.yaml")
    assert [p.read_bytes() for p in outputs] == first


def test_a_new_seed_updates_the_row(campaign):
    write_run(campaign / "results", "sb-s3", "sb", 3, 5e-5, 0.6, sst5_test(0.66, 0.56, 0.45))
    write_run(campaign / "results", "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.56, sst5_test(0.62, 0.52, 0.30))
    write_run(campaign / "results", "stray-s1", "joy", 1, 2e-5, 0.6, {"pearson": 0.1})  # in no campaign group
    run_results(str(campaign / "results"))
    rows = summary(campaign)
    assert [rows["sst_phrase/sentibert", "phrase_acc"][k] for k in ("n_seeds", "mean", "sd")] == ["3", "68.00", "2.00"]
    assert [rows["sst_phrase/mean_pool", "phrase_acc"][k] for k in ("n_seeds", "mean", "sd")] == ["1", "62.00", ""]
    md = (campaign / "RESULTS.md").read_text()
    # mp's grid (2e-05, 5e-05) picks its largest lr: said beside the pick, and in README, where 5e-05 may not be best
    assert "| mp | phrase_acc | 55.00 | **56.00** |  | 5e-05, at the grid's end |" in md
    assert "| mean_pool | tiny |  | 32 | 1/2 | 5e-05 (grid, at its end) |" in md
    readme = (campaign.parent / "README.md").read_text()
    assert "| mean pooling | tiny | lr 5e-05 picked on dev, at the grid's end | 32 | 1/2 |" in readme
    assert GRID_END_NOTE in md and GRID_END_NOTE in readme  # said once what the flag means
    assert ("Results of runs that the campaign file does not plan (not in any table; an lr_extend run counts only "
            "while its grid calls for it): stray-s1.") in md


def test_paper_numbers_file(tmp_path):
    paper = load_paper(PAPER)
    assert paper["sst_phrase", "sentibert", "pre-trained", "phrase_acc"] == 68.98
    assert paper["sst_phrase", "mean_pool", "", "sst5_root_acc"] == 50.23
    assert paper["sst2_glue", "cls", "", "accuracy"] == 92.08
    assert paper["emoint_mean", "cls", "", "pearson"] == 64.95
    assert ("sst_phrase", "cls", "", "phrase_acc") not in paper  # nothing the paper does not give
    bad = tmp_path / "paper.yaml"
    bad.write_text("- {task: a, model: b, variant: '', metric: m, value: 1}\n"
                   "- {task: a, model: b, variant: '', metric: m, value: 2}\n")
    with pytest.raises(ResultsError, match="listed twice"):
        load_paper(bad)
    bad.write_text("- {task: a, model: b, variant: '', metric: m, value: high}\n")
    with pytest.raises(ResultsError, match="not a number"):
        load_paper(bad)


def test_errors_name_the_file(campaign, capsys):
    (campaign / "results" / "sb-s2" / "metrics.json").write_text("{not json")
    assert cli.main(["results", str(campaign / "results")]) == 1
    assert "sb-s2/metrics.json" in capsys.readouterr().err
    assert cli.main(["results", str(campaign / "results"), "--paper", str(campaign / "nope.yaml")]) == 1
    assert "nope.yaml" in capsys.readouterr().err


def test_report_reads_gzipped_predictions_and_results_link_the_plots(campaign, tmp_path, monkeypatch):
    trees = read_trees(FIXTURES / "report_trees.txt")
    predictions = [[2, *tree.labels[1:]] for tree in trees]
    plain = write_predictions(tmp_path / "test_predictions.jsonl", trees, predictions, SST5_NAMES)
    folder = campaign / "results" / "sb-lr5e-05-s1"
    with gzip.GzipFile(folder / "test_predictions.jsonl.gz", "wb", mtime=0) as f:
        f.write(plain.read_bytes())
    (folder / "metrics.json").write_text(json.dumps({**json.loads((folder / "metrics.json").read_text()),
                                                     "test": evaluate_predictions(trees, predictions)}))
    assert load_run(folder).predictions == list(zip(trees, predictions))

    drawn = []
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: drawn.append(plots_dir) or [])
    run_results(str(campaign / "results"))
    assert drawn == [campaign / "results" / "plots"]
    md = (campaign / "RESULTS.md").read_text()
    assert "- tiny, SST-phrase, main rows: [report](results/plots/tiny-sst_phrase/report.md)" in md


def write_gz_predictions(folder: Path, trees, predictions) -> None:
    plain = write_predictions(folder / "plain.jsonl", trees, predictions, SST5_NAMES)
    with gzip.GzipFile(folder / "test_predictions.jsonl.gz", "wb", mtime=0) as f:
        f.write(plain.read_bytes())
    plain.unlink()


def test_paired_comparison_with_the_reference_row(campaign, monkeypatch, capsys):
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    wrong_root = [[(labels[0] + 1) % 5, *labels[1:]] for labels in gold]
    write_gz_predictions(results / "sb-lr5e-05-s1", trees, gold)  # sb: every node right, both seeds
    write_gz_predictions(results / "sb-s2", trees, gold)
    write_run(results, "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.50, sst5_test(0.6, 0.5, 0.3))  # mp's grid picks 2e-05
    write_gz_predictions(results / "mp-lr2e-05-s1", trees, wrong_root)  # mp: every root wrong
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    nodes = sum(len(tree) for tree in trees)
    phrase = f"{-100 * len(trees) / nodes:+.2f}"
    assert f"| mean_pool | tiny |  | 32 | 1 | sentibert (pre-trained), 2 | {phrase}* [" in md
    assert "| -100.00* [-100.00, -100.00] |" in md  # every root: right in sb, wrong in mp, whatever the resample

    write_gz_predictions(results / "sb-s2", trees[1:], gold[1:])  # a seed tested on other sentences
    assert cli.main(["results", str(results)]) == 1
    assert "sb-s2: seed 2 of 2 was tested on other sentences than seed 1" in capsys.readouterr().err


def test_a_seed_without_test_predictions_is_named_not_dropped(campaign, monkeypatch):
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    for run in ("sb-lr5e-05-s1", "mp-lr2e-05-s1"):  # sb-s2 has none
        write_gz_predictions(results / run, trees, gold)
    write_run(results, "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.50, sst5_test(0.6, 0.5, 0.3))
    run_results(str(results))
    assert ("| mean_pool | tiny |  | 32 | 1 | sentibert (pre-trained), 2 | no test predictions in sb-s2 | – |"
            in (campaign / "RESULTS.md").read_text())


@pytest.mark.parametrize("key, value, message", [
    ("test", "oops", 'test is "oops", not a JSON object of test metrics'),
    ("campaign", ["sb", 2], 'campaign is ["sb", 2], not a JSON object (the campaign\'s record of the run)'),
    ("best_dev", "0.7", 'best_dev is "0.7", not a number or null'),
    ("best_dev", True, "best_dev is true, not a number or null"),
    ("campaign.seconds", "1800", 'campaign.seconds is "1800", not a number'),
    ("campaign.machine", 7, "campaign.machine is 7, not a string"),
    ("campaign.threads", 2.0, "campaign.threads is 2.0, not an integer"),
    ("campaign.jobs", "1", 'campaign.jobs is "1", not an integer'),
])
def test_a_metrics_file_with_a_value_of_the_wrong_kind_names_the_file_and_the_key(campaign, capsys, key, value,
                                                                                    message):
    path = campaign / "results" / "sb-s2" / "metrics.json"
    metrics = json.loads(path.read_text())
    block, _, name = key.rpartition(".")
    (metrics[block] if block else metrics)[name] = value
    path.write_text(json.dumps(metrics))
    assert cli.main(["results", str(campaign / "results")]) == 1
    assert capsys.readouterr().err == (f"sentibert results: error: {path}: {message}; the file is damaged: restore "
                                       "it, or collect the run again\n")


def test_the_committed_tables_are_regenerated_byte_for_byte(tmp_path):
    """experiments/RESULTS.md, summary.csv and README.md's result tables are what `sentibert results` makes of the
    committed run results (a result committed without regenerating the tables fails here)."""
    root = Path(__file__).resolve().parents[1]
    experiments, copy = root / "experiments", tmp_path / "experiments"
    shutil.copytree(experiments / "results", copy / "results", ignore=shutil.ignore_patterns("plots"))
    for name in ("campaign.yaml", "paper.yaml"):
        shutil.copy(experiments / name, copy / name)
    shutil.copy(root / "README.md", tmp_path / "README.md")  # where the command finds it: RESULTS_DIR/../..
    run_results(str(copy / "results"), "--no-plots")
    assert (copy / "RESULTS.md").read_bytes() == (experiments / "RESULTS.md").read_bytes()
    assert (copy / "results" / "summary.csv").read_bytes() == (experiments / "results" / "summary.csv").read_bytes()
    assert (tmp_path / "README.md").read_bytes() == (root / "README.md").read_bytes()


def test_the_runs_table_shows_what_the_hours_were_measured_on(campaign):
    """Each distinct machine once, keyed under the table; – for a run that recorded none (collected by an older
    runner); threads per run × runs at once beside it."""
    results = campaign / "results"
    cpu, gpu = "Some CPU (native bf16: AMX), 8 cores", "Some GPU"
    write_run(results, "sb-s3", "sb", 3, 5e-5, 0.6, sst5_test(0.66, 0.56, 0.45),
              measured_on={"machine": cpu, "threads": 4, "jobs": 2})
    write_run(results, "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.50, sst5_test(0.6, 0.5, 0.3),
              measured_on={"machine": gpu, "threads": 1, "jobs": 1})
    shutil.rmtree(results / "joy-s1")  # joy-s1 again, collected by a runner like sb-s3's
    write_run(results, "joy-s1", "joy", 1, 2e-5, 0.6, {"pearson": 0.6},
              measured_on={"machine": cpu, "threads": 4, "jobs": 2})
    write_run(results, "stray-s1", "joy", 1, 2e-5, 0.6, {"pearson": 0.1},  # in no campaign group
              measured_on={"machine": "Another CPU", "threads": 1, "jobs": 1})
    run_results(str(results), "--no-plots")
    md = (campaign / "RESULTS.md").read_text()
    assert "| group | runs with results | missing | commits | precision | hours | machine | threads × jobs |" in md
    assert "| sb | sb-lr5e-05-s1 sb-s2 sb-s3 | – | aaaaaaa, bbbbbbb (dirty) | 32 | 2.5 | –, m1 | –, 4×2 |" in md
    # the pick (2e-05, no machine recorded) and the grid run that lost, on the GPU: what the row cost
    assert "| mp | mp-lr2e-05-s1 | mp-s2 | aaaaaaa | 32 | 1.0 | –, m2 | –, 1×1 |" in md
    assert "| joy | joy-s1 | – | aaaaaaa | 32 | 0.5 | m1 | 4×2 |" in md
    assert "| pre | pre-s1 | – | aaaaaaa | 32 | 0.5 | – | – |" in md
    assert f"\n- m1: {cpu}\n- m2: {gpu}\n" in md and "Another CPU" not in md  # a machine of no row's runs: not listed
    assert "– for a run collected before the runner recorded its machine." in md


def test_each_row_shows_the_precision_its_runs_trained_in(campaign, capsys):
    results = campaign / "results"
    (results / "joy-s1" / "config.yaml").write_text("name: x\ntrainer:\n  precision: bf16\n")
    run_results(str(results))
    rows = summary(campaign)
    assert rows["emoint_joy/cls", "pearson"]["precision"] == "bf16"
    assert rows["sst_phrase/sentibert", "phrase_acc"]["precision"] == "32"  # no trainer.precision: the default
    md = (campaign / "RESULTS.md").read_text()
    assert "| EmoInt joy | cls | tiny |  | bf16 | 1/1 | 2e-05 (fixed) | 60.00 | 65.18 | aaaaaaa |" in md
    assert "| joy | joy-s1 | – | aaaaaaa | bf16 | 0.5 |" in md
    (results / "sb-s2" / "config.yaml").unlink()
    assert cli.main(["results", str(results)]) == 1
    assert "sb-s2/config.yaml: cannot read the run's precision" in capsys.readouterr().err


TRANSFER = """\
  - {group: joysb, task: emoint_joy, model: sentibert, encoder: tiny, variant: pre-trained,
     overrides: [experiment=emoint_joy], init_from: pre, lr: 2.0e-5, seeds: [1, 2, 3]}
  - {group: big-joysb, task: emoint_joy, model: sentibert, encoder: mpnet, variant: pre-trained (bf16),
     overrides: [experiment=emoint_joy, encoder=mpnet, trainer.precision=bf16], init_from: pre, lr: 2.0e-5,
     seeds: [1, 2, 3]}
  - {group: big-joy, task: emoint_joy, model: cls, encoder: mpnet, variant: bf16,
     overrides: [experiment=emoint_joy, encoder=mpnet, model=cls, trainer.precision=bf16], lr: 2.0e-5,
     seeds: [1, 2, 3]}
"""


def test_transfer_table_sentibert_minus_cls_per_encoder_with_pending_rows(campaign, monkeypatch):
    """tiny: SentiBERT 1 of 3 seeds, [CLS] 1 of 1, with the paired bootstrap of Pearson r; mpnet: 0 of 3 (pending)."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    (campaign / "campaign.yaml").write_text(CAMPAIGN + TRANSFER)
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt") * 4
    gold = [tree.labels[0] for tree in trees]
    roots = {"joysb-s1": [g if i % 5 else min(4, g + 1) for i, g in enumerate(gold)],  # close to gold
             "joy-s1": [g if i % 3 else (g + 2) % 5 for i, g in enumerate(gold)]}  # further off
    r = {run: transfer_metrics(gold, pred, 5)["pearson"] for run, pred in roots.items()}
    write_run(results, "joysb-s1", "joysb", 1, 2e-5, 0.6, {"pearson": r["joysb-s1"]})
    (results / "joy-s1" / "metrics.json").write_text((results / "joy-s1" / "metrics.json").read_text().replace(
        '"pearson": 0.6', f'"pearson": {r["joy-s1"]}'))
    for run, pred in roots.items():
        write_gz_predictions(results / run, trees, [[p, *[2] * (len(t) - 1)] for p, t in zip(pred, trees)])
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| task | metric | encoder | precision | baseline | SentiBERT (seeds) | baseline (seeds) | " \
           "Δ SentiBERT − baseline [95% interval] | paper: SentiBERT / baseline / Δ |" in md
    # SST-3's baseline, BERT* (mean pooling), has no group in this campaign
    assert "| SST-3 | SST-3 root | tiny | 32 | BERT* | 75.00 (1/2) | – | – (not in the campaign) | 77.34 / 73.35 / " \
           "+3.99 |" in md
    delta = f"{100 * (r['joysb-s1'] - r['joy-s1']):+.2f}*"
    assert f"| EmoInt joy | Pearson r | tiny | 32 | BERT | {100 * r['joysb-s1']:.2f} (1/3) | {100 * r['joy-s1']:.2f} (1/1) | " \
           f"{delta} [" in md
    assert "| EmoInt joy | Pearson r | mpnet | – | BERT | – (0/3) | – (0/3) | – (pending) | 68.90 / 65.18 / +3.72 |" \
        in md
    # the paper's numbers follow the model, whatever the precision in its variant
    assert "| EmoInt joy | sentibert | mpnet | pre-trained (bf16) | – | 0/3 | 2e-05 (fixed) | – | 68.90 | – |" in md

    (results / "joysb-s1" / "config.yaml").write_text("trainer:\n  precision: bf16\n")  # the pair: no longer alike
    run_results(str(results))
    assert f"| {100 * r['joy-s1']:.2f} (1/1) | – (precisions differ: bf16 and 32) | 68.90 / 65.18 / +3.72 |" in \
        (campaign / "RESULTS.md").read_text()


def test_rows_are_grouped_per_encoder_and_fixed_lrs_are_said(campaign, monkeypatch):
    """A group listed after another encoder's still sits with its own encoder's rows; a fixed lr reads `(fixed)` in
    RESULTS.md and `lr ..., no grid` in README's SST-phrase table."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    (campaign / "campaign.yaml").write_text(CAMPAIGN + """\
  - {group: bigmp, task: sst_phrase, model: mean_pool, encoder: mpnet, variant: big,
     overrides: [experiment=sst_phrase, encoder=mpnet, model=mean_pool], lr: 2.0e-5, seeds: [1]}
  - {group: late, task: sst_phrase, model: cls, encoder: tiny, variant: "", overrides: [experiment=sst_phrase,
     model=cls], lr: 1.0e-4, seeds: [1]}
""")
    results = campaign / "results"
    write_run(results, "bigmp-s1", "bigmp", 1, 2e-5, 0.6, sst5_test(0.6, 0.5, 0.3))
    write_run(results, "late-s1", "late", 1, 1e-4, 0.6, sst5_test(0.6, 0.5, 0.3))
    run_results(str(results))
    main = (campaign / "RESULTS.md").read_text().split("### SST-phrase")[1].split("###")[0]
    rows = [line.split(" | ")[:3] for line in main.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [["| sentibert", "tiny", "pre-trained"], ["| mean_pool", "tiny", ""], ["| cls", "tiny", ""],
                    ["| mean_pool", "mpnet", "big"]]
    assert "| cls | tiny |  | 32 | 1/1 | 1e-04 (fixed) |" in main
    readme = (campaign.parent / "README.md").read_text()
    assert "| [CLS] | tiny | lr 1e-04, no grid | 32 | 1/1 |" in readme
    assert "| mean pooling | MPNet-base | big; lr 2e-05, no grid | 32 | 1/1 |" in readme


def test_sst3_sentibert_minus_bert_star_reads_each_runs_label_view(campaign, monkeypatch):
    """SST-3: the paper's claim is over BERT* (mean pooling). s3-s1 wrote its predictions before files named their
    classes (5-class gold, 3-class predictions: its config's data.label_view maps the gold); s3mp-s1 names them."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    (campaign / "campaign.yaml").write_text(CAMPAIGN + """\
  - {group: s3mp, task: sst3, model: mean_pool, encoder: tiny, variant: "", overrides: [experiment=sst3,
     model=mean_pool], lr_from: sb, seeds: [1]}
""")
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt") * 4
    right = [[to_sst3(label) for label in tree.labels] for tree in trees]
    old = [json.dumps({"tree": tree.to_ptb(), "pred": pred}) for tree, pred in zip(trees, right)]
    (results / "s3-s1" / "test_predictions.jsonl.gz").write_bytes(gzip.compress("\n".join(old).encode()))
    (results / "s3-s1" / "config.yaml").write_text("data:\n  label_view: sst3\nmodel:\n  num_classes: 3\n")
    write_run(results, "s3mp-s1", "s3mp", 1, 5e-5, 0.7, {"sst3_root_acc": 0.75})
    wrong_root = [[(pred[0] + 1) % 3 if i % 4 == 0 else pred[0], *pred[1:]] for i, pred in enumerate(right)]
    plain = write_predictions(results / "s3mp-s1" / "plain.jsonl", [relabel(t, "sst3") for t in trees], wrong_root,
                              SST3_NAMES)
    (results / "s3mp-s1" / "test_predictions.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| task | metric | encoder | precision | baseline | SentiBERT (seeds) | baseline (seeds) | " \
           "Δ SentiBERT − baseline [95% interval] | paper: SentiBERT / baseline / Δ |" in md
    assert "| SST-3 | SST-3 root | tiny | 32 | BERT* | 75.00 (1/2) | 75.00 (1/1) | +25.00* [" in md  # 1 root in 4
    assert "] | 77.34 / 73.35 / +3.99 |" in md


def test_fine_grained_table_beside_the_papers_numbers(campaign):
    """Ours on the paper's test subset (paper_test_metrics.json), the paper's SentiBERT and BERT* after each model."""
    run_results(str(campaign / "results"))
    md = (campaign / "RESULTS.md").read_text()
    section = md[md.index("### Beside the paper"):]
    assert "| model | encoder | variant | precision | seeds | negation 0 | negation 1 | negation 2+ | contrast | " \
           "local difficulty 0 | local difficulty 1 | local difficulty 2 |" in section
    # sb: only its grid run has a paper-subset evaluation (sst5_test: negation 0.8 / 0.5 / 1.0, local 0.9 only)
    assert "| sentibert | tiny | pre-trained | 32 | 2/3 | 80.00 | 50.00 | 100.00 | 37.50 | 90.00 | – | – |\n" \
           "| SentiBERT (paper) | BERT-base |  | – | – | 78.45 | 76.25 | 70.56 | 39.87 | 85.39 | 60.80 | 49.40 |\n" \
           "| mean_pool | tiny |  | 32 | 1/2, grid 1/2 | – | – | – | – | – | – | – |\n" \
           "| BERT* (paper) | BERT-base |  | – | – | 75.04 | 71.40 | 68.77 | 28.48 | 83.00 | 55.54 | 31.97 |\n" in section
    paper = load_paper(PAPER)
    assert paper["sst_phrase", "sentibert", "pre-trained", "local_difficulty.2"] == 49.40
    assert paper["sst_phrase", "mean_pool", "", "negation.2+"] == 68.77


def test_pairs_share_a_precision_but_a_precision_check(campaign, monkeypatch):
    """mp trained in bf16 is not compared with sb (float32); mpbf, mp's group again with trainer.precision=bf16, is
    compared with mp and labelled a precision check."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    (campaign / "campaign.yaml").write_text(CAMPAIGN + """\
  - {group: mpbf, task: sst_phrase, model: mean_pool, encoder: tiny, variant: bf16,
     overrides: [experiment=sst_phrase, model=mean_pool, trainer.precision=bf16], lr_from: mp, seeds: [1]}
""")
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    write_gz_predictions(results / "sb-lr5e-05-s1", trees, gold)
    write_gz_predictions(results / "sb-s2", trees, gold)
    write_run(results, "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.50, sst5_test(0.6, 0.5, 0.3))  # mp's grid picks 2e-05
    write_gz_predictions(results / "mp-lr2e-05-s1", trees, gold)
    write_run(results, "mpbf-s1", "mpbf", 1, 2e-5, 0.55, sst5_test(0.6, 0.5, 0.3), precision="bf16")
    write_gz_predictions(results / "mpbf-s1", trees, gold)
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| mean_pool | tiny |  | 32 | 1 | sentibert (pre-trained), 2 | +0.00 [" in md  # the same precision
    assert "| mean_pool | tiny | bf16 | bf16 vs 32: precision check | 1 | mean_pool, 1 | +0.00 [" in md
    # README's table: the check is labelled, and comes after the rows it checks
    readme = readme_tables(build(load_campaign(campaign / "campaign.yaml"), results, {})).split("\n\n")[0]
    assert readme.splitlines()[-1].startswith(  # mp's two-lr grid picked 2e-05, its smallest
        "| mean pooling | tiny | bf16; lr 2e-05, at the grid's end; precision check | bf16 | 1/1 |")

    (results / "mp-lr2e-05-s1" / "config.yaml").write_text("trainer:\n  precision: bf16\n")
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| mean_pool | tiny |  | bf16 | 1 |" not in md  # not set against a float32 SentiBERT
    assert "Not compared, as the two trained in different precisions: mean_pool on tiny (bf16) with sentibert " \
           "(pre-trained) (32).\n" in md


def test_rows_tuned_in_bf16_are_set_against_the_bf16_rows(campaign, monkeypatch):
    """The fair baselines as the MPNet rows run them: each group tuned in bf16 by its own grid (not a precision check
    of a float32 group), and compared with the row of its kind in bf16: mean pooling and SentiBERT without
    pre-training with pre-trained SentiBERT, LoRA with SentiBERT without pre-training. Pre-trained SentiBERT in bf16
    is compared with nothing (the float32 one ran at another lr)."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    bf16 = "trainer.precision=bf16"
    (campaign / "campaign.yaml").write_text(CAMPAIGN + f"""\
  - {{group: sbbf, task: sst_phrase, model: sentibert, encoder: tiny, variant: pre-trained (bf16),
     overrides: [experiment=sst_phrase, {bf16}], init_from: pre, lr_grid: [2.0e-5], seeds: [1]}}
  - {{group: mpt, task: sst_phrase, model: mean_pool, encoder: tiny, variant: tuned (bf16),
     overrides: [experiment=sst_phrase, model=mean_pool, {bf16}], lr_grid: [2.0e-5], seeds: [1]}}
  - {{group: scbf, task: sst_phrase, model: sentibert, encoder: tiny, variant: no pre-training (bf16),
     overrides: [experiment=sst_phrase, {bf16}], lr_grid: [2.0e-5], seeds: [1]}}
  - {{group: lobf, task: sst_phrase, model: sentibert, encoder: tiny, variant: LoRA (bf16),
     overrides: [experiment=sst_phrase, model=sentibert_lora, {bf16}], lr_grid: [2.0e-5], seeds: [1]}}
""")
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    for group in ("sbbf", "mpt", "scbf", "lobf"):
        write_run(results, f"{group}-lr2e-05-s1", group, 1, 2e-5, 0.6, sst5_test(0.6, 0.5, 0.3), precision="bf16")
        write_gz_predictions(results / f"{group}-lr2e-05-s1", trees, gold)
    for run in ("sb-lr5e-05-s1", "sb-s2", "mp-lr2e-05-s1"):
        write_gz_predictions(results / run, trees, gold)
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    pairs = md.split("## Paired comparisons")[1].split("\n## ")[0]
    assert "| mean_pool | tiny | tuned (bf16) | bf16 | 1 | sentibert (pre-trained (bf16)), 1 | +0.00 [" in pairs
    assert "| sentibert | tiny | no pre-training (bf16) | bf16 | 1 | sentibert (pre-trained (bf16)), 1 | +0.00 [" in pairs
    assert "| sentibert | tiny | LoRA (bf16) | bf16 | 1 | sentibert (no pre-training (bf16)), 1 | +0.00 [" in pairs
    assert "| mean_pool | tiny |  | 32 | 1, grid 1/2 | sentibert (pre-trained), 2 | +0.00 [" in pairs
    lines = [line for line in pairs.splitlines() if line.startswith("| ")]
    assert len(lines) == 2 + 4  # header, rule, and the four above: sbbf is compared with nothing
    assert "Not compared" not in pairs

    shutil.rmtree(results / "scbf-lr2e-05-s1")  # LoRA's reference without results: said, not left out
    run_results(str(results))
    pairs = (campaign / "RESULTS.md").read_text().split("## Paired comparisons")[1].split("\n## ")[0]
    assert "| sentibert | tiny | LoRA (bf16) | bf16 | 1 | sentibert (no pre-training (bf16)), 0 | " \
           "pending: the compared model has no results yet | – |" in pairs


def test_the_readme_tables_are_regenerated_between_its_markers(campaign):
    """README.md's short tables, from the same rows: the rows with results, each variant with its lr's pick (mp's
    provisional), between the marker lines; the prose around them is kept."""
    run_results(str(campaign / "results"))
    readme = (campaign.parent / "README.md").read_text()
    before, rest = readme.split(README_BEGIN + "\n")
    block, after = rest.split(README_END + "\n")
    assert before == README.split(README_BEGIN)[0] and after == README.split(README_END + "\n")[1]
    assert "hand-copied" not in block
    assert "| model | encoder | variant | precision | seeds | phrase | SST-5 root | contrast | " \
           "paper (BERT-base): phrase / SST-5 root / contrast |" in block
    assert "| SentiBERT | tiny | pre-trained; lr 5e-05 picked on dev | 32 | 2/3 | 69.00 ± 1.41 | 56.00 ± 1.41 | " \
           "45.00 ± 7.07 | 68.98 / 56.04 / 39.87 |\n" \
           "| mean pooling | tiny | lr 2e-05 best on dev so far | 32 | 1/2, grid 1/2 | 60.00 | 50.00 | 30.00 | " \
           "65.22 / 50.23 / 28.48 |\n" in block
    assert "| SST-3 | SST-3 root | SentiBERT | tiny | pre-trained | 32 | 1/2 | 75.00 | 77.34 |\n" \
           "| EmoInt joy | Pearson r | [CLS] | tiny |  | 32 | 1/1 | 60.00 | 65.18 |\n" in block
    assert "pre-training" not in block  # a stage: no test metrics
    assert "`grid k/n` in `seeds`: provisional:" in block
    run_results(str(campaign / "results"))  # again: the same bytes, the markers kept
    assert (campaign.parent / "README.md").read_text() == readme


@pytest.mark.parametrize("text, found", [
    ("# Project\n\nNo tables here.\n", f"{README_BEGIN} at no line; {README_END} at no line"),
    (f"{README_END}\n{README_BEGIN}\n", f"{README_BEGIN} at line 2; {README_END} at line 1"),
    (f"{README_BEGIN}\n{README_END}\n{README_BEGIN}\n", f"{README_BEGIN} at line 1, line 3; {README_END} at line 2"),
])
def test_a_readme_without_its_marker_lines_is_a_one_line_error_and_nothing_is_written(campaign, capsys, text, found):
    readme = campaign.parent / "README.md"
    readme.write_text(text)
    assert cli.main(["results", str(campaign / "results"), "--no-plots"]) == 1
    assert capsys.readouterr().err == (f"sentibert results: error: {readme}: its result tables go between one line "
                                       f"{README_BEGIN} and one line {README_END} after it ({found})\n")
    assert readme.read_text() == text
    assert not (campaign / "RESULTS.md").exists() and not (campaign / "results" / "summary.csv").exists()
    readme.unlink()
    assert cli.main(["results", str(campaign / "results"), "--no-plots"]) == 1
    assert capsys.readouterr().err.startswith(f"sentibert results: error: {readme}: cannot read it (No such file")


def test_a_readme_elsewhere_is_named_by_the_option(campaign, tmp_path):
    other = tmp_path / "docs" / "README.md"
    other.parent.mkdir()
    other.write_text(README)
    (campaign.parent / "README.md").unlink()  # the default is not read
    run_results(str(campaign / "results"), "--no-plots", "--readme", str(other))
    assert "| mean pooling | tiny | lr 2e-05 best on dev so far |" in other.read_text()
    assert (campaign / "RESULTS.md").read_text().startswith(
        "_Generated by `sentibert results experiments/results --readme docs/README.md` ")


def test_a_provisional_row_shows_its_runs_at_the_best_lr_so_far_and_nothing_goes_stale(campaign, monkeypatch):
    """mp's grid is half done: its row takes 2e-05 (the best so far) and its runs made at it; mp-s2, made at 5e-05, is
    left out but not stale. Once the grid is done, the pick decides: 5e-05 takes mp-s2 in; 2e-05 makes it stale."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    for run in ("sb-lr5e-05-s1", "sb-s2", "mp-lr2e-05-s1"):
        write_gz_predictions(results / run, trees, gold)
    write_run(results, "mp-s2", "mp", 2, 5e-5, 0.57, sst5_test(0.64, 0.54, 0.34))
    (results / "mp-s2" / "config.yaml").write_text("trainer:\n  lr: 5.0e-05\n")
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| mean_pool | tiny |  | 32 | 1/2, grid 1/2 | 2e-05 (grid, provisional) | 60.00 |" in md
    assert "| mp | mp-lr2e-05-s1 | lr grid (1 of 2 runs) mp-s2 (trained at 5e-05, not the provisional pick) |" in md
    assert "stale" not in md
    # the paired comparison with a provisional row says so
    assert "A pair with a provisional row (`grid k/n` in `seeds`: its lr is the best so far of an unfinished grid) " \
           "is provisional too" in md
    assert "| mean_pool | tiny |  | 32 | 1, grid 1/2 | sentibert (pre-trained), 2 | +0.00 [" in md

    write_run(results, "mp-lr5e-05-s1", "mp", 1, 5e-5, 0.56, sst5_test(0.62, 0.52, 0.30))  # 5e-05 wins: mp-s2 in
    run_results(str(results))
    rows = summary(campaign)
    assert [rows["sst_phrase/mean_pool", "phrase_acc"][k] for k in ("n_seeds", "provisional", "mean")] == \
        ["2", "", "63.00"]
    md = (campaign / "RESULTS.md").read_text()
    assert "| mean_pool | tiny |  | 32 | 2/2 | 5e-05 (grid, at its end) | 63.00 ± 1.41 |" in md
    assert "grid 1/2" not in md and ", provisional)" not in md and "`grid k/n` in `seeds`" not in md

    (results / "mp-lr5e-05-s1" / "metrics.json").write_text(
        (results / "mp-lr5e-05-s1" / "metrics.json").read_text().replace('"best_dev": 0.56', '"best_dev": 0.5'))
    run_results(str(results))  # 2e-05 wins after all: mp-s2, made at 5e-05, is stale now
    assert "| mean_pool | tiny |  | 32 | 1/2, 1 stale | 2e-05 (grid, at its end) | 60.00 |" in (
        campaign / "RESULTS.md").read_text()


def test_lora_rows_of_any_rank_are_compared_with_sentibert_without_pre_training(campaign, monkeypatch):
    """ab, an ablation, takes its lr from sc, SentiBERT without pre-training: sc is the reference. lo32 takes its lr
    from lo (another LoRA rank): lo stays a variant, set against sc like lo32 and ab, not a reference itself. lo is
    LoRA by its composed config (model.lora_rank), whichever override sets it."""
    monkeypatch.setattr("sentibert.campaign.tables.draw_plots", lambda tables, plots_dir: [])
    (campaign / "campaign.yaml").write_text(CAMPAIGN + """\
  - {group: sc, task: sst_phrase, model: sentibert, encoder: tiny, variant: no pre-training,
     overrides: [experiment=sst_phrase], lr_grid: [2.0e-5], seeds: [1]}
  - {group: ab, task: sst_phrase, model: sentibert, encoder: tiny, variant: no token attention,
     overrides: [experiment=sst_phrase, model=sentibert_no_token_attention], lr_from: sc, seeds: [1]}
  - {group: lo, task: sst_phrase, model: sentibert, encoder: tiny, variant: LoRA,
     overrides: [experiment=sst_phrase, model.lora_rank=16], lr_grid: [2.0e-5], seeds: [1]}
  - {group: lo32, task: sst_phrase, model: sentibert, encoder: tiny, variant: LoRA r32,
     overrides: [experiment=sst_phrase, model=sentibert_lora, model.lora_rank=32], lr_from: lo, seeds: [1]}
""")
    results = campaign / "results"
    trees = read_trees(FIXTURES / "report_trees.txt")
    gold = [list(tree.labels) for tree in trees]
    for run, group in (("sc-lr2e-05-s1", "sc"), ("ab-s1", "ab"), ("lo-lr2e-05-s1", "lo"), ("lo32-s1", "lo32")):
        write_run(results, run, group, 1, 2e-5, 0.6, sst5_test(0.6, 0.5, 0.3))
        write_gz_predictions(results / run, trees, gold)
    run_results(str(results))
    md = (campaign / "RESULTS.md").read_text()
    assert "| sentibert | tiny | LoRA | 32 | 1 | sentibert (no pre-training), 1 | +0.00 [" in md
    assert "| sentibert | tiny | LoRA r32 | 32 | 1 | sentibert (no pre-training), 1 | +0.00 [" in md
    assert "| sentibert | tiny | LoRA | 32 | 1 | sentibert (pre-trained)" not in md
