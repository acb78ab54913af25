"""`sentibert serve [--model minilm|mpnet|DIR] [--host H] [--port N]`: a local page and JSON API over a model; the
page can switch to the other bundled models (sentibert.inference.app: the routes, limits and errors)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from sentibert.commands import add_inference_options, add_model_option, fail
from sentibert.inference.app import MISSING, Limits, create_app
from sentibert.inference.predict import PRECISION, load_model
from sentibert.parsing.parse import ParserError

log = logging.getLogger("sentibert.serve")


def port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number, 0 to 65535, not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert serve",
                                 description="A local page (and JSON API) showing the sentiment of every phrase.")
    add_model_option(ap)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ap.add_argument("--port", type=port, default=8000, help="default: 8000")
    add_inference_options(ap, PRECISION)
    args = ap.parse_args(argv)
    if MISSING:
        return fail("serve", f"needs the serve extra: pip install 'sentibert[serve]' ({MISSING} is not installed)")
    try:
        pipeline = load_model(args.model, args.device, args.parser, args.precision, not args.no_cache)
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

    app = create_app(pipeline, Limits())
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
