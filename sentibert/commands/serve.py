"""`sentibert serve [--checkpoint DIR] [--host H] [--port N]`: a local page and JSON API over a model
(sentibert.inference.app: the routes, limits and errors)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from sentibert.commands import add_inference_options, fail
from sentibert.inference.app import MISSING, Limits, create_app, load
from sentibert.inference.predict import BEST_MODEL, PRECISION
from sentibert.parsing.parse import ParserError

log = logging.getLogger("sentibert.serve")


def port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 0 to 65535, not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert serve",
                                 description="A local page (and JSON API) showing the sentiment of every phrase.")
    ap.add_argument("--checkpoint", help="a model saved with save_pretrained, or a training run directory (uses "
                                         f"its {BEST_MODEL}/); default: the bundled model")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ap.add_argument("--port", type=port, default=8000, help="default: 8000")
    add_inference_options(ap, PRECISION)
    args = ap.parse_args(argv)
    if MISSING:
        return fail("serve", f"needs the serve extra: pip install 'sentibert[serve]' ({MISSING} is not installed)")
    try:
        model, parser = load(args.checkpoint, args.parser, args.device, not args.no_cache, args.precision)
    except (ValueError, ParserError, OSError) as err:  # PredictError, CheckpointError: ValueErrors
        return fail("serve", err)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")  # uvicorn's look
    try:
        public = not ipaddress.ip_address(args.host).is_loopback
    except ValueError:  # a host name
        public = args.host != "localhost"
    if public:
        log.warning("listening on %s: anyone who can reach this machine can use the server", args.host)
    import uvicorn

    app = create_app(model, parser, args.checkpoint, Limits(), args.precision)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
