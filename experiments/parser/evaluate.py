"""Unlabeled bracket F1 and speed of the full `sentibert.parsing.parse.Parser` on SST sentences (cold cache).

    python experiments/parser/evaluate.py [--data ../shared/data] [--split dev] [--model bundled]

Each gold sentence's tokens, joined by spaces, go through the same path as raw text (nltk tokenizer, then the
bundled chart parser, or the Stanza pipeline and binarize for the official models); the binary prediction is scored against the gold binary tree with
`bracket_counts` (internal-node spans, root excluded). A sentence that the tokenizer splits into a
different number of words cannot be compared span by span: all its brackets count as wrong.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sentibert.data.tree import read_trees
from sentibert.parsing.parse import Parser, bracket_counts, bracket_spans, f1_score, find_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).parents[3] / "shared" / "data")
    ap.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    ap.add_argument("--model", default="bundled", choices=["auto", "stanza", "bundled"])
    args = ap.parse_args()

    gold = read_trees(args.data / "sst" / "trees" / f"{args.split}.txt")
    with tempfile.TemporaryDirectory() as cache:
        parser = Parser(find_model(args.model), cache_dir=Path(cache))
        start = time.perf_counter()
        parser.pipeline  # load the models, timed apart from parsing
        loaded = time.perf_counter()
        predicted = parser.parse([tree.text for tree in gold])
        done = time.perf_counter()

    same_length = [len(g.tokens) == len(p.tokens) for g, p in zip(gold, predicted)]
    counts = [bracket_counts(g, p) if ok else (0, len(bracket_spans(g)), len(bracket_spans(p)))
              for g, p, ok in zip(gold, predicted, same_length)]
    f1_all = f1_score(*map(sum, zip(*counts)))
    f1_comparable = f1_score(*map(sum, zip(*(c for c, ok in zip(counts, same_length) if ok))))
    print(f"model: {parser.model.name} ({parser.model.path})")
    print(f"{args.split}: {len(gold)} sentences, unlabeled bracket F1 {100 * f1_all:.2f} "
          f"({100 * f1_comparable:.2f} on the {sum(same_length)} sentences tokenised into as many words as gold)")
    print(f"tokenised differently: {sum(g.tokens != p.tokens for g, p in zip(gold, predicted))} sentences, "
          f"{len(gold) - sum(same_length)} of them into a different number of words")
    buckets = {"2": (2, 2), "3-5": (3, 5), "6-10": (6, 10), "11+": (11, 10**9)}
    recall = []
    for name, (low, high) in buckets.items():
        found = total = 0
        for g, p, ok in zip(gold, predicted, same_length):
            spans = [s for s in bracket_spans(g) if low <= s[1] - s[0] <= high]
            total += len(spans)
            found += sum(s in bracket_spans(p) for s in spans) if ok else 0
        recall.append(f"{name} words {100 * found / max(total, 1):.1f} ({total})")
    print("recall by gold phrase length:", ", ".join(recall))
    print(f"load {loaded - start:.1f} s, parse {done - loaded:.1f} s = {len(gold) / (done - loaded):.1f} sentences/s")


if __name__ == "__main__":
    main()
