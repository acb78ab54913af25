"""The campaign runner: expansion, lr picked on dev, init_from, skipping finished runs, failures, and a dry run.
Training is replaced by a stand-in command that writes what `sentibert train` writes; the real thing is covered by
tests/test_train.py and tests/test_protocol.py (and `slow` below)."""
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentibert.commands import campaign as campaign_command
from sentibert.io import LockHeld
from sentibert.campaign import results as results_tables, runner
from sentibert.campaign.runner import dry_run, run_campaign
from sentibert.campaign.spec import CampaignError, grid_runs, load_campaign, picked_lr
from sentibert.device import describe_hardware, pick_device

# best_dev of a stand-in run: a function of its lr and seed; lr 5e-4 wins the grid.
FAKE_TRAIN = r"""
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[1:])
run_dir = Path(args["hydra.run.dir"])
if "fail" in args["name"]:
    sys.exit(3)
if "stop" in args["name"]:  # as `sentibert train` does on SIGTERM, once it has checkpointed
    sys.exit(143)
lr, seed = float(args["trainer.lr"]), int(args["seed"])
dev = {1e-3: 0.5, 5e-4: 0.7, 1e-4: 0.7, 2e-3: 0.9, 3e-3: 0.1, 4e-3: 0.95}[lr] + seed / 100
(run_dir / "metrics.json").write_text(json.dumps({"name": args["name"], "metric": "phrase_acc", "best_dev": dev,
    "dev": [{"epoch": 1, "phrase_acc": dev}],
    "test": {"phrase_acc": dev - 0.1}, "init_from": args.get("init_from")}))
(run_dir / "config.yaml").write_text(json.dumps({"trainer": {"lr": lr}, "overrides": sys.argv[1:]}))
(run_dir / "test_predictions.jsonl").write_text('{"tree": "(2 a)"}\n')
(run_dir / "best_model").mkdir(exist_ok=True)
(run_dir / "best_model" / "model.safetensors").write_bytes(b"weights")
(run_dir / "checkpoints" / "epoch1-step1").mkdir(parents=True, exist_ok=True)
(run_dir / "checkpoints" / "epoch1-step1" / "state.pt").write_bytes(b"optimizer")
(run_dir / "checkpoints" / "latest").write_text("epoch1-step1")
"""

CAMPAIGN = """
overrides: [logger=none]
paper_test: []
minutes_per_sst_epoch: {tiny: {32: 1.0}}
epoch_cost: {sst: 1.0}
groups:
  - {group: pre, task: sst_phrase_pretrain, model: sentibert, encoder: tiny, variant: pre-training,
     overrides: [experiment=sst_phrase_pretrain], lr: 1.0e-4, seeds: [1]}
  - {group: sb, task: sst_phrase, model: sentibert, encoder: tiny, variant: pre-trained, overrides: [experiment=sst_phrase],
     init_from: pre, lr_grid: [1.0e-3, 5.0e-4, 1.0e-4], seeds: [1, 2]}
  - {group: abl, task: sst_phrase, model: sentibert, encoder: tiny, variant: root only,
     overrides: [experiment=sst_phrase, model=sentibert_root_only], lr_from: sb, seeds: [1]}
"""


@pytest.fixture
def fake_training(monkeypatch):
    monkeypatch.setattr(runner, "commands",
                        lambda campaign, run, overrides, run_dir: [[sys.executable, "-c", FAKE_TRAIN, *overrides,
                                                                    f"hydra.run.dir={run_dir}"]])


def write_campaign(tmp_path: Path, text: str = CAMPAIGN) -> Path:
    path = tmp_path / "experiments" / "campaign.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_groups_expand_into_named_runs(tmp_path):
    campaign = load_campaign(write_campaign(tmp_path))
    assert [run.name for run in campaign.runs] == [
        "pre-s1", "sb-lr1e-03-s1", "sb-lr5e-04-s1", "sb-lr1e-04-s1", "sb-s2", "abl-s1"]
    assert [run.grid for run in campaign.runs] == [False, True, True, True, False, False]


