"""`sentibert predict [TEXT ...] [--model minilm|mpnet|DIR] [--in FILE] [--format text|json|html|png] [--out PATH]`:
the sentiment of every phrase of any text (sentibert.inference.predict; examples there)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentibert.commands import add_inference_options, add_model_option, fail
from sentibert.evaluation import render
from sentibert.inference.predict import (BATCH_SIZE, FORMATS, PRECISION, SHOWS_ATTENTION, SUFFIX_FORMATS,
                                         TEXT_RENDERERS, check_device, check_texts, load_network, predict, timed)
from sentibert.io import atomic_write, atomic_write_text, read_lines, read_stdin_lines
from sentibert.parsing.parse import ParserError, load_parser


def positive_int(value: str) -> int:
    """argparse type of counts: 0 or -1 would not mean "none" or "all" but silently predict nothing."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return number


def _interactive(stream) -> bool:
    """A terminal, or no usable stdin at all (closed): nothing is piped in."""
    try:
        return stream is None or stream.closed or stream.isatty()
    except (ValueError, OSError):
        return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="sentibert predict", description="Sentiment of every phrase of each sentence (one sentence per text).")
    ap.add_argument("texts", nargs="*", metavar="TEXT", help="sentences (or --in; or piped to stdin)")
    add_model_option(ap)
    ap.add_argument("--in", dest="input", metavar="FILE", help="one sentence per line; - reads stdin")
    ap.add_argument("--format", choices=FORMATS, help="default: from --out's suffix, else text")
    ap.add_argument("--out", metavar="PATH", help="output file (default: stdout; png needs a file)")
    ap.add_argument("--batch-size", type=positive_int, default=BATCH_SIZE, help="sentences per forward pass")
    ap.add_argument("--timings", action="store_true",
                    help="print seconds spent loading, parsing, in the model and rendering to stderr (benchmarks)")
    add_inference_options(ap, PRECISION)
    args = ap.parse_args(argv)
    if not args.texts and not args.input and not _interactive(sys.stdin):
        args.input = "-"  # `echo "Not bad at all." | sentibert predict`
    if bool(args.texts) == bool(args.input):
        ap.error("give the sentences either as TEXT arguments, with --in FILE, or on stdin")
    fmt = args.format or SUFFIX_FORMATS.get(Path(args.out).suffix.lower() if args.out else "", "text")
    if fmt == "png" and not args.out:
        ap.error("png is an image: give --out FILE.png")

    try:
        if args.input == "-":
            source, texts = "<stdin>", read_stdin_lines()
        elif args.input:
            source, texts = args.input, read_lines(args.input)
        else:
            source, texts = "argument", args.texts
        check_texts(texts, source)  # before the slow part: loading the model and the parser
        device, timings = check_device(args.device), {}
        with timed(timings, "load"):  # the parser's model loads when first needed: in "parse", and not if all cached
            model = load_network(args.model).to(device)
            parser = load_parser(args.parser, use_cache=not args.no_cache, precision=args.precision)
        predictions = predict(texts, model, parser, args.batch_size, source, fmt in SHOWS_ATTENTION, args.precision,
                              timings)
        with timed(timings, "render"):
            if fmt == "png":
                atomic_write(args.out, lambda tmp: render.to_png(predictions, tmp))
            else:
                output = TEXT_RENDERERS[fmt](predictions)
                if args.out:
                    atomic_write_text(args.out, output)
                else:
                    sys.stdout.write(output)
    except (ValueError, ParserError, OSError) as err:  # PredictError, TextFileError, CheckpointError: ValueErrors
        return fail("predict", err)
    if args.timings:
        print("timings: " + " ".join(f"{name}={seconds:.3f}" for name, seconds in timings.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
