"""`sentibert evaluate checkpoint=DIR [data=sst] [split=test]`: the paper's metrics for a saved model (a Hydra app,
conf/evaluate.yaml; sentibert.evaluation.evaluate)."""
from __future__ import annotations

from sentibert.commands import hydra_command
from sentibert.evaluation.evaluate import evaluate_checkpoint

main = hydra_command("evaluate", evaluate_checkpoint)  # `sentibert evaluate`, `python -m sentibert.commands.evaluate`


if __name__ == "__main__":
    main()
