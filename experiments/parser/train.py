"""Train the bundled SST parser with Stanza's own constituency trainer, CPU only.

    python experiments/parser/train.py [--work experiments/parser/work] [-- extra stanza args]
    python experiments/parser/train.py --finetune experiments/parser/work/models/sst_parser.pt   # stage 2

Stanza scores the dev set with CoreNLP (Java), which is not available here: this script swaps in
`sentibert.parsing.parse.bracket_f1` (unlabeled brackets of the binarised trees, root excluded). The best
model by dev F1 is written to WORK/models/sst_parser.pt (stage 2: sst_parser_finetuned.pt) after
each improving epoch.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from sentibert.data.tree import binarize
from sentibert.parsing.parse import bracket_f1, stanza_tree_to_nltk

# Small and CPU-fast: no charlm, no transformer, small LSTMs and embeddings (size budget: 10 MB with vectors).
HYPERPARAMETERS = [
    "--hidden_size", "128",
    "--delta_embedding_dim", "32",
    "--tag_embedding_dim", "0",  # every word has the same dummy tag
    "--transition_embedding_dim", "16", "--transition_hidden_size", "16",
    "--epochs", "25", "--epoch_size", "5000", "--train_batch_size", "100",
    "--eval_batch_size", "100",
]


class PythonEvaluator:
    """Stands in for stanza.server.parser_eval.EvaluateParser (a CoreNLP Java process)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def process(self, results):
        gold = [binarize(stanza_tree_to_nltk(r.gold)) for r in results]
        predicted = [binarize(stanza_tree_to_nltk(r.predictions[0].tree)) for r in results]
        f1 = bracket_f1(gold, predicted)
        logging.getLogger("stanza.constituency.trainer").info("dev unlabeled bracket F1 (python scorer): %.2f", 100 * f1)
        return SimpleNamespace(f1=f1, treeF1=None, HasField=lambda name: False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    ap.add_argument("--finetune", type=Path, help="stage 2: continue from this model with a fresh AdamW, lr 1e-3")
    ap.add_argument("--threads", type=int, default=1)  # tiny ops: more threads only spin on a busy machine
    args, extra = ap.parse_known_args()
    torch.set_num_threads(args.threads)

    from stanza.models import constituency_parser
    from stanza.models.constituency import parser_training

    parser_training.EvaluateParser = PythonEvaluator
    w = args.work
    stage2 = ["--finetune", "--load_name", str(args.finetune), "--no_multistage", "--optim", "adamw",
              "--learning_rate", "0.001", "--epochs", "14", "--save_name", "sst_parser_finetuned.pt"]
    constituency_parser.main([
        "--train_file", str(w / "train.mrg"), "--eval_file", str(w / "dev.mrg"),
        "--wordvec_pretrain_file", str(w / "vectors.pt"),
        "--save_dir", str(w / "models"), "--save_name", "sst_parser.pt",
        "--lang", "en", "--shorthand", "en_sst", "--no_retag", "--cpu",
        *HYPERPARAMETERS, *(stage2 if args.finetune else []), *[a for a in extra if a != "--"],
    ])


if __name__ == "__main__":
    sys.exit(main())