@pytest.mark.parametrize("edit, message", [
    (("lr_grid: [1.0e-3, 5.0e-4, 1.0e-4]", "lr_gird: [1.0e-3]"), "unknown keys \\['lr_gird'\\]"),
    (("init_from: pre,", "init_from: later,"), "'later' is not a group listed before it"),
    (("lr_from: sb", "lr_from: pre"), "lr_from 'pre', which has no lr_grid"),
    (("lr: 1.0e-4, seeds: [1]}", "seeds: [1]}"), r"groups\[0\] \(pre\): give exactly one of lr, lr_grid, lr_from"),
    (("lr: 1.0e-4, seeds: [1]}", "lr: 1.0e-4, lr_extend: [2.0e-4], seeds: [1]}"),
     r"groups\[0\] \(pre\): lr_extend extends an lr_grid: give one"),
    (("1.0e-4], seeds: [1, 2]", "1.0e-4], lr_extend: [2.0e-3, 2.0e-4], seeds: [1, 2]"),
     r"groups\[1\] \(sb\): lr_extend: \[0.0002\] not beyond the ends of lr_grid \[0.001, 0.0005, 0.0001\]"),
    (("1.0e-4], seeds: [1, 2]", "1.0e-4], lr_extend: [2.0e-3, 2.0e-3], seeds: [1, 2]"),
     r"groups\[1\] \(sb\): lr 2e-03 listed twice in lr_grid and lr_extend"),
    (("1.0e-4], seeds: [1, 2]", "1.0e-4], lr_extend: 2.0e-3, seeds: [1, 2]"),
     r"groups\[1\] \(sb\): lr_extend: 0.002 is not a non-empty list of numbers > 0"),
    # a group's name names folders: it cannot lead out of the runs and results folders
    (("group: abl,", "group: ../../escape,"), r"groups\[2\]: group: '../../escape' is not a name of letters, "
                                              "digits, _, - and . not starting with ."),
    (("group: abl,", "group: a/b,"), "group: 'a/b' is not a name"),
    (("group: abl,", "group: '..',"), "group: '..' is not a name"),
    (("group: abl,", "group: '',"), "group: '' is not a name"),
    (("group: abl,", "group: 7,"), "group: 7 is not a name"),
    (("seeds: [1]}\n", "seeds: [1]}\n  - 7\n"), r"groups\[1\]: 7 is not a group: give a mapping"),
    (("lr_from: sb, seeds: [1]", "lr_from: sb, seeds: []"), r"groups\[2\] \(abl\): seeds: \[\] is not a non-empty "
                                                          "list of distinct integer seeds"),
    (("lr_from: sb, seeds: [1]", "lr_from: sb, seeds: [1, 1]"), r"\(abl\): seeds: \[1, 1\] is not"),
    (("lr_from: sb, seeds: [1]", "lr_from: sb, seeds: 1"), r"\(abl\): seeds: 1 is not"),
    (("lr: 1.0e-4,", "lr: fast,"), r"groups\[0\] \(pre\): lr: 'fast' is not a number > 0"),
    (("overrides: [experiment=sst_phrase_pretrain]", "overrides: experiment=sst_phrase_pretrain"),
     r"\(pre\): overrides: 'experiment=sst_phrase_pretrain' is not a list of `sentibert train` overrides"),
    (("variant: root only,", ""), r"groups\[2\]: missing keys \['variant'\]"),
    (("overrides: [logger=none]", "overrides: logger=none"), "campaign.yaml: overrides: 'logger=none' is not a list"),
    # minutes per SST epoch, per encoder and precision
    (("{tiny: {32: 1.0}}", "{tiny: 1.0}"), r"campaign.yaml: minutes_per_sst_epoch: \{'tiny': 1.0\} is not a mapping of "
                                           r"encoders to \{trainer.precision: minutes\}"),
    (("{tiny: {32: 1.0}}", "{tiny: {32: fast}}"), "minutes_per_sst_epoch: .* is not a mapping of encoders"),
    (("{tiny: {32: 1.0}}", "{tiny: {float32: 1.0}}"), "campaign.yaml: minutes_per_sst_epoch: tiny: float32 is not a "
                                                      r"trainer.precision \(32, bf16, 16\)$"),
])
def test_bad_campaign_files_are_refused(tmp_path, edit, message):
    assert edit[0] in CAMPAIGN
    with pytest.raises(CampaignError, match=message):
        load_campaign(write_campaign(tmp_path, CAMPAIGN.replace(*edit)))


