"""Training end to end on the fixture trees with the tiny encoder: metrics, best model, exact resume, MLM
pre-training then fine-tuning, DDP on two CPU processes, and `sentibert evaluate`."""
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from sentibert.commands import evaluate as evaluate_command
from sentibert.commands import train as train_command
from sentibert.config import CONF_DIR, SAMPLE_DATA_DIR
from sentibert.data import datasets
from sentibert.evaluation.report import load_run
from sentibert.models.encoder import build_tiny
from sentibert.models.model import SentiBERT, TreeSentimentModel
from sentibert.training import loop as train
from sentibert.training.checkpoints import check_resume, epochs_trained
from sentibert.training.processes import setup_processes

FIXTURE_ROOT = Path(SAMPLE_DATA_DIR)  # the sample treebank shipped in the package (data=fixture)
# 48 train trees in batches of 8: 6 steps per epoch, 12 in all; a learning rate the tiny model notices.
TINY = ["encoder=tiny", "data=fixture", "logger=none", "trainer.max_epochs=2",
        "trainer.lr=1e-3", "trainer.checkpoint_every_n_steps=4"]
METRIC_KEYS = {"phrase_acc", "sst5_root_acc", "sst3_from_5class_root_acc", "sst2_from_5class_root_acc", "negation", "contrast",
               "local_difficulty", "global_difficulty"}


