"""What a small bundle can hold of a full fine-tuning run: its encoder's weight deltas cut to low rank by SVD.

    python experiments/bundled_model/svd_probe.py <runs>/<run> [--out experiments/bundled_model/svd_probe.md]

The run is a full fine-tuning of SentiBERT on the stock MiniLM (no pre-training, so the delta is against the
installed encoder). Each setting keeps the run's composition and head, replaces every linear layer's weight W by
W0 + (W - W0) cut to rank r (its largest singular values), and takes the word embeddings from the stock encoder, from
the run, or as a low-rank delta too; biases, LayerNorms and position embeddings stay the run's (about 0.2M weights).
Each is scored on SST dev only (never test): it asks which part of the fine-tuning a LoRA bundle could not hold.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from sentibert.bundles import load_checkpoint
from sentibert.data.datasets import load_split
from sentibert.evaluation.evaluate import evaluate_model
from sentibert.models.encoder import load_encoder

# (linear rank, word embeddings: "stock", "run" or a rank); rank None: the run's weights as they are
SETTINGS = [(None, "run"), (32, "stock"), (64, "stock"), (128, "stock"), (32, "run"), (32, 16), (32, 64)]
EMBEDDINGS = "embeddings.word_embeddings.weight"


def low_rank(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, float]:
    """The best rank-`rank` approximation of `delta`, and the share of its squared norm it keeps."""
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return u[:, :rank] * s[:rank] @ vh[:rank], float((s[:rank] ** 2).sum() / (s ** 2).sum())


@torch.no_grad()
def compress(run: Path, stock: dict[str, torch.Tensor], rank: int | None, embeddings: str | int) -> nn.Module:
    model = load_checkpoint(run)
    if rank is not None:
        for name, module in model.backbone.named_modules():
            if isinstance(module, nn.Linear):
                w0 = stock[f"{name}.weight"]
                module.weight.copy_(w0 + low_rank(module.weight - w0, rank)[0])
    weight = model.backbone.get_input_embeddings().weight
    if embeddings == "stock":
        weight.copy_(stock[EMBEDDINGS])
    elif embeddings != "run":
        weight.copy_(stock[EMBEDDINGS] + low_rank(weight - stock[EMBEDDINGS], embeddings)[0])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a full fine-tuning run directory (its best_model/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    stock = load_encoder("minilm").state_dict()
    dev = load_split("sst", "dev")
    lines = []
    for rank, embeddings in SETTINGS:
        metrics = evaluate_model(compress(args.run, stock, rank, embeddings).eval(), dev, 64)[0]
        kept = embeddings if isinstance(embeddings, str) else f"rank {embeddings}"
        row = (f"| {'full' if rank is None else rank} | {kept} | {100 * metrics['phrase_acc']:.2f} "
               f"| {100 * metrics['sst5_root_acc']:.2f} |")
        print(row, flush=True)
        lines.append(row)
    args.out.write_text(
        f"# The full fine-tuning run `{args.run.name}`, its encoder's deltas cut to low rank\n\n"
        f"`python experiments/bundled_model/svd_probe.py <runs>/{args.run.name}` (the campaign's run directory; its "
        f"results: `experiments/results/{args.run.name}/`). {Path(__file__).name}'s docstring says what each setting "
        "keeps. SST dev, in %:\n\n"
        "| linear layers' rank | word embeddings | dev phrase | dev SST-5 root |\n| --- | --- | --- | --- |\n"
        + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
