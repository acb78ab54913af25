"""A run directory belongs to one run: a finished or running run is never overwritten unasked (a lock file names the
process that trains there); SIGTERM and SIGINT stop training with a checkpoint and the command that resumes it; a
full disk or an unwritable run directory ends the command in one line (issue 23, cases 1, 2, 4 and 13)."""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors import SafetensorError
from safetensors.torch import load_file

from sentibert.commands import train as train_command
from sentibert.config import CONF_DIR, SAMPLE_DATA_DIR
from sentibert.training import loop as train

# 48 fixture trees in batches of 8: 6 steps per epoch, 12 in all, checkpoints every 4 steps; every step logged.
TINY = ["encoder=tiny", "data=fixture", f"data.root={SAMPLE_DATA_DIR}", "logger=csv", "trainer.log_every_n_steps=1",
        "trainer.max_epochs=2", "trainer.lr=1e-3", "trainer.checkpoint_every_n_steps=4"]
DISK_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"  # safetensors' words

pytestmark = pytest.mark.usefixtures("one_thread", "no_full_error")


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[*TINY, *overrides])


def run_train(capsys, *argv: str) -> tuple[int, str]:
    """`sentibert train ARGV` in this process: (exit status, stderr)."""
    try:
        train_command.main(list(argv))
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def last_line(err: str) -> str:
    """The command's own line (after any progress bars); no traceback anywhere."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """An uninterrupted run, through the command (Hydra's record included)."""
    run_dir = tmp_path_factory.mktemp("finished")
    train_command.main([*TINY, f"hydra.run.dir={run_dir}"])
    return run_dir


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "best_model" / "model.safetensors")


def files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


# ---- 1. a finished run is not overwritten unasked -------------------------------------------------------------
def test_a_finished_run_is_refused_then_replaced_only_with_overwrite(finished, tmp_path, capsys):
    run_dir = shutil.copytree(finished, tmp_path / "run")
    before, metrics = files(run_dir), (run_dir / "metrics.json").read_bytes()
    code, err = run_train(capsys, *TINY, "seed=2", f"hydra.run.dir={run_dir}")
    assert code == 1
    assert err == (f"sentibert train: error: {run_dir} holds a run already (metrics.json, checkpoints): "
                   "resume=true continues it, overwrite=true replaces it, or choose another hydra.run.dir\n")
    assert files(run_dir) == before  # Hydra's record (.hydra/, train.log) included

    code, err = run_train(capsys, *TINY, f"hydra.run.dir={run_dir}", "resume=true", "overwrite=true")
    assert code == 1 and last_line(err).endswith("resume=true and overwrite=true: choose one (continue the run, or "
                                                 "replace it)")

    # overwrite=true: a new run from scratch, none of the old one's files kept (log.csv not appended to)
    (run_dir / "checkpoints" / "epoch2-step12" / "model.safetensors").write_bytes(b"damaged")  # not read again
    code, err = run_train(capsys, *TINY, f"hydra.run.dir={run_dir}", "overwrite=true")
    assert code == 0
    assert (run_dir / "metrics.json").read_bytes() == metrics  # same config and seed: the same run again
    assert (run_dir / "log.csv").read_bytes() == (finished / "log.csv").read_bytes()


def test_a_finished_run_without_its_checkpoints_is_not_trained_again_by_resume(finished, tmp_path, capsys):
    run_dir = shutil.copytree(finished, tmp_path / "run")
    shutil.rmtree(run_dir / "checkpoints")  # as the campaign leaves a collected run: best_model/ only
    before = files(run_dir)
    code, err = run_train(capsys, *TINY, f"hydra.run.dir={run_dir}", "resume=true")
    assert code == 1
    assert err == (f"sentibert train: error: {run_dir} holds a run's metrics.json but no checkpoints: resume=true "
                   "has nothing to continue from, and a finished run's results stand; overwrite=true replaces it, or "
                   "choose another hydra.run.dir\n")
    assert files(run_dir) == before


def test_an_interrupted_run_is_refused_without_resume(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ValueError, match=r"holds a run already \(checkpoints\): resume=true continues it"):
        train.train(config(), tmp_path)
    assert not (tmp_path / "config.yaml").exists()


# ---- 2. one trainer per run directory -------------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from sentibert.io import process_lock
with process_lock(sys.argv[1], "test", "wait"):
    print("holding", flush=True)
    time.sleep(300)
"""


def test_a_second_trainer_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "train.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"  # as a trainer holds it while it trains
        code, err = run_train(capsys, *TINY, f"hydra.run.dir={tmp_path}")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    assert last_line(err) == (f"sentibert train: error: run directory {tmp_path} is in use by process {holder.pid} "
                              f"on {socket.gethostname()} ({tmp_path / 'train.lock'}): another training runs there; "
                              "wait for it to end, or choose another hydra.run.dir")
    assert [p.name for p in tmp_path.iterdir()] == ["train.lock"]  # nothing written by the refused one

    # The holder is gone (killed: its lock file still names it): the lock is free.
    assert (tmp_path / "train.lock").read_text() == f"{holder.pid} {socket.gethostname()}\n"
    assert train.train(config("trainer.max_epochs=1", "trainer.limit_train_batches=1"), tmp_path)
    assert (tmp_path / "train.lock").read_text() == ""  # released when the run ended


def test_a_file_system_without_locks_trains_unlocked_and_says_so(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(file, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert train.train(config("trainer.max_epochs=1", "trainer.limit_train_batches=1"), tmp_path)
    assert f"{tmp_path / 'train.lock'} cannot be locked (No locks available): going on without the lock" in caplog.text


# ---- 4. SIGTERM and SIGINT: a checkpoint at the current step, then the resume command ---------------------------
SIGNALLED = """
import sys, time
from pathlib import Path
from sentibert.commands import train
from sentibert.training import loop

