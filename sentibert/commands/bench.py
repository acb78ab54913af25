"""`sentibert bench [encoder=...] [batches=20]`: what the tree module and dynamic padding cost and save (a Hydra
app, conf/bench.yaml; sentibert.training.bench)."""
from __future__ import annotations

from sentibert.commands import hydra_command
from sentibert.training.bench import bench

main = hydra_command("bench", bench)  # `sentibert bench [overrides]`


if __name__ == "__main__":
    main()
