"""`sentibert parse`: raw text, one sentence per line -> binary PTB trees; `sentibert parser info|download`:
the parser models (sentibert.parsing.parse)."""
from __future__ import annotations

import argparse
import sys

from sentibert.commands import fail
from sentibert.io import TextFileError, atomic_write_text, read_lines, read_stdin_lines
from sentibert.parsing.parse import (BUNDLED_DIR, ParserError, find_model, load_parser, official_model,
                                     stanza_resources_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert parse",
                                 description="One sentence per line -> one binary PTB tree per line.")
    ap.add_argument("--in", dest="input", default="-", metavar="FILE",
                    help="text file, one sentence per line (default: stdin)")
    ap.add_argument("--out", default="-", metavar="FILE", help="tree file (default: stdout)")
    ap.add_argument("--model", default="auto", choices=["auto", "stanza", "bundled"],
                    help="auto (default): the official Stanza English models if installed, else the bundled one")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    args = ap.parse_args(argv)
    try:
        source = "<stdin>" if args.input == "-" else args.input
        lines = read_stdin_lines() if args.input == "-" else read_lines(args.input)
        trees = load_parser(args.model, use_cache=not args.no_cache).parse(lines, source)
    except (ParserError, TextFileError, OSError) as err:
        return fail("parse", err)
    output = "".join(tree.to_ptb() + "\n" for tree in trees)
    if args.out == "-":
        sys.stdout.write(output)
    else:
        atomic_write_text(args.out, output)
    return 0


def parser_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert parser", description="Manage the parser models.")
    ap.add_argument("action", choices=["info", "download"])
    args = ap.parse_args(argv)
    if args.action == "download":
        import stanza

        try:
            stanza.download("en", processors="tokenize,pos,constituency")
        except Exception as err:  # stanza raises requests' errors, among others
            return fail("parser", f"could not download the Stanza English models ({err}). "
                                  "This needs a network; the bundled parser works without them.")
    official = official_model()
    print(f"official Stanza models: {official.path if official else 'not installed in ' + str(stanza_resources_dir())}")
    print(f"bundled model: {BUNDLED_DIR}")
    try:
        model = find_model()
        print(f"in use: {model.name} at {model.path} (cache key {model.key})")
    except ParserError as err:
        print(f"in use: none: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