def run_command(tmp_path: Path, capsys, *options: str) -> tuple[int, str, str]:
    """`sentibert campaign experiments/campaign.yaml --runs-dir runs OPTIONS`: (exit status, stdout, stderr)."""
    code = campaign_command.main([str(tmp_path / "experiments" / "campaign.yaml"), "--runs-dir",
                                  str(tmp_path / "runs"), *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_group_named_out_of_the_folders_is_refused_before_anything_is_written(tmp_path, fake_training, capsys):
    write_campaign(tmp_path, CAMPAIGN.replace("group: abl,", "group: ../x,"))
    assert run_command(tmp_path, capsys) == (1, "", f"sentibert campaign: error: {tmp_path}/experiments/campaign.yaml: "
                                                    "groups[2]: group: '../x' is not a name of letters, digits, _, - "
                                                    "and . not starting with . (it names the runs' folders)\n")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["campaign.yaml", "experiments"]


@pytest.mark.parametrize("override, message", [
    ("experiment=nosuch", "In 'train': Could not find 'experiment/nosuch'"),
    ("trainer.max_epochz=3", "Could not override 'trainer.max_epochz'. (Key 'max_epochz' not in 'TrainerConfig')"),
    ("trainer.max_epochs=three", "Error merging override trainer.max_epochs=three (Value 'three' of type 'str' could "
                                 "not be converted to Integer)"),
    ("trainer.lr=0", "trainer.lr=0.0 is out of range: use a value > 0"),
])
def test_an_override_that_does_not_compose_is_refused_before_anything_runs(tmp_path, fake_training, capsys,
                                                                          override, message):
    write_campaign(tmp_path, CAMPAIGN.replace("model=sentibert_root_only]", f"model=sentibert_root_only, {override}]"))
    for options in ((), ("--dry-run",)):
        code, out, err = run_command(tmp_path, capsys, *options)
        assert (code, out) == (1, "")
        assert err == (f"sentibert campaign: error: {tmp_path}/experiments/campaign.yaml: groups[2] (abl): overrides: "
                       f"{message}\n")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "experiments" / "results").exists()


def test_runs_in_dependency_order_and_picks_the_lr_on_dev(tmp_path, fake_training):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert "pre-s1                " in dry_run(campaign, results, runs, jobs=2)
    assert run_campaign(campaign, runs, results, jobs=2, threads=3, poll=0.05) == 0
    metrics = {p.name: json.loads((p / "metrics.json").read_text()) for p in results.iterdir()
               if not p.name.startswith(".")}  # .campaign.lock: the runner's
    assert set(metrics) == {run.name for run in campaign.runs}
    assert picked_lr(campaign, "sb", results) == 5e-4  # ties with 1e-4 on dev: the first listed wins
    assert metrics["sb-s2"]["campaign"]["lr"] == metrics["abl-s1"]["campaign"]["lr"] == 5e-4
    assert metrics["sb-s2"]["init_from"] == str((runs / "pre-s1" / "best_model").resolve())
    assert metrics["abl-s1"]["init_from"] is None
    block = metrics["sb-s2"]["campaign"]
    assert (block["group"], block["seed"], block["variant"], block["grid"]) == ("sb", 2, "pre-trained", False)
    assert len(block["commit"] or "") in (0, 40)
    # what its wall time was measured on: this machine (its device: trainer.device is auto), 3 threads a run, 2 at once
    assert (block["machine"], block["threads"], block["jobs"]) == (describe_hardware(pick_device("auto")), 3, 2)
    assert block["machine"] and "torch threads" not in block["machine"]  # the runner's own threads are not the run's
    assert sorted(p.name for p in (results / "sb-s2").iterdir()) == [
        "config.yaml", "metrics.json", "test_predictions.jsonl.gz"]
    assert "6 of 6 runs have results; 0 left" in dry_run(campaign, results, runs, jobs=1)
    # A collected run is never resumed: its training checkpoints go, its best model stays.
    assert [(runs / name / "checkpoints").exists() for name in metrics] == [False] * 6
    assert all((runs / name / "best_model" / "model.safetensors").is_file() for name in metrics)

    # Finished runs are skipped: a second pass starts nothing.
    (results / "abl-s1" / "metrics.json").write_text(json.dumps({**metrics["abl-s1"], "marker": 1}))
    assert run_campaign(campaign, runs, results, jobs=2, poll=0.05) == 0
    assert json.loads((results / "abl-s1" / "metrics.json").read_text())["marker"] == 1


GROWING = """
overrides: [logger=none]
groups:
  # 1e-3 (0.5) alone: its end, so 2e-3 (0.9) joins; again its end, so 3e-3 (0.1); 2e-3 is picked; 4e-3 never runs
  - {group: up, task: sst_phrase, model: sentibert, encoder: tiny, variant: "", overrides: [experiment=sst_phrase],
     lr_grid: [1.0e-3], lr_extend: [2.0e-3, 3.0e-3, 4.0e-3], seeds: [1, 2]}
  # 5e-4 beats 1e-3 at the low end, so 1e-4 joins: a tie, which the lr listed first wins; 2e-3 never runs
  - {group: down, task: sst_phrase, model: sentibert, encoder: tiny, variant: "", overrides: [experiment=sst_phrase],
     lr_grid: [5.0e-4, 1.0e-3], lr_extend: [1.0e-4, 2.0e-3], seeds: [1]}
  - {group: abl, task: sst_phrase, model: sentibert, encoder: tiny, variant: x, overrides: [experiment=sst_phrase],
     lr_from: up, seeds: [1]}
"""


def test_a_grid_grows_past_the_end_that_dev_picks_and_the_rest_waits_for_the_final_pick(tmp_path, fake_training,
                                                                                        caplog):
    caplog.set_level(logging.INFO, logger=runner.__name__)
    path = write_campaign(tmp_path, GROWING)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert "0 of 5 runs have results (5 lr_extend runs more if dev picks their grid's end); 5 left" in dry_run(
        campaign, results, runs, jobs=1)
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    started = [line.split()[1] for line in caplog.messages if line.startswith("started")]
    # one at a time, in the file's order: an extension comes before its group's other seeds and the later groups
    assert started == ["up-lr1e-03-s1", "up-lr2e-03-s1", "up-lr3e-03-s1", "up-s2", "down-lr5e-04-s1",
                       "down-lr1e-03-s1", "down-lr1e-04-s1", "abl-s1"]
    assert (picked_lr(campaign, "up", results), picked_lr(campaign, "down", results)) == (2e-3, 5e-4)
    for name in ("up-s2", "abl-s1"):  # the others waited for the grid's final pick
        assert json.loads((results / name / "metrics.json").read_text())["campaign"]["lr"] == 2e-3
    assert "8 of 8 runs have results; 0 left" in dry_run(campaign, results, runs, jobs=1)  # both picks are final
    # Results of an lr_extend run that its grid does not call for are no table's: the tables list them apart.
    shutil.copytree(results / "down-lr1e-04-s1", results / "down-lr2e-03-s1")
    assert results_tables.build(campaign, results, {}).orphans == ["down-lr2e-03-s1"]


def test_a_one_lr_grid_grows_below_when_nothing_lies_above(tmp_path, fake_training):
    path = write_campaign(tmp_path, GROWING.replace("lr_grid: [1.0e-3], lr_extend: [2.0e-3, 3.0e-3, 4.0e-3]",
                                                    "lr_grid: [1.0e-3], lr_extend: [5.0e-4]"))
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=1, only="up-*", poll=0.05) == 0
    assert [run.lr for run in grid_runs(campaign, "up", results)] == [1e-3, 5e-4]
    assert picked_lr(campaign, "up", results) == 5e-4
    assert "(2 lr_extend runs more" in dry_run(campaign, results, runs, jobs=1)  # down's, whose grid is still open
    assert "lr_extend runs more" not in dry_run(campaign, results, runs, jobs=1, only="up-*")


