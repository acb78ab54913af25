"""`sentibert results [RESULTS_DIR]`: the result tables (RESULTS.md, summary.csv, plots, README's tables) from the
campaign's results (sentibert.campaign.tables)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentibert.campaign import tables
from sentibert.campaign.results import ResultsError
from sentibert.campaign.tables import defaults, write
from sentibert.commands import fail
from sentibert.runs import RunFolderError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentibert results", description=tables.__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default="experiments/results", metavar="RESULTS_DIR",
                        help="the campaign's results folder (default: experiments/results)")
    parser.add_argument("--campaign", help="the campaign file (default: RESULTS_DIR/../campaign.yaml)")
    parser.add_argument("--paper", help="the paper's numbers (default: RESULTS_DIR/../paper.yaml)")
    parser.add_argument("--out", help="the markdown tables (default: RESULTS_DIR/../RESULTS.md)")
    parser.add_argument("--csv", help="one line per row and metric (default: RESULTS_DIR/summary.csv)")
    parser.add_argument("--readme", help=f"the README whose result tables, between its {tables.README_BEGIN} and "
                        f"{tables.README_END} lines, are regenerated (default: RESULTS_DIR/../../README.md)")
    parser.add_argument("--no-plots", action="store_true",
                        help="do not draw the plots (RESULTS.md still links them; faster)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    paths = {key: Path(getattr(args, key)) if getattr(args, key) else value for key, value in defaults(results).items()}
    if results.exists() and not results.is_dir():
        return fail("results", f"{results} is not a directory")
    try:
        written = write(results, paths["campaign"], paths["paper"], paths["out"], paths["csv"], not args.no_plots,
                        paths["readme"])
    except (ResultsError, RunFolderError, OSError) as err:  # RunFolderError: a bad predictions file
        return fail("results", err)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
