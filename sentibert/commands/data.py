"""`sentibert data prepare DATASET [--source DIR|ZIP|URL] [--out DIR]`: fetch and verify a dataset;
`sentibert data analyze --trees FILE --out FILE`: per-tree analysis records (sentibert.evaluation.analysis)."""
from __future__ import annotations

import argparse
import sys

from sentibert.commands import fail
from sentibert.data.datasets import DATASETS, DataError, prepare
from sentibert.data.tree import TreeFormatError
from sentibert.evaluation.analysis import write_analysis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentibert data", description="prepare datasets and analyse trees")
    commands = parser.add_subparsers(dest="command", required=True)

    prep = commands.add_parser("prepare", help="download (or copy) and verify a dataset")
    prep.add_argument("dataset", choices=list(DATASETS))
    prep.add_argument("--source", help="URL, directory or zip holding the tree files (default: official URL)")
    prep.add_argument("--out", help="data root (default: $SENTIBERT_DATA_DIR or ./data)")

    analyze = commands.add_parser("analyze", help="per-tree analysis records (negation, contrast, switches)")
    analyze.add_argument("--trees", required=True, help="PTB trees, one per line, labelled 0-4")
    analyze.add_argument("--out", required=True, help="output .jsonl, one record per tree")

    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args.dataset, args.source, args.out)
        else:
            count = write_analysis(args.trees, args.out)
            print(f"wrote {count} records to {args.out}")
    except (DataError, TreeFormatError, OSError) as err:
        return fail("data", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
