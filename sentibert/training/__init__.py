"""Training: loop.py (a run: fit, select, test), processes.py (DDP and randomness), checkpoints.py (resumable state),
loggers.py (csv / wandb, built by Hydra), bench.py (throughput). Mixed precision: sentibert/precision.py; many runs:
sentibert/campaign/."""