marker, train_step = Path(sys.argv[1]), loop.train_step

def waiting_step(run, batch):
    out = train_step(run, batch)
    if run.progress["step"] == 8:  # in step 9, mid-epoch 2 (step 8 was checkpointed): tell the test, wait for it
        marker.touch()
        while run.stop.signum is None:
            time.sleep(0.01)
    return out

loop.train_step = waiting_step
train.main(sys.argv[2:])
"""


def test_sigterm_mid_epoch_checkpoints_and_resume_finishes_as_if_uninterrupted(finished, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "in-step-9"
    command = [*TINY, "trainer.num_workers=2", f"hydra.run.dir={run_dir}"]  # workers: processes the signal reaches
    process = subprocess.Popen([sys.executable, "-c", SIGNALLED, str(marker), *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               start_new_session=True)
    try:
        while not marker.exists():  # the run is in step 9
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGTERM)  # as Slurm's preemption: every process of the job
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert last_line(err) == (f"sentibert train: stopped by SIGTERM at step 9, checkpoint {run_dir}/checkpoints/"
                              f"epoch1-step9; resume with: sentibert train {' '.join(command[:-1])} "
                              f"hydra.run.dir={run_dir} resume=true")
    assert out.count("SIGTERM: stopping after this step") == 1  # the main process's log; the workers ignore it
    assert (run_dir / "checkpoints" / "latest").read_text() == "epoch1-step9"

    resumed = train.train(config("resume=true"), run_dir)
    assert resumed == json.loads((finished / "metrics.json").read_text())
    assert all(torch.equal(weights(finished)[k], v) for k, v in weights(run_dir).items())
    # One row per step and key: the rows of step 9 (logged before the signal) are not doubled.
    assert (run_dir / "log.csv").read_bytes() == (finished / "log.csv").read_bytes()


def test_ctrl_c_checkpoints_and_prints_one_line(tmp_path, capsys, monkeypatch):
    train_step = train.train_step

    def interrupted_step(run, batch):
        if run.progress["step"] == 2:  # in step 3: Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return train_step(run, batch)

    monkeypatch.setattr(train, "train_step", interrupted_step)
    before = signal.getsignal(signal.SIGINT)  # Python's handler; SIG_IGN where a shell started pytest in the background
    code, err = run_train(capsys, *TINY, f"hydra.run.dir={tmp_path}")
    assert code == 128 + signal.SIGINT
    assert last_line(err).startswith(f"sentibert train: stopped by SIGINT at step 3, checkpoint {tmp_path}/checkpoints"
                                     "/epoch0-step3; resume with: sentibert train ")
    assert (tmp_path / "checkpoints" / "latest").read_text() == "epoch0-step3"
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is Ctrl-C again


# ---- 13. a full disk, in safetensors' words; an unwritable run directory ----------------------------------------
@pytest.mark.parametrize("disk_full", [lambda: OSError(errno.ENOSPC, "No space left on device"),
                                       lambda: SafetensorError(DISK_FULL)], ids=["os", "safetensors"])
def test_a_full_disk_in_a_checkpoint_keeps_the_previous_one(disk_full, tmp_path, monkeypatch):
    from sentibert.training import checkpoints

    real_save_model, saves = checkpoints.save_model, []

    def save_model(model, filename):
        saves.append(filename)
        if len(saves) == 2:  # the second checkpoint (the end of epoch 1): half written, then the disk is full
            Path(filename).write_bytes(b"\0" * 100)
            raise disk_full()
        return real_save_model(model, filename)

    monkeypatch.setattr(checkpoints, "save_model", save_model)
    root = tmp_path / "checkpoints"
    with pytest.raises(OSError, match=f"cannot write checkpoint epoch1-step6 in {root}: the disk is full; the "
                                      f"previous checkpoint {root / 'epoch0-step4'} is intact"):
        train.train(config(), tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["epoch0-step4", "latest"]  # no .epoch1-step6.tmp left
    assert (root / "latest").read_text() == "epoch0-step4"
    assert load_file(root / "epoch0-step4" / "model.safetensors")
    assert torch.load(root / "epoch0-step4" / "state.pt", weights_only=True)["progress"]["step"] == 4


def test_a_full_disk_while_saving_the_best_model_is_one_line(tmp_path, capsys, monkeypatch):
    from sentibert.models import model as model_module

    def save_model(model, filename):
        raise SafetensorError(DISK_FULL)

    monkeypatch.setattr(model_module, "save_model", save_model)
    code, err = run_train(capsys, *TINY, f"hydra.run.dir={tmp_path}")
    assert code == 1
    assert last_line(err) == (f"sentibert train: error: [Errno 28] No space left on device: "
                              f"'{tmp_path / 'best_model' / 'model.safetensors'}'")
    assert not [p for p in (tmp_path / "best_model").iterdir() if p.name.endswith(".tmp")]


def test_a_run_directory_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        code, err = run_train(capsys, *(["-m"] if "sweep" in key else []), *TINY, f"{key}={tmp_path / 'file' / 'x'}")
        assert code == 1
        assert last_line(err) == (f"sentibert train: error: cannot write in {key}={tmp_path / 'file' / 'x'} "
                                  "(Not a directory): choose another")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only directories")
def test_a_read_only_run_directory_is_one_line(tmp_path, capsys):
    tmp_path.chmod(0o555)
    try:
        code, err = run_train(capsys, *TINY, f"hydra.run.dir={tmp_path}")
    finally:
        tmp_path.chmod(0o755)
    assert code == 1 and last_line(err) == (f"sentibert train: error: cannot write in hydra.run.dir={tmp_path} "
                                            "(Permission denied): choose another")
