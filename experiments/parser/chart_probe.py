"""Probe: how learnable are SST's binary trees? A span-scoring chart parser on MiniLM (LoRA), CKY decoding."""
import argparse
import math
import random
import sys
import time

import numpy as np
import torch
from torch import nn
from peft import LoraConfig, get_peft_model

from sentibert.encoder import load_encoder, load_tokenizer
from sentibert.parse import bracket_f1
from sentibert.tree import BinaryTree, normalize_token, read_trees
from nltk import Tree


class ChartScorer(nn.Module):
    def __init__(self, encoder, d=256, hidden=256):
        super().__init__()
        self.encoder = encoder
        self.proj = nn.Linear(encoder.config.hidden_size, 2 * d)
        self.mlp = nn.Sequential(nn.Linear(2 * d, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, input_ids, attention_mask, fence_index):
        # fence_index: (B, W+2) wordpiece positions of [CLS], each word's first piece, [SEP]
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # B,T,H
        x = torch.gather(h, 1, fence_index.unsqueeze(-1).expand(-1, -1, h.size(-1)))  # B,W+2,H
        fwd, bwd = self.proj(x).chunk(2, dim=-1)  # B,W+2,d each
        f, b = fwd[:, :-1], bwd[:, 1:]  # fencepost k (0..W): fwd of item k, bwd of item k+1
        span = torch.cat([f.unsqueeze(1) - f.unsqueeze(2), b.unsqueeze(2) - b.unsqueeze(1)], dim=-1)  # B,i,j,2d
        return self.mlp(span).squeeze(-1)  # B,W+1,W+1: logit that words i..j-1 form a constituent


def encode(tree, tok):
    words = [normalize_token(t) for t in tree.tokens]
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=256)
    first = {}
    for pos, w in enumerate(enc.word_ids()):
        if w is not None and w not in first:
            first[w] = pos
    n = len(words)
    fence = [0] + [first[w] for w in range(n)] + [len(enc["input_ids"]) - 1]
    gold = np.zeros((n + 1, n + 1), dtype=np.float32)
    for s, e in tree.spans:
        gold[s, e] = 1
    return enc["input_ids"], fence, gold


def collate(items, pad_id):
    B = len(items)
    T = max(len(i[0]) for i in items)
    W = max(len(i[1]) for i in items)
    ids = torch.full((B, T), pad_id)
    mask = torch.zeros((B, T), dtype=torch.long)
    fence = torch.zeros((B, W), dtype=torch.long)
    gold = torch.zeros((B, W - 1, W - 1))
    valid = torch.zeros((B, W - 1, W - 1), dtype=torch.bool)
    for b, (i, f, g) in enumerate(items):
        ids[b, :len(i)] = torch.tensor(i)
        mask[b, :len(i)] = 1
        fence[b, :len(f)] = torch.tensor(f)
        n = len(f) - 2
        gold[b, :n + 1, :n + 1] = torch.from_numpy(g)
        valid[b, :n + 1, :n + 1] = torch.triu(torch.ones(n + 1, n + 1, dtype=torch.bool), diagonal=2)
    return ids, mask, fence, gold, valid


def cky(scores: np.ndarray, n: int) -> list:
    """Best binary tree over n words maximising the sum of span scores; returns its spans."""
    best = np.zeros((n + 1, n + 1))
    split = np.zeros((n + 1, n + 1), dtype=int)
    for length in range(2, n + 1):
        for i in range(0, n - length + 1):
            j = i + length
            ks = np.arange(i + 1, j)
            vals = best[i, ks] + best[ks, j]
            k = int(np.argmax(vals))
            best[i, j] = scores[i, j] + vals[k]
            split[i, j] = ks[k]
    def build(i, j, words):
        if j - i == 1:
            return Tree("X", [words[i]])
        k = split[i, j]
        return Tree("X", [build(i, k, words), build(k, j, words)])
    return build


def decode(model, data, trees, tok, bs=64):
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(data), bs):
            items = data[s:s + bs]
            ids, mask, fence, _, _ = collate(items, tok.pad_token_id)
            scores = model(ids, mask, fence).numpy()
            for b, t in enumerate(trees[s:s + bs]):
                n = len(t.tokens)
                if n == 1:
                    out.append(t)
                    continue
                build = cky(scores[b], n)
                out.append(BinaryTree.from_nltk(build(0, n, list(t.tokens))))
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lora", type=int, default=16)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--enc_lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval_every", type=int, default=200)
    ap.add_argument("--limit_dev", type=int, default=400)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    tok = load_tokenizer("minilm")
    enc = load_encoder("minilm")
    if not args.full:
        enc = get_peft_model(enc, LoraConfig(r=args.lora, lora_alpha=args.lora, lora_dropout=0.1,
                                             target_modules=["query", "key", "value", "dense"]))
    model = ChartScorer(enc)
    print("trainable", sum(p.numel() for p in model.parameters() if p.requires_grad), flush=True)
    train_trees = read_trees("data/sst/train.txt")
    dev_trees = read_trees("data/sst/dev.txt")[: args.limit_dev]
    train = [encode(t, tok) for t in train_trees]
    dev = [encode(t, tok) for t in dev_trees]
    order = sorted(range(len(train)), key=lambda i: len(train[i][0]))
    batches = [order[i:i + args.bs] for i in range(0, len(order), args.bs)]
    params = [p for p in model.parameters() if p.requires_grad]
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    groups = [{"params": head}, {"params": enc_params, "lr": args.enc_lr if args.full else args.lr}]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    total = args.epochs * len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, s / (0.05 * total)) * max(0.0, (total - s) / total))
    step, t0 = 0, time.time()
    for epoch in range(args.epochs):
        random.shuffle(batches)
        for batch in batches:
            ids, mask, fence, gold, valid = collate([train[i] for i in batch], tok.pad_token_id)
            logits = model(ids, mask, fence)
            loss = nn.functional.binary_cross_entropy_with_logits(logits[valid], gold[valid])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            step += 1
            if step % args.eval_every == 0 or step == total:
                pred = decode(model, dev, dev_trees, tok)
                f1 = bracket_f1(dev_trees, pred)
                print(f"epoch {epoch} step {step}/{total} loss {loss.item():.4f} dev F1 {100*f1:.2f} "
                      f"({time.time()-t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
