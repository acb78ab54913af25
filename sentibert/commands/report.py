"""`sentibert report RUN_DIR [RUN_DIR ...] [--out DIR]`: plots and a markdown summary of training runs
(sentibert.evaluation.report)."""
from __future__ import annotations

import argparse
import sys

from sentibert.commands import fail
from sentibert.evaluation.report import load_runs, report
from sentibert.runs import PREDICTIONS_FILE, RunFolderError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert report",
                                 description="Plots and a markdown summary of training run directories.")
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="directories written by `sentibert train`")
    ap.add_argument("--out", default="report", metavar="DIR", help="where to write (default: report/)")
    args = ap.parse_args(argv)
    try:
        runs = load_runs(args.runs)
        for run in runs:
            if run.predictions is None:
                print(f"sentibert report: {run.path} has no {PREDICTIONS_FILE}: no confusion matrix or accuracy by "
                      "length for it", file=sys.stderr)
        print(report(runs, args.out))
    except (RunFolderError, OSError) as err:
        return fail("report", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