def test_checkpoints_are_kept_when_asked_and_dropped_later_by_a_runner_that_is_not_asked(tmp_path, fake_training):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=2, only="pre-*", poll=0.05, keep_checkpoints=True) == 0
    assert (runs / "pre-s1" / "checkpoints" / "latest").is_file()
    (runs / "sb-s2" / "checkpoints").mkdir(parents=True)  # a run with no results yet: not touched
    shutil.copytree(runs / "pre-s1", runs / "abl-s1")  # results, but no campaign.done: a run being rebuilt
    (runs / "abl-s1" / "campaign.done").unlink()
    shutil.copytree(results / "pre-s1", results / "abl-s1")
    assert run_campaign(campaign, runs, results, jobs=2, only="nothing", poll=0.05) == 0
    assert not (runs / "pre-s1" / "checkpoints").exists() and (runs / "pre-s1" / "best_model").is_dir()
    assert (runs / "sb-s2" / "checkpoints").is_dir() and (runs / "abl-s1" / "checkpoints").is_dir()


def test_a_finished_run_dir_whose_results_went_missing_is_collected_again_without_training(tmp_path, fake_training,
                                                                                         caplog):
    caplog.set_level(logging.INFO, logger=runner.__name__)
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=1, only="pre-*", poll=0.05) == 0
    collected = json.loads((results / "pre-s1" / "metrics.json").read_text())
    shutil.rmtree(results / "pre-s1")  # its checkpoints are gone too: training again would start afresh
    caplog.clear()
    assert run_campaign(campaign, runs, results, jobs=1, only="pre-*", poll=0.05) == 0
    assert not [line for line in caplog.messages if line.startswith("started")]
    assert "pre-s1 collected again from its finished run dir" in caplog.text
    again = json.loads((results / "pre-s1" / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if k != "campaign"} == {k: v for k, v in collected.items() if k != "campaign"}
    assert again["campaign"]["seconds"] == collected["campaign"]["seconds"]


def test_a_resumed_runs_wall_time_counts_its_earlier_runners(tmp_path, fake_training):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    (runs / "pre-s1").mkdir(parents=True)
    (runs / "pre-s1" / "campaign.seconds").write_text("1000\n")  # what a stopped runner left
    assert run_campaign(campaign, runs, results, jobs=1, only="pre-*", poll=0.05) == 0
    seconds = json.loads((results / "pre-s1" / "metrics.json").read_text())["campaign"]["seconds"]
    assert 1000 <= seconds < 1100
    assert float((runs / "pre-s1" / "campaign.seconds").read_text()) >= 1000


def test_ctrl_c_stops_the_runner_with_one_line_that_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    write_campaign(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(campaign_command, "run_campaign", interrupted)
    code, out, err = run_command(tmp_path, capsys)
    assert (code, out) == (130, "")
    assert err.startswith("sentibert campaign: stopped. Runs that got the signal too") and err.count("\n") == 1
    assert err.endswith("The same command goes on.\n")


def test_a_run_stopped_by_a_signal_is_not_a_failure_and_waits_for_the_next_runner(tmp_path, fake_training, capsys,
                                                                                     caplog):
    write_campaign(tmp_path, CAMPAIGN.replace("group: pre,", "group: pre_stop,").replace("init_from: pre,",
                                                                                         "init_from: pre_stop,"))
    code, out, err = run_command(tmp_path, capsys, "--only", "pre*")
    assert code == 0 and out.splitlines()[-1].startswith("0 of 6 runs have results; 1 left")
    assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == [
        "pre_stop-s1 stopped by SIGTERM: the same command goes on from its last checkpoint"]


def test_a_failed_run_is_reported_then_the_summary(tmp_path, fake_training, capsys, caplog):
    write_campaign(tmp_path, CAMPAIGN.replace("group: pre,", "group: pre_fail,").replace("init_from: pre,",
                                                                                         "init_from: pre_fail,"))
    code, out, err = run_command(tmp_path, capsys, "--only", "pre*")  # returns: the summary raised nothing
    assert code == 1 and out.splitlines()[-1].startswith("0 of 6 runs have results; 1 left")
    failed = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failed == [f"pre_fail-s1 failed (exit 3): see {tmp_path / 'runs' / 'pre_fail-s1' / runner.LOG_FILE}"]


HOLD_LOCK = """
import sys, time
from sentibert.io import process_lock
with process_lock(sys.argv[1], "test", "wait"):
    print("holding", flush=True)
    time.sleep(300)
"""


def test_one_runner_per_results_folder_and_a_dead_runners_lock_is_taken_over(tmp_path, fake_training, capsys):
    path = write_campaign(tmp_path)
    campaign, results = load_campaign(path), path.parent / "results"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(results / ".campaign.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"  # as a runner holds it while it runs
        with pytest.raises(LockHeld):
            run_campaign(campaign, tmp_path / "runs", results, poll=0.05)
        code, out, err = run_command(tmp_path, capsys)
    finally:
        holder.kill()
        holder.wait()
    assert (code, out) == (1, "")
    assert err == (f"sentibert campaign: error: results folder {results} is in use by process {holder.pid} on "
                   f"{socket.gethostname()} ({results / '.campaign.lock'}): another `sentibert campaign` runs on it; "
                   "wait for it to end, or stop it\n")
    assert not (tmp_path / "runs").exists()  # no run was started
    assert run_campaign(campaign, tmp_path / "runs", results, only="pre-*", poll=0.05) == 0  # its holder is gone
    assert (results / "pre-s1" / "metrics.json").is_file()


def test_a_failed_run_is_reported_and_what_depends_on_it_waits(tmp_path, fake_training):
    path = write_campaign(tmp_path, CAMPAIGN.replace("group: pre,", "group: pre_fail,").replace(
        "init_from: pre,", "init_from: pre_fail,"))
    campaign, results = load_campaign(path), path.parent / "results"
    assert run_campaign(campaign, tmp_path / "runs", results, jobs=1, poll=0.05) == 1
    assert not (results / "pre_fail-s1").exists() and not (results / "sb-s2").exists()
    assert "waits" in dry_run(campaign, results, tmp_path / "runs", jobs=1)


def test_a_run_left_by_a_stopped_runner_holds_its_slot_and_is_collected_after(tmp_path, fake_training, monkeypatch):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    left = {"pre-s1"}  # still training in another process, for the first two polls
    polls = iter(range(100))
    monkeypatch.setattr(runner, "running_elsewhere",
                        lambda run_dir: run_dir.name in left and next(polls) < 2)
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    assert (results / "pre-s1" / "metrics.json").is_file() and (results / "abl-s1" / "metrics.json").is_file()


def test_a_started_run_goes_first(tmp_path, fake_training, caplog):
    """A run with a checkpoint (as a stopped runner leaves one, its training ended or cut) takes the next free slot
    before runs listed earlier in the file: its work is done, or partly."""
    caplog.set_level(logging.INFO, logger=runner.__name__)
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=1, only="pre-*", poll=0.05) == 0
    (runs / "sb-lr1e-04-s1" / "checkpoints").mkdir(parents=True)
    (runs / "sb-lr1e-04-s1" / "checkpoints" / "latest").write_text("epoch1-step50\n")
    plan = {line.split()[0]: line.split()[1:] for line in dry_run(campaign, results, runs, 1).splitlines()[:-1]}
    resumed, fresh = (next(run for run in campaign.runs if run.name == name) for name in ("sb-lr1e-04-s1", "sb-s2"))
    # a resumed run has only its epochs left: the whole run's estimate less the one epoch it checkpointed
    assert runner.estimate_minutes(campaign, resumed, 1) < runner.estimate_minutes(campaign, fresh)
    assert plan["sb-lr1e-04-s1"] == ["resumes", f"{runner.estimate_minutes(campaign, resumed, 1):.0f}", "min"]
    assert plan["sb-s2"] == ["waits", f"{runner.estimate_minutes(campaign, fresh):.0f}", "min"]
    assert run_campaign(campaign, runs, results, jobs=1, only="sb-*", poll=0.05) == 0
    started = [line.split()[1] for line in caplog.messages if line.startswith("started")]
    assert started == ["pre-s1", "sb-lr1e-04-s1", "sb-lr1e-03-s1", "sb-lr5e-04-s1", "sb-s2"]


def test_a_run_left_by_a_stopped_runner_keeps_counting_its_wall_time(tmp_path, fake_training, monkeypatch):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    (runs / "pre-s1").mkdir(parents=True)
    seconds = runs / "pre-s1" / "campaign.seconds"
    seconds.write_text("1000\n")  # its stopped runner's last count, written 50 s ago
    os.utime(seconds, (time.time() - 50, time.time() - 50))
    polls = iter(range(100))
    monkeypatch.setattr(runner, "running_elsewhere", lambda run_dir: run_dir.name == "pre-s1" and next(polls) < 2)
    assert run_campaign(campaign, runs, results, jobs=1, only="pre-*", poll=0.05) == 0
    assert 1050 <= json.loads((results / "pre-s1" / "metrics.json").read_text())["campaign"]["seconds"] < 1100


def test_a_lost_checkpoint_is_rebuilt_before_the_runs_that_start_from_it(tmp_path, fake_training, caplog):
    caplog.set_level(logging.INFO, logger=runner.__name__)
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    committed = (results / "pre-s1" / "metrics.json").read_bytes()
    assert json.loads((results / "sb-s2" / "metrics.json").read_text())["campaign"]["init_from"] == {
        "run": "pre-s1", "best_dev": 0.71}

    # A fresh machine: no run dirs; sb-s2 is still to do, so pre-s1's checkpoint is trained again (not collected).
    shutil.rmtree(runs)
    shutil.rmtree(results / "sb-s2")
    assert "pre-s1" in dry_run(campaign, results, runs, jobs=1).split("rebuilds")[0]
    assert "1 left (and 1 lost checkpoints to rebuild)" in dry_run(campaign, results, runs, jobs=1)
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    assert (results / "pre-s1" / "metrics.json").read_bytes() == committed
    assert (runs / "pre-s1" / "campaign.done").is_file() and (results / "sb-s2" / "metrics.json").is_file()
    assert not (runs / "abl-s1").exists()  # finished runs stay finished
    assert "rebuilt pre-s1: its dev scores equal the committed results" in caplog.text

    # Committed results that the rebuild does not reproduce: said, and the dependent records what it started from.
    shutil.rmtree(runs)
    shutil.rmtree(results / "sb-s2")
    metrics = json.loads(committed)
    (results / "pre-s1" / "metrics.json").write_text(json.dumps({**metrics, "dev": [], "best_dev": 0.5}))
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    assert "rebuilt pre-s1: its dev scores differ from the committed results (best_dev 0.71, committed 0.5)" \
        in caplog.text
    assert json.loads((results / "sb-s2" / "metrics.json").read_text())["campaign"]["init_from"]["best_dev"] == 0.71


def test_an_lr_extend_run_no_grid_calls_for_needs_no_lost_checkpoint(tmp_path, fake_training):
    # sb's grid picks 5e-4, inside it: its 2e-3 extension never runs, so a fresh machine has nothing to rebuild.
    path = write_campaign(tmp_path, CAMPAIGN.replace("1.0e-4], seeds: [1, 2]",
                                                     "1.0e-4], lr_extend: [2.0e-3], seeds: [1, 2]"))
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=1, poll=0.05) == 0
    shutil.rmtree(runs)
    assert runner.lost_checkpoints(campaign, results, runs) == []
    plan = dry_run(campaign, results, runs, jobs=1)
    assert "0 left" in plan and "rebuild" not in plan


def test_only_takes_comma_separated_globs():
    from sentibert.campaign.spec import matches

    assert matches("mpnet-sst3-sentibert-s1", "minilm-*, mpnet-sst3-*")
    assert not matches("mpnet-sst3-sentibert-s1", "minilm-*,mpnet-emoint*")


def test_run_names_spell_the_exact_lr_so_two_lrs_never_share_a_name(tmp_path):
    from sentibert.campaign.spec import lr_name

    # the names of the committed result folders stay as they are
    assert [lr_name(lr) for lr in (2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3)] == \
        ["2e-05", "5e-05", "1e-04", "2e-04", "5e-04", "1e-03"]
    assert all(float(lr_name(lr)) == lr for lr in (1.5e-5, 1 / 3, 2.5e-4, 3e-4))
    (tmp_path / "c.yaml").write_text("groups:\n  - {group: g, task: sst_phrase, model: sentibert, encoder: tiny, "
                                     "variant: x, lr_grid: [1.5e-5, 2.0e-5], seeds: [1]}\n")
    assert [run.name for run in load_campaign(tmp_path / "c.yaml").runs] == ["g-lr1.5e-05-s1", "g-lr2e-05-s1"]


# ---- a grid extended in place: the runs at the old pick go stale once dev picks another lr ----------------------
EXTENDED = CAMPAIGN.replace("lr_grid: [1.0e-3, 5.0e-4, 1.0e-4]", "lr_grid: [1.0e-3, 5.0e-4, 1.0e-4, 2.0e-3]")
PAPER = Path(__file__).resolve().parents[1] / "experiments" / "paper.yaml"


def fake_result(results: Path, run: str, lr: float, best_dev: float) -> None:
    """A run's results as runner.collect leaves them, as far as the stale rule and the tables read them."""
    folder = results / run
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "metric": "phrase_acc", "best_dev": best_dev, "best_epoch": 1, "test": {"phrase_acc": best_dev - 0.1},
        "campaign": {"run": run, "lr": lr, "seconds": 60, "commit": None}}))
    (folder / "config.yaml").write_text(f"trainer:\n  lr: {lr}\n")


