"""`sentibert train [experiment=NAME] [overrides]`: train a tree sentiment model (a Hydra app, conf/train.yaml; what a
run does: sentibert.training.loop). Multi-GPU: `torchrun --nproc_per_node N -m sentibert.commands.train ...`."""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sentibert.commands import RunDirCheck, fail, hydra_command
from sentibert.io import LockHeld
from sentibert.training import loop
from sentibert.training.checkpoints import check_run_dir, lock_run_dir


def run(cfg: DictConfig, run_dir: Path) -> float | None:
    try:
        results = loop.train(cfg, run_dir)
    except loop.Interrupted as stopped:  # SIGTERM or SIGINT: checkpointed; say how to go on, exit as signalled
        if os.environ.get("RANK", "0") == "0":
            print(f"sentibert train: {stopped}; resume with: {resume_command(run_dir)}", file=sys.stderr)
        sys.exit(128 + stopped.signum)
    return results["best_dev"] if results else None  # what sweepers (e.g. Optuna) optimise: dev, never test


def resume_command(run_dir: Path) -> str:
    """This run's command line, continuing it in `run_dir`."""
    own = ("hydra.run.dir=", "resume=", "overwrite=")
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(own)]
    return shlex.join(["sentibert", "train", *overrides, f"hydra.run.dir={run_dir}", "resume=true"])


class RunDirClaim(RunDirCheck):
    """RunDirCheck, then what training checks under the run directory's lock (`checkpoints.own_run_dir`: another
    run there, another process training there), before Hydra writes its record (.hydra/, train.log) into it.
    conf/train.yaml names it in hydra.callbacks."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        super().on_run_start(config, **kwargs)
        if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 holds the directory
            return
        run_dir = Path(os.path.abspath(str(config.hydra.run.dir)))  # as Hydra names it
        try:
            with lock_run_dir(run_dir):
                check_run_dir(config, run_dir)
        except (ValueError, LockHeld) as err:  # exit here: Hydra turns a callback's exception into a warning
            sys.exit(fail("train", err))


main = hydra_command("train", run)  # `sentibert train`, `python -m sentibert.commands.train` (torchrun)


if __name__ == "__main__":
    main()
