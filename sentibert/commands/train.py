"""`sentibert train [experiment=NAME] [overrides]`: train a tree sentiment model (a Hydra app, conf/train.yaml; what a
run does: sentibert.training.loop). Multi-GPU: `torchrun --nproc_per_node N -m sentibert.commands.train ...`."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from sentibert.commands import hydra_command
from sentibert.training import loop


def run(cfg: DictConfig, run_dir: Path) -> float | None:
    results = loop.train(cfg, run_dir)
    return results["best_dev"] if results else None  # what sweepers (e.g. Optuna) optimise: dev, never test


main = hydra_command("train", run)  # `sentibert train`, `python -m sentibert.commands.train` (torchrun)


if __name__ == "__main__":
    main()
