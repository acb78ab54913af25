"""Training loggers, built from conf/logger/*.yaml with `hydra.utils.instantiate`: each file's `_target_` names a class
here and the rest are its keyword arguments; the run directory and the resolved run config are passed when it is built
(`build_logger`). Only rank 0 logs; the other ranks get `Logger`, which logs nothing."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sentibert import runs
from sentibert.io import atomic_write_text

TEST_PREFIX = "test/"  # the test metrics' keys (training.loop.test): logged once, when the run ends


class Logger:
    """No logger (logger=none, and every rank but 0)."""

    def __init__(self, run_dir: Path | None = None, run_config: dict | None = None):
        pass

    def log(self, metrics: dict, step: int) -> None:
        pass

    def rewind(self, step: int) -> None:
        """The run (re)starts after `step`: forget what was logged after it, and the test metrics (logged again)."""

    def finish(self) -> None:
        pass


class CSVLogger(Logger):
    """`step,key,value` rows appended to run_dir/log.csv (long format: keys differ between rows)."""

    def __init__(self, run_dir: Path, run_config: dict | None = None):
        self.path = Path(run_dir) / runs.LOG_CSV
        if not self.path.exists():
            self.path.write_text("step,key,value\n")

    def log(self, metrics: dict, step: int) -> None:
        with self.path.open("a") as f:
            f.writelines(f"{step},{k},{v}\n" for k, v in metrics.items() if v is not None)

    def rewind(self, step: int) -> None:
        """Keep one row per step and key: a resumed run logs the steps after its checkpoint again."""
        header, *rows = self.path.read_text().splitlines(keepends=True)
        kept = [row for row in rows if int(row.split(",", 1)[0]) <= step
                and not row.split(",", 2)[1].startswith(TEST_PREFIX)]
        if len(kept) < len(rows):
            atomic_write_text(self.path, header + "".join(kept))


class WandbLogger(Logger):
    """Weights & Biases; `mode` offline (files under the run directory, no network call), online or disabled."""

    def __init__(self, run_dir: Path, run_config: dict | None = None, project: str = "sentibert",
                 mode: str = "offline", entity: str | None = None, tags: Iterable[str] = (), name: str | None = None):
        import wandb

        if mode != "online":
            # wandb builds its own telemetry from the process-wide settings, not from init's mode=, and would post it
            # to W&B's servers at exit (wandb 0.31, offline included): make the process-wide mode this one too.
            wandb.setup(settings=wandb.Settings(mode=mode))
        # The run id follows from the run directory, so a resumed run continues the same wandb run.
        run_id = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=project, entity=entity, mode=mode, dir=run_dir, name=name, tags=list(tags),
                              id=run_id, resume="allow", config=run_config)

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self) -> None:
        self.run.finish()


def build_logger(cfg: DictConfig, run_dir: Path, main_process: bool = True) -> Logger:
    """The logger cfg.logger describes (its `_target_`), for the main process; `Logger()` for the others."""
    if not main_process:
        return Logger()
    make = instantiate(cfg.logger, _partial_=True)  # the YAML's keys; then what only the run knows
    return make(run_dir=run_dir, run_config=OmegaConf.to_container(cfg, resolve=True))
