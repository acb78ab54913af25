"""Training: loop.py (a run: fit, select, test), processes.py (DDP and randomness), checkpoints.py (resumable state),
loggers.py (csv / wandb, built by Hydra), precision.py (mixed precision), bench.py (throughput), campaign.py
(many runs, resumably)."""