def campaign_with_results(tmp_path: Path, text: str) -> tuple:
    """Every run of CAMPAIGN done (sb's grid picked 5e-04), under the campaign file `text`; pre-s1's checkpoint is
    in the runs dir, tmp_path/runs."""
    path = write_campaign(tmp_path, text)
    results = path.parent / "results"
    (tmp_path / "runs" / "pre-s1").mkdir(parents=True)
    (tmp_path / "runs" / "pre-s1" / "campaign.done").touch()
    for run, lr, dev in (("pre-s1", 1e-4, 0.5), ("sb-lr1e-03-s1", 1e-3, 0.51), ("sb-lr5e-04-s1", 5e-4, 0.71),
                         ("sb-lr1e-04-s1", 1e-4, 0.71), ("sb-s2", 5e-4, 0.72), ("abl-s1", 5e-4, 0.6)):
        fake_result(results, run, lr, dev)
    return load_campaign(path), results


def rows(campaign, results: Path) -> dict:
    from sentibert.campaign.results import build

    return {row.group.group: row for row in build(campaign, results, {}).rows}


def test_a_grid_extended_in_place_makes_the_runs_at_the_old_pick_stale_once_the_pick_moves(tmp_path):
    from sentibert.campaign import tables
    from sentibert.campaign.spec import stale_lr

    campaign, results = campaign_with_results(tmp_path, EXTENDED)
    runs = {run.name: run for run in campaign.runs}
    # The new grid value is pending: the pick is unknown, and the existing results stand.
    assert picked_lr(campaign, "sb", results) is None
    assert [stale_lr(campaign, run, results) for run in campaign.runs] == [None] * 7
    listed = dry_run(campaign, results, tmp_path / "runs", jobs=1).splitlines()
    assert [line.split()[:2] for line in listed[:-1]] == [["sb-lr2e-03-s1", "ready"]]
    assert listed[-1].startswith("6 of 7 runs have results; 1 left,")
    assert [r.run.name for r in rows(campaign, results)["abl"].runs] == ["abl-s1"]

    # 2e-3 wins on dev: seed 2 of sb and abl (lr_from sb), made at 5e-4, are stale.
    fake_result(results, "sb-lr2e-03-s1", 2e-3, 0.91)
    assert picked_lr(campaign, "sb", results) == 2e-3
    assert {name: stale_lr(campaign, run, results) for name, run in runs.items() if stale_lr(campaign, run, results)} \
        == {"sb-s2": (5e-4, 2e-3), "abl-s1": (5e-4, 2e-3)}
    listed = dry_run(campaign, results, tmp_path / "runs", jobs=1).splitlines()
    assert [line.split()[:2] + line.split("min")[1:] for line in listed[:-1]] == [
        ["sb-s2", "stale", "  results at lr 5e-04, the pick is now 2e-03"],
        ["abl-s1", "stale", "  results at lr 5e-04, the pick is now 2e-03"]]
    assert listed[-1].startswith("5 of 7 runs have results; 2 left (2 stale: to train again at the lr picked now),")

    # The tables leave them out of their rows, and say so; never a row of two lrs.
    by_group = rows(campaign, results)
    assert [r.run.name for r in by_group["sb"].runs] == ["sb-lr2e-03-s1"]
    assert (by_group["sb"].seeds, by_group["sb"].lr_text, by_group["sb"].missing) == (
        "1/2, 1 stale", "2e-03 (grid, at its end)", ["sb-s2 (stale: trained at 5e-04)"])
    assert (by_group["abl"].runs, by_group["abl"].seeds, by_group["abl"].lr_text) == ([], "0/1, 1 stale", "2e-03 (from sb, at its end)")
    assert (by_group["sb"].lr, by_group["abl"].lr) == (2e-3, 2e-3)  # the lr the tables print, as a number
    out = results.parent / "RESULTS.md"
    tables.write(results, campaign.path, PAPER, out, results / "summary.csv", plots=False)
    md = out.read_text()
    assert "| sentibert | tiny | pre-trained | 32 | 1/2, 1 stale | 2e-03 (grid, at its end) |" in md
    assert "| abl | – | abl-s1 (stale: trained at 5e-04) |" in md
    assert "`k stale` in `seeds`: runs trained at another lr than the one their group's grid picks now" in md


