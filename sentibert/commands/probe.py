"""`sentibert probe [--model NAME | --checkpoint DIR] [--against NAME|DIR] [--suite FILE] [--format text|json|html|md]
[--out FILE]`: pass rates of a model on the behaviour suite, per phenomenon; with --against, two models on the same
items and the difference with a paired bootstrap interval (sentibert.evaluation.probe)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentibert.commands import add_inference_options, add_model_option, fail
from sentibert.evaluation import probe
from sentibert.inference.predict import BATCH_SIZE, PRECISION, SUFFIX_FORMATS, load_model
from sentibert.io import atomic_write_text
from sentibert.parsing.parse import ParserError
from sentibert.precision import resolve

FORMATS = (*probe.REPORT_RENDERERS, "html")
SUFFIXES = {suffix: fmt for suffix, fmt in {**SUFFIX_FORMATS, ".md": "md"}.items() if fmt in FORMATS}  # not png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert probe", description="Pass rates of a model on the behaviour suite "
                                 "(negation, contrast, intensifiers, ...), at the root and at the operator's phrase.")
    add_model_option(ap)
    ap.add_argument("--against", metavar="NAME|DIR", help="a second model (B), scored on the same items as --model "
                    "(A): both pass rates and B - A with a paired bootstrap interval (text, md or json)")
    ap.add_argument("--suite", default=str(probe.DEFAULT_SUITE), help="the suite file (default: the shipped one)")
    ap.add_argument("--format", choices=FORMATS, help="default: from --out's suffix, else text")
    ap.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    ap.add_argument("--failures", type=int, default=probe.FAILURES_SHOWN, metavar="N",
                    help=f"failing items listed per phenomenon (default {probe.FAILURES_SHOWN})")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="sentences per forward pass")
    add_inference_options(ap, PRECISION)
    args = ap.parse_args(argv)
    fmt = args.format or SUFFIXES.get(Path(args.out).suffix.lower() if args.out else "", "text")
    if args.against and fmt == "html":
        ap.error("--against writes text, md or json, not html (run each model alone for its failing items' trees)")

    try:
        suite = probe.load_suite(args.suite)
        items = probe.generate(suite)
        texts = probe.texts(items)

        def run(name: str) -> tuple[list[probe.Outcome], dict]:
            model = load_model(name, args.device, args.parser, args.precision, use_cache=not args.no_cache)
            predictions = model.predict(texts, args.batch_size, attentions=fmt == "html", source=suite.path.name)
            precision = resolve(args.precision, next(model.model.parameters()).device)
            return probe.score(items, dict(zip(texts, predictions))), {
                "model": model.name, "parser": model.parser.model.name, "precision": precision}

        outcomes, about = run(args.model)
        if args.against:
            against, about_b = run(args.against)
            about = {f"{key}_{side}": value for side, info in (("a", about), ("b", about_b))
                     for key, value in info.items()}
            output = probe.PAIR_RENDERERS[fmt](probe.paired_report(outcomes, against, suite, **about))
        else:
            doc = probe.report(outcomes, suite, args.failures, **about)
            output = probe.to_html(doc, outcomes, args.failures) if fmt == "html" else probe.REPORT_RENDERERS[fmt](doc)
        if args.out:
            atomic_write_text(args.out, output)
        else:
            sys.stdout.write(output)
    except (ValueError, ParserError, OSError) as err:  # ProbeError, PredictError: ValueErrors
        return fail("probe", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
