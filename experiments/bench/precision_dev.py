"""Does faster inference change the answers? A bundled model on SST dev (gold trees) in float32, bf16 (autocast)
and int8 (torch's dynamic quantisation of every nn.Linear), as `sentibert predict` would run it.

    python experiments/bench/precision_dev.py              # the default bundle: results/precision-dev-minilm.json
    python experiments/bench/precision_dev.py mpnet        # results/precision-dev-mpnet.json

For each: phrase accuracy (all labelled nodes), root accuracy, and the share of nodes whose label equals float32's.
bf16 is what `--precision auto` picks on CPUs with native bf16; int8 is measured only (it is not an option).
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from sentibert.bundles import BUNDLES, DEFAULT_MODEL
from sentibert.data.tree import read_trees
from sentibert.inference.predict import BATCH_SIZE, load_network

HERE = Path(__file__).resolve().parent


def score(model, trees, context) -> tuple[dict, list[int]]:
    with context:
        predictions = model.predict_trees(trees, BATCH_SIZE)
    pairs = [(p.labels[i], gold) for p in predictions for i, gold in enumerate(p.tree.labels) if gold is not None]
    roots = [p.labels[0] == p.tree.labels[0] for p in predictions]
    return ({"phrase_acc": 100 * sum(a == b for a, b in pairs) / len(pairs), "root_acc": 100 * sum(roots) / len(roots)},
            [label for label, _ in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default=DEFAULT_MODEL, choices=sorted(BUNDLES))
    bundle = parser.parse_args().bundle
    trees = read_trees(Path(os.getenv("SENTIBERT_DATA_DIR", "data")) / "sst" / "dev.txt")
    model = load_network(bundle)  # LoRA merged, as predict loads it
    with warnings.catch_warnings():  # torch.ao's deprecation notice: this is a measurement, not an option
        warnings.simplefilter("ignore")
        int8 = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)  # a copy
    variants = {"32": (model, nullcontext()), "bf16": (model, torch.autocast("cpu", dtype=torch.bfloat16)),
                "int8": (int8, nullcontext())}
    results, labels = {}, {}
    for name, (variant, context) in variants.items():
        results[name], labels[name] = score(variant, trees, context)
        agree = sum(a == b for a, b in zip(labels[name], labels["32"])) / len(labels["32"])
        results[name]["labels_equal_to_float32"] = 100 * agree
        print(name, {k: round(v, 2) for k, v in results[name].items()}, flush=True)
    out = HERE / "results" / f"precision-dev-{bundle}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": f"python experiments/bench/precision_dev.py {bundle}", "model": bundle,
                               "data": "SST dev, gold trees", "torch": torch.__version__, "results": results},
                              indent=2) + "\n", encoding="utf-8")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