pytestmark = pytest.mark.usefixtures("one_thread")


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[*TINY, *overrides])


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    return load_file(run_dir / "checkpoints" / latest / "model.safetensors")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One uninterrupted run through the CLI, as a user starts it."""
    run_dir = tmp_path_factory.mktemp("run")
    train_command.main([*TINY, f"hydra.run.dir={run_dir}"])
    return run_dir


def test_run_writes_metrics_config_and_a_loadable_best_model(finished_run):
    metrics = read_json(finished_run / "metrics.json")
    assert [d["epoch"] for d in metrics["dev"]] == [1, 2] and metrics["metric"] == "phrase_acc"
    assert METRIC_KEYS <= set(metrics["dev"][0]) and METRIC_KEYS <= set(metrics["test"])
    best = max(metrics["dev"], key=lambda d: d["phrase_acc"])
    assert metrics["best_epoch"] == best["epoch"] and metrics["best_dev"] == best["phrase_acc"]
    assert metrics["reported"] == {"phrase_acc": metrics["test"]["phrase_acc"]}

    resolved = (finished_run / "config.yaml").read_text()
    assert "name_or_path: tiny" in resolved and SAMPLE_DATA_DIR not in resolved  # no folder of this machine
    recorded = yaml.safe_load(resolved)  # resolved, but the paths as the config wrote them
    assert recorded.pop("paths") == {"data_dir": "${oc.env:SENTIBERT_DATA_DIR,data}", "runs_dir": "runs",
                                     "sample_data_dir": "${sample_data:}"}
    assert recorded["data"].pop("root") == "${paths.sample_data_dir}" and "${" not in yaml.safe_dump(recorded)
    run = load_run(finished_run)  # what `sentibert report` reads, test predictions included
    assert run.label == "SentiBERT" and len(run.predictions) == 16 and run.test == metrics["test"]

    model = TreeSentimentModel.from_pretrained(finished_run / "best_model")
    assert isinstance(model, SentiBERT)
    tree = datasets.load_splits(config().data, ["test"])["test"][0]
    assert len(model.predict_trees([tree])[0].labels) == len(tree)


def test_resume_after_a_crash_matches_an_uninterrupted_run(finished_run, tmp_path):
    # Killed at step 9, mid-epoch 2: the last checkpoint is step 8, so step 9 is redone after resuming.
    assert train.train(config("trainer.stop_after_steps=9"), tmp_path) is None
    assert (tmp_path / "checkpoints" / "latest").read_text() == "epoch1-step8"
    # what the campaign's dry run reads: one whole epoch done; a name it does not know counts none
    assert epochs_trained((tmp_path / "checkpoints" / "latest").read_text()) == 1 and epochs_trained("best") == 0
    resumed = train.train(config("resume=true"), tmp_path)
    assert resumed == read_json(finished_run / "metrics.json")
    expected = final_weights(finished_run)
    assert all(torch.equal(expected[k], v) for k, v in final_weights(tmp_path).items())  # dropout RNG included


@pytest.fixture
def trained_batches(monkeypatch) -> list[list[int]]:
    """The tree indices of every batch a training step is given, in order, appended to as training runs."""
    seen, step = [], train.train_step

    def recording(run, batch):
        seen.append(batch["index"].tolist())
        return step(run, batch)

    monkeypatch.setattr(train, "train_step", recording)
    return seen


def test_worker_processes_run_ahead_yet_resume_exactly(finished_run, tmp_path, trained_batches):
    # When step 8 is checkpointed, two workers (two batches each in flight) have been handed the rest of epoch 2; the
    # checkpoint counts only the batches consumed, so the resumed run redoes step 9 on the batch it was killed on.
    cfg = config("trainer.num_workers=2")
    run = train.setup(cfg, tmp_path / "order", setup_processes(cfg.trainer))  # the epochs' batches, in order
    uninterrupted = [b for epoch in (0, 1) for b in run.sampler.batches(epoch)[:run.steps_per_epoch]]
    assert train.train(config("trainer.stop_after_steps=9", "trainer.num_workers=2"), tmp_path) is None
    assert (tmp_path / "checkpoints" / "latest").read_text() == "epoch1-step8"
    assert trained_batches == uninterrupted[:9]
    del trained_batches[8:]  # step 9 was never checkpointed: the resumed run redoes it
    resumed = train.train(config("resume=true", "trainer.num_workers=2"), tmp_path)
    assert trained_batches == uninterrupted
    assert resumed == read_json(finished_run / "metrics.json")  # the uninterrupted run had no workers
    expected = final_weights(finished_run)
    assert all(torch.equal(expected[k], v) for k, v in final_weights(tmp_path).items())


def test_resuming_with_another_worker_count_is_allowed(finished_run):
    # Workers change where batches are collated, not which or in what order: not part of the resume fingerprint.
    latest = finished_run / "checkpoints" / (finished_run / "checkpoints" / "latest").read_text()
    assert check_resume(config("resume=true", "trainer.num_workers=4"), latest) == []


@pytest.mark.parametrize("change, key", [("trainer.lr=5e-2", "trainer.lr"), ("seed=7", "seed"),
                                         ("data.batch_size=16", "data.batch_size"),
                                         ("model.root_only=true", "model.root_only"),
                                         ("model=mean_pool", "model._target_")])
def test_resume_with_a_changed_config_is_refused_before_anything_is_written(tmp_path, change, key):
    assert train.train(config("trainer.stop_after_steps=5"), tmp_path) is None
    written = (tmp_path / "config.yaml").read_text()
    with pytest.raises(ValueError, match=f"differs from the checkpoint's .*{key}: .*resume_allow_changes"):
        train.train(config("resume=true", change), tmp_path)
    assert (tmp_path / "config.yaml").read_text() == written


def test_a_checkpoint_without_its_config_is_refused_naming_the_file(tmp_path):
    """Every checkpoint carries the config it was made with; there is no fallback to guess it from config.yaml."""
    assert train.train(config("trainer.stop_after_steps=5"), tmp_path) is None
    latest = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text()
    (latest / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=str(latest / "config.json")):
        train.train(config("resume=true"), tmp_path)


def test_resuming_a_finished_run_keeps_its_results_and_reads_test_no_more(finished_run, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(finished_run, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(train, "test", lambda run: pytest.fail("the test split was read again"))
    monkeypatch.setattr(train, "setup", lambda *args: pytest.fail("the data and model were loaded, for nothing"))
    assert train.train(config("resume=true"), tmp_path) == read_json(finished_run / "metrics.json")
    assert read_json(tmp_path / "metrics.json") == read_json(finished_run / "metrics.json")


def test_a_finished_run_is_extended_only_when_allowed_and_says_so(finished_run, tmp_path):
    import shutil

    shutil.copytree(finished_run, tmp_path, dirs_exist_ok=True)
    with pytest.raises(ValueError, match="trainer.max_epochs: 2 -> 3"):
        train.train(config("resume=true", "trainer.max_epochs=3"), tmp_path)
    results = train.train(config("resume=true", "trainer.max_epochs=3", "resume_allow_changes=[trainer.max_epochs]"),
                          tmp_path)
    assert [d["epoch"] for d in results["dev"]] == [1, 2, 3]
    assert results["config_changes"] == [{"key": "trainer.max_epochs", "from": 2, "to": 3, "step": 12}]
    assert "max_epochs: 3" in (tmp_path / "config.yaml").read_text()


def test_dev_held_out_from_train_is_fixed_and_disjoint():
    data = config("data.dev_from_train=0.25", "data.dev_seed=3").data
    splits = datasets.load_splits(data)
    assert (len(splits["train"]), len(splits["dev"]), len(splits["test"])) == (36, 12, 16)
    original = datasets.load_splits(config().data, ["train"])["train"]
    assert Counter(splits["train"] + splits["dev"]) == Counter(original)  # a partition of train
    assert datasets.load_splits(data, ["dev"])["dev"] == splits["dev"]  # the same dev set every time


def test_evaluate_writes_every_metric(finished_run, tmp_path):
    evaluate_command.main([f"checkpoint={finished_run / 'best_model'}", "data=fixture", f"data.root={FIXTURE_ROOT}",
                           f"hydra.run.dir={tmp_path}"])
    metrics = read_json(tmp_path / "metrics.json")
    assert METRIC_KEYS <= set(metrics) and metrics["split"] == "test"
    trained = read_json(finished_run / "metrics.json")["test"]
    assert {k: metrics[k] for k in METRIC_KEYS} == {k: trained[k] for k in METRIC_KEYS}  # same model, same trees
    assert len((tmp_path / "test_predictions.jsonl").read_text().splitlines()) == 16


def test_mlm_pretraining_then_fine_tuning_from_it(tmp_path):
    short = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_eval_batches=1"]
    train.train(config("experiment=sst_phrase_pretrain", *short), tmp_path / "pretrain")
    pretrained = tmp_path / "pretrain" / "best_model"
    assert json.loads((pretrained / "config.json").read_text())["kwargs"]["mlm"]
    # lr 0: fine-tuning must start from (and here keep) the pre-trained weights, without the MLM head.
    results = train.train(config("experiment=sst5", f"init_from={pretrained}", "trainer.lr=0", *short),
                          tmp_path / "finetune")
    assert results["metric"] == "sst5_root_acc"
    before = TreeSentimentModel.from_pretrained(pretrained, mlm=False).state_dict()
    after = TreeSentimentModel.from_pretrained(tmp_path / "finetune" / "best_model")
    assert not after.hparams["mlm"] and isinstance(after.head, torch.nn.Linear)  # the pre-training head is gone
    assert before.keys() == after.state_dict().keys()
    assert all(torch.equal(before[k], v) for k, v in after.state_dict().items() if not k.startswith("head."))


def test_bad_metric_or_mlm_setup_fails_fast(tmp_path):
    with pytest.raises(ValueError, match="metric"):
        train.train(config("metric=pearson"), tmp_path)  # a transfer metric, on a treebank
    with pytest.raises(ValueError, match="model.mlm"):
        train.train(config("trainer.mlm_probability=0.15"), tmp_path)


@pytest.mark.parametrize("model", ["sentibert", "sentibert_no_child_attention"])  # the ablation leaves weights unused
def test_ddp_on_two_cpu_processes(tmp_path, model):
    build_tiny("tiny")  # once, here, rather than by both ranks at the same time
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sentibert.commands.train", *TINY, f"model={model}", "trainer=ddp", "trainer.max_epochs=1",
               f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Its own process group: on a timeout the ranks go too, not only torchrun (~15 s; slower beside other jobs).
    ranks = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        _, stderr = ranks.communicate(timeout=300)
    finally:
        if ranks.poll() is None:
            os.killpg(ranks.pid, signal.SIGKILL)
    assert ranks.returncode == 0, stderr[-3000:]
    assert "find_unused_parameters" not in stderr  # torch's warning that the search for unused weights was vain
    metrics = read_json(tmp_path / "metrics.json")
    assert metrics["dev"][0]["step"] == 3  # 6 batches shared by 2 processes
    checkpoint = tmp_path / "checkpoints" / (tmp_path / "checkpoints" / "latest").read_text()
    assert {p.name for p in checkpoint.iterdir()} == {"model.safetensors", "state.pt", "rng-0.pt", "rng-1.pt",
                                                      "config.json"}


def test_ablation_sweep_runs_every_model_as_a_multirun(tmp_path):
    train_command.main(["experiment=sst_phrase", "sweep=ablation", *TINY, f"hydra.sweep.dir={tmp_path}"])
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name.split("_", 1)[1] for p in jobs] == [
        "sentibert_seed42", "sentibert_no_token_attention_seed42", "sentibert_no_child_attention_seed42",
        "sentibert_root_only_seed42", "sentibert_recursive_seed42", "mean_pool_seed42", "cls_seed42",
        "tree_lstm_seed42"]
    for job in jobs:
        assert METRIC_KEYS <= set(read_json(job / "metrics.json")["test"]), job


def test_bf16_autocast_trains_on_cpu(tmp_path):
    results = train.train(config("trainer.precision=bf16", "trainer.max_epochs=1"), tmp_path)
    assert METRIC_KEYS <= set(results["test"]) and "precision: bf16" in (tmp_path / "config.yaml").read_text()
    with pytest.raises(ValueError, match="trainer.precision='8'"):
        train.train(config("trainer.precision=8"), tmp_path / "bad")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 with loss scaling needs CUDA")
def test_fp16_with_loss_scaling_on_cuda(tmp_path):
    results = train.train(config("trainer.precision=16", "trainer.device=cuda", "trainer.max_epochs=1"), tmp_path)
    assert METRIC_KEYS <= set(results["test"])
    state = torch.load(next((tmp_path / "checkpoints").glob("epoch*")) / "state.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0


@pytest.mark.slow
def test_compiled_model_trains(tmp_path):
    results = train.train(config("trainer.compile=true", "trainer.max_epochs=1"), tmp_path)
    assert METRIC_KEYS <= set(results["test"])