def test_a_grid_extension_that_dev_does_not_prefer_leaves_every_result_standing(tmp_path):
    from sentibert.campaign.spec import stale_lr

    campaign, results = campaign_with_results(tmp_path, CAMPAIGN.replace(
        "lr_grid: [1.0e-3, 5.0e-4, 1.0e-4]", "lr_grid: [1.0e-3, 5.0e-4, 1.0e-4, 3.0e-3]"))
    fake_result(results, "sb-lr3e-03-s1", 3e-3, 0.11)
    assert picked_lr(campaign, "sb", results) == 5e-4
    assert [stale_lr(campaign, run, results) for run in campaign.runs] == [None] * 7
    assert dry_run(campaign, results, tmp_path / "runs", jobs=1).startswith("7 of 7 runs have results; 0 left,")
    assert rows(campaign, results)["sb"].seeds == "2/2" and rows(campaign, results)["abl"].seeds == "1/1"


def test_the_runner_starts_nothing_at_a_provisional_pick(tmp_path, fake_training):
    """sb's grid has 3 of 4 runs: the tables take its best lr so far (5e-04, provisional), the runner does not. It
    trains the grid's last run, and sb-s2 and abl-s1 only then, at the lr picked (2e-03): none is ever stale."""
    from sentibert.campaign.spec import best_lr_so_far

    campaign, results = campaign_with_results(tmp_path, EXTENDED)
    for run in ("sb-s2", "abl-s1"):
        shutil.rmtree(results / run)
    runs_dir = tmp_path / "runs"
    shutil.copy(results / "pre-s1" / "metrics.json", runs_dir / "pre-s1")  # its checkpoint's run dir, as trained
    assert (best_lr_so_far(campaign, "sb", results), picked_lr(campaign, "sb", results)) == (5e-4, None)
    by_group = rows(campaign, results)
    assert (by_group["sb"].seeds, by_group["sb"].lr_text) == ("1/2, grid 3/4", "5e-04 (grid, provisional)")
    assert (by_group["abl"].seeds, by_group["abl"].lr_text) == ("0/1, grid 3/4", "5e-04 (from sb, provisional)")
    assert [runner.resolve(campaign, run, results, runs_dir) for run in campaign.runs
            if run.name in ("sb-s2", "abl-s1")] == [None, None]
    listed = dry_run(campaign, results, runs_dir, jobs=2).splitlines()
    assert [line.split()[:2] for line in listed[:-1]] == [["sb-lr2e-03-s1", "ready"], ["sb-s2", "waits"],
                                                          ["abl-s1", "waits"]]

    assert run_campaign(campaign, runs_dir, results, jobs=2, poll=0.05) == 0
    assert picked_lr(campaign, "sb", results) == 2e-3
    assert {run: json.loads((results / run / "metrics.json").read_text())["campaign"]["lr"]
            for run in ("sb-s2", "abl-s1")} == {"sb-s2": 2e-3, "abl-s1": 2e-3}
    assert not list(runs_dir.glob("*.superseded-*"))  # nothing was trained at the provisional 5e-04


