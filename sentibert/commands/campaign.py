"""`sentibert campaign FILE [--jobs N] [--dry-run]`: run a declared list of runs, resumably
(sentibert.campaign.runner)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sentibert.campaign import runner
from sentibert.campaign.runner import dry_run, run_campaign
from sentibert.campaign.spec import CampaignError, ResultsError, compose_groups, load_campaign
from sentibert.commands import fail
from sentibert.io import LockHeld


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentibert campaign", description=runner.__doc__.split("\n")[0])
    parser.add_argument("file", help="the campaign file, e.g. experiments/campaign.yaml")
    parser.add_argument("--runs-dir", default="runs/campaign", help="run directories with checkpoints (not committed)")
    parser.add_argument("--results", help="where results go (default: results/ beside the campaign file)")
    parser.add_argument("--jobs", type=_positive, default=1, help="runs at a time")
    parser.add_argument("--threads", type=_positive, default=1, help="torch threads per run")
    parser.add_argument("--only", default="*", help="run names matching these globs only (comma-separated)")
    parser.add_argument("--dry-run", action="store_true", help="list what is left, with a time estimate")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep collected and superseded runs' training checkpoints (by default only best_model/ "
                             "stays; a later runner without this flag drops those of the collected runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        campaign = load_campaign(args.file)
        compose_groups(campaign)
    except CampaignError as err:
        return fail("campaign", err)
    results = Path(args.results) if args.results else campaign.path.parent / "results"
    runs_dir = Path(args.runs_dir)
    try:
        failed = 0 if args.dry_run else run_campaign(campaign, runs_dir, results, args.jobs, args.threads, args.only,
                                                   keep_checkpoints=args.keep_checkpoints)
        print(dry_run(campaign, results, runs_dir, args.jobs, args.only))
    except (LockHeld, ResultsError) as err:  # ResultsError: a damaged results file, named
        return fail("campaign", err)
    except KeyboardInterrupt:  # Ctrl-C reaches the runs too: each checkpoints its step and stops
        print("sentibert campaign: stopped. Runs that got the signal too (Ctrl-C reaches them) checkpoint and stop; "
              "runs still training are collected by the next runner. The same command goes on.", file=sys.stderr)
        return 130
    return 1 if failed else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
