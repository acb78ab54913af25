"""`sentibert compare A B (--in FILE | --data NAME [--split SPLIT]) [--out FILE.html]`: where two models' phrase
labels differ, gold-decided ones first (sentibert.evaluation.compare); A and B are run directories, checkpoints or
bundled models' names."""
from __future__ import annotations

import argparse
import sys

from sentibert.commands import add_inference_options, fail
from sentibert.data.datasets import DataError, dataset_info, load_split
from sentibert.evaluation import compare
from sentibert.inference.predict import BATCH_SIZE, check_device, check_texts, load_network
from sentibert.io import atomic_write_text, read_lines, read_stdin_lines
from sentibert.parsing.parse import ParserError, load_parser
from sentibert.precision import autocast, resolve

PRECISION = "32"  # as `sentibert evaluate`: the labels a run's test predictions have


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sentibert compare", description="Two models phrase by phrase: the phrases "
                                 "whose labels differ, those where gold says one is right and the other wrong first.")
    ap.add_argument("a", metavar="A", help="a training run directory, a checkpoint or a bundled model's name")
    ap.add_argument("b", metavar="B", help="the other model, the same way")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--in", dest="input", metavar="FILE", help="raw text, one sentence per line (- reads stdin)")
    source.add_argument("--data", metavar="NAME", help="a prepared dataset (sst, sst-paper, ...): its gold trees")
    ap.add_argument("--split", default="test", help="the dataset's split (default test)")
    ap.add_argument("--out", metavar="FILE.html", help="write the sentences with both trees side by side here")
    ap.add_argument("--limit", type=int, default=compare.LIMIT, help="sentences drawn in the html (first ranked)")
    ap.add_argument("--top", type=int, default=compare.TOP, help="disagreements listed in the summary")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="sentences per forward pass")
    add_inference_options(ap, PRECISION)
    args = ap.parse_args(argv)

    try:
        device = check_device(args.device)
        if args.data:  # labelled text (emoint-*, sst2-glue) is parsed as training parses it
            trees = load_split(args.data, args.split, load_parser=load_parser)
            gold_classes = dataset_info(args.data).num_classes
        else:
            source = "<stdin>" if args.input == "-" else args.input
            texts = check_texts(read_stdin_lines() if args.input == "-" else read_lines(args.input), source)
            parser = load_parser(args.parser, use_cache=not args.no_cache, precision=args.precision)
            trees, gold_classes = parser.parse(texts, source), None
        predictions = []
        for name in (args.a, args.b):
            model = load_network(name).to(device)
            with autocast(resolve(args.precision, device), device):
                predictions.append(model.predict_trees(trees, args.batch_size, attentions=bool(args.out)))
        found = compare.disagreements(*predictions, gold_classes)
        sys.stdout.write(compare.summary(found, *predictions, args.a, args.b, gold_classes, args.top))
        if args.out:
            atomic_write_text(args.out, compare.to_html(found, *predictions, args.a, args.b, gold_classes, args.limit))
    except (ValueError, DataError, ParserError, OSError) as err:  # CompareError, PredictError, TreeFormatError
        return fail("compare", err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
