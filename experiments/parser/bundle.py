"""Copy the best trained parser and its word vectors into the package, small enough to commit.

    python experiments/parser/bundle.py [--work experiments/parser/work] [--out sentibert/resources/parser]

The model's weights are stored as float16 (Stanza casts them back to float32 when it loads them),
and this machine's paths are dropped from its saved training config.
"""
from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import torch

from sentibert.io import atomic_write_bytes
from sentibert.encoder import resolve_encoder
from sentibert.parse import BUNDLED_DIR, PARSER_ENCODER


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    ap.add_argument("--model", type=Path, help="default: WORK/models/sst_parser.pt")
    ap.add_argument("--out", type=Path, default=BUNDLED_DIR)
    args = ap.parse_args()

    saved = torch.load(args.model or args.work / "models" / "sst_parser.pt", map_location="cpu", weights_only=True)
    params = saved["params"]
    params["model"] = {k: v.half() if v.is_floating_point() else v for k, v in params["model"].items()}
    work = str(args.work.resolve()) + "/"
    params["config"] = {k: v.replace(work, "") if isinstance(v, str) else v for k, v in params["config"].items()}
    if params["config"].get("bert_model") == resolve_encoder("minilm"):  # trained with MiniLM features:
        params["config"]["bert_model"] = PARSER_ENCODER  # name it, not this machine's path (see sentibert.parse)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    atomic_write_bytes(args.out / "sst_parser.pt", buffer.getvalue())
    shutil.copyfile(args.work / "vectors.pt", args.out / "vectors.pt")
    for name in ("sst_parser.pt", "vectors.pt"):
        (args.out / name).chmod(0o644)  # package data: readable by everyone (temp files are created 0600)
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1e6:.2f} MB")
    print(f"trained {saved['epochs_trained']} epochs, best dev F1 (training scorer) {100 * saved['best_f1']:.2f} at epoch {saved['best_epoch']}")


if __name__ == "__main__":
    main()