def test_the_runner_trains_stale_runs_again_from_scratch_and_keeps_their_old_run_dirs(tmp_path, fake_training):
    path = write_campaign(tmp_path)
    campaign, results, runs = load_campaign(path), path.parent / "results", tmp_path / "runs"
    assert run_campaign(campaign, runs, results, jobs=2, poll=0.05, keep_checkpoints=True) == 0
    committed = {run: (results / run / "metrics.json").read_bytes() for run in ("pre-s1", "sb-lr5e-04-s1")}
    (runs / "sb-s2" / "campaign.seconds").write_text("1000\n")  # were it resumed, its wall time would go on from here

    campaign = load_campaign(write_campaign(tmp_path, EXTENDED))  # 2e-3 wins on dev
    assert run_campaign(campaign, runs, results, jobs=2, poll=0.05) == 0
    for run, dev in (("sb-s2", 0.92), ("abl-s1", 0.91)):
        metrics = json.loads((results / run / "metrics.json").read_text())
        assert (metrics["campaign"]["lr"], metrics["best_dev"]) == (2e-3, dev)  # the results replaced
        assert json.loads((results / run / "config.yaml").read_text())["trainer"]["lr"] == 2e-3
        old = runs / f"{run}.superseded-lr5e-04"  # the old run dir, moved aside whole
        assert json.loads((old / "metrics.json").read_text())["best_dev"] == dev - 0.2
        assert (old / "campaign.done").is_file() and (old / "best_model").is_dir()
        assert not (old / "checkpoints").exists()  # never resumed
    assert json.loads((results / "sb-s2" / "metrics.json").read_text())["campaign"]["seconds"] < 1000
    assert {run: (results / run / "metrics.json").read_bytes() for run in committed} == committed
    assert dry_run(campaign, results, runs, jobs=1).startswith("7 of 7 runs have results; 0 left,")


