"""Copy the selected chart parser into the package, where `sentibert parse` finds it.

    python experiments/parser/bundle.py [--model experiments/parser/work/chart/best] [--out sentibert/resources/parser]

The saved parser already holds only what training changed (LoRA adapters + span scorer, float16) and
names its encoder (`minilm`) rather than a path, so the files are copied as they are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sentibert.io import atomic_write_bytes
from sentibert.parsing.chart import ChartParser
from sentibert.parsing.parse import BUNDLED_DIR, CHART_FILES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path(__file__).parent / "work" / "chart" / "best")
    ap.add_argument("--out", type=Path, default=BUNDLED_DIR)
    args = ap.parse_args()

    ChartParser.load(args.model)  # fail here, not in a user's `sentibert parse`, if the files don't load
    for name in CHART_FILES:
        target = atomic_write_bytes(args.out / name, (args.model / name).read_bytes())
        target.chmod(0o644)  # package data: readable by everyone (temp files are created 0600)
        print(f"{target}: {target.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
