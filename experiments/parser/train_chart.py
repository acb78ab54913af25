"""Train the bundled chart parser (`sentibert.parsing.chart`) on SST train trees, CPU, resumable.

    python experiments/parser/train_chart.py [--out experiments/parser/work/chart] [--epochs 6] [--resume]

Model selection is honest: a fixed, seeded sample of `--holdout` train trees picks the checkpoint and is
not trained on; SST dev and test are each parsed once, at the end, with the selected model, and their
unlabeled bracket F1 (gold tokens) goes to OUT/metrics.json. A checkpoint (trained parameters,
optimizer, schedule, step) is written atomically at every evaluation; `--resume` continues from it.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from torch import nn

from sentibert.data.tree import read_trees
from sentibert.io import atomic_write
from sentibert.parsing.chart import ChartConfig, ChartParser, collate, gold_spans, span_loss
from sentibert.parsing.parse import bracket_f1


def batches_for_epoch(lengths: list[int], batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """Length-sorted batches (little padding), in an order shuffled per epoch, reproducibly."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed * 1000 + epoch).shuffle(batches)
    return batches


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/sst"), help="prepared SST (sentibert data prepare sst)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "work" / "chart")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--encoder", default="minilm", help="a name sentibert.models.encoder knows (tests: tiny)")
    ap.add_argument("--lora_rank", type=int, default=16)
    ap.add_argument("--span_dim", type=int, default=256)
    ap.add_argument("--holdout", type=int, default=500, help="train trees kept back to select the checkpoint")
    ap.add_argument("--eval_every", type=int, default=500, help="steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = ChartParser(ChartConfig(encoder=args.encoder, lora_rank=args.lora_rank, span_dim=args.span_dim,
                                    hidden=args.span_dim))
    model.add_adapters()
    trees = read_trees(args.data / "train.txt")
    held = set(random.Random(args.seed).sample(range(len(trees)), args.holdout))
    train = [t for i, t in enumerate(trees) if i not in held]
    holdout = [trees[i] for i in sorted(held)]
    items = [model.encode(t.tokens) for t in train]
    golds = [gold_spans(t) for t in train]
    lengths = [len(ids) for ids, _ in items]

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps_per_epoch = len(batches_for_epoch(lengths, args.batch_size, 0, args.seed))
    total = args.epochs * steps_per_epoch
    warmup = 0.05 * total  # linear warm-up, then linear decay to 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, s / warmup) * max(0.0, 1 - s / total))
    step, best, history = 0, -1.0, []
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["params"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step, best, history = state["step"], state["best"], state["history"]
        print(f"resumed at step {step}/{total}, best holdout F1 {100 * best:.2f}", flush=True)

    print(f"{len(train)} train trees, {len(holdout)} held out; {sum(p.numel() for p in params)} trained parameters; "
          f"{total} steps", flush=True)
    start = time.time()
    model.train()
    batches: dict[int, list[list[int]]] = {}  # per epoch, built once
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        if epoch not in batches:
            batches = {epoch: batches_for_epoch(lengths, args.batch_size, epoch, args.seed)}
        batch = batches[epoch][offset]
        inputs = collate([items[i] for i in batch], model.tokenizer.pad_token_id)
        loss = span_loss(model(**inputs), inputs["valid"], [golds[i] for i in batch])
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        if step % args.eval_every == 0 or step == total:
            f1 = bracket_f1(holdout, model.parse([t.tokens for t in holdout]))
            history.append({"step": step, "epoch": step / steps_per_epoch, "loss": loss.item(), "holdout_f1": 100 * f1})
            print(f"step {step}/{total} epoch {step / steps_per_epoch:.2f} loss {loss.item():.4f} "
                  f"holdout F1 {100 * f1:.2f} ({time.time() - start:.0f}s)", flush=True)
            if f1 > best:
                best = f1
                model.save(args.out / "best")
            state = {"params": model.trained_state(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "step": step,
                     "best": best, "history": history}
            atomic_write(checkpoint, lambda tmp: torch.save(state, tmp))

    selected = ChartParser.load(args.out / "best")  # float16 weights, merged: exactly what gets bundled
    metrics = {"holdout_f1": 100 * best, "history": history, "args": {k: str(v) for k, v in vars(args).items()}}
    for split in ("dev", "test"):
        gold = read_trees(args.data / f"{split}.txt")
        metrics[f"{split}_f1"] = 100 * bracket_f1(gold, selected.parse([t.tokens for t in gold]))
        print(f"{split}: unlabeled bracket F1 {metrics[f'{split}_f1']:.2f} (gold tokens, selected model)", flush=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