def test_only_a_run_dir_trained_at_another_lr_is_moved_aside(tmp_path):
    run_dir = tmp_path / "sb-s2"
    assert runner.supersede(run_dir, 2e-3) is None  # none yet
    run_dir.mkdir()
    assert runner.supersede(run_dir, 2e-3) is None and run_dir.is_dir()  # train has not started in it yet
    (run_dir / "config.yaml").write_text("trainer:\n  lr: 0.002\n")
    assert runner.supersede(run_dir, 2e-3) is None and run_dir.is_dir()  # a rerun at the new lr: resumed
    for suffix in ("", ".2"):  # superseded at 2e-3 twice (the pick moved away and back): both kept
        assert runner.supersede(run_dir, 5e-4) == tmp_path / f"sb-s2.superseded-lr2e-03{suffix}"
        assert not run_dir.exists()
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("trainer:\n  lr: 0.002\n")


def test_the_estimate_takes_the_encoders_minutes_in_the_runs_precision(tmp_path, capsys):
    text = CAMPAIGN.replace("{tiny: {32: 1.0}}", "{tiny: {32: 1.0, bf16: 0.25}}") + "".join(
        f"  - {{group: {name}, task: sst_phrase, model: sentibert, encoder: tiny, variant: {name}, "
        f"overrides: [experiment=sst_phrase{override}], lr: 1.0e-4, seeds: [1]}}\n"
        for name, override in (("fp32", ""), ("bf", ", trainer.precision=bf16"), ("half", ", trainer.precision=16")))
    write_campaign(tmp_path, text)
    campaign = load_campaign(tmp_path / "experiments" / "campaign.yaml")
    estimate = {run.group.group: runner.estimate_minutes(campaign, run) for run in campaign.runs}
    assert estimate["fp32"] > 0 and estimate["fp32"] == estimate["abl"]  # the default precision: the schema's, 32
    assert estimate["bf"] == estimate["fp32"] / 4
    assert estimate["half"] is None  # no minutes for float16: no estimate
    fp32 = next(run for run in campaign.runs if run.group.group == "fp32")
    epochs = round(estimate["fp32"])  # one minute per epoch here
    assert [runner.estimate_minutes(campaign, fp32, done) for done in (1, epochs, epochs + 1)] == [epochs - 1, 0, 0]
    code, out, err = run_command(tmp_path, capsys, "--dry-run")
    assert code == 0 and out.splitlines()[-1].endswith("; 1 without an estimate")
    assert [line.split()[1:] for line in out.splitlines() if line.startswith("half-s1")] == [["ready", "?"]]


@pytest.mark.parametrize("file, edit, message", [
    ("sb-lr5e-04-s1/metrics.json", ('"best_dev": 0.71', '"best_dev": "0.71"'),
     'best_dev is "0.71", not a number or null; the file is damaged: restore it, or collect the run again'),
    ("sb-lr5e-04-s1/metrics.json", ('"campaign": {', '"campaign": ["sb"], "x": {'),
     'campaign is ["sb"], not a JSON object'),
    ("sb-lr5e-04-s1/metrics.json", ('{"metric"', '{"metric'), "cannot read it as JSON"),
    ("sb-s2/config.yaml", ("lr: 0.0005", "lr: fast"), "trainer.lr is 'fast', not a number"),  # the lr it was made at
])
def test_damaged_results_are_one_line_naming_the_file_and_the_key(tmp_path, capsys, file, edit, message):
    campaign_with_results(tmp_path, CAMPAIGN)
    path = tmp_path / "experiments" / "results" / file
    assert edit[0] in path.read_text()
    path.write_text(path.read_text().replace(*edit))
    code, out, err = run_command(tmp_path, capsys, "--dry-run")
    assert (code, out) == (1, "")
    assert err.startswith(f"sentibert campaign: error: {path}: {message}") and err.count("\n") == 1
