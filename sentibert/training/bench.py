"""Throughput (`sentibert bench [encoder=...] [batches=20]`): what the tree module and dynamic padding cost and save.

On the same length-bucketed batches of SST trees (dev by default; the packaged sample trees when SST is not
prepared), times
  - the model (SentiBERT unless model=...), dynamic padding: a training step (forward, backward) and inference;
  - the bare encoder: the same batches through the model's own encoder, with a trivial loss (mean of its states);
  - the model with every sentence padded to `pad_to` (128) wordpieces, the official implementation's scheme;
  - the model under each of `precisions` other than 32 (autocast, sentibert.precision), and torch.compile'd
    (`compile=true`): `speedup_<variant>` is its training speed over float32 eager.
The variants run in turn on each batch, in rotating order, after `warmup` untimed batches, so a change of machine load
hits them alike. The optimiser step is left out: it costs the same whatever the batch.

Beside the measured overhead (model step time / encoder step time, training and inference) it prints the FLOP floor:
the model's training-step FLOPs over the encoder's on the same batches, counted by torch's FlopCounterMode (matrix
products and attention; elementwise work is not counted). It is the least overhead the composition's arithmetic
allows; what the measured overhead has above it is time spent elsewhere (Python, gathers, memory traffic).

Prints sentences/s per variant and, last, exactly: `overhead=<model step / encoder step> speedup_vs_pad128=<ratio>`
(training steps; see experiments/bench/README.md). Also writes bench.json to the run directory.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from sentibert import precision, runs
from sentibert.config import SAMPLE_DATA_DIR
from sentibert.data.datasets import DataError, load_splits
from sentibert.data.spans import BucketBatchSampler, TreeDataset
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.device import describe_machine, pick_device
from sentibert.io import atomic_write_json
from sentibert.parsing import parse

log = logging.getLogger(__name__)
SAMPLE = Path(SAMPLE_DATA_DIR) / "sst"  # when the dataset is not prepared
FLOOR_MARGIN = 0.05  # the goal: measured training overhead <= FLOP floor + this (MiniLM, one thread)


def bench_trees(cfg: DictConfig) -> tuple[list[BinaryTree], str]:
    try:
        return load_splits(cfg.data, [cfg.split], parse.load_parser)[cfg.split], f"{cfg.data.dataset} {cfg.split}"
    except DataError as err:
        log.warning("%s\n-> benchmarking on the packaged sample trees: short sentences, not SST's numbers", err)
        return read_trees(SAMPLE / f"{cfg.split}.txt"), f"sample {cfg.split}"


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call (forward and backward), as torch counts them: matrix products and attention."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def seconds(step: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bench(cfg: DictConfig, run_dir: Path) -> dict:
    """Time every variant on the same batches (the module docstring); writes bench.json, prints the summary."""
    # Over 60 lines on purpose: the variants are small closures over one model and one device, and the timing loop
    # that runs them in rotating order reads best right under them.
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device, "device")
    model = instantiate(cfg.model).to(device)
    trees, source = bench_trees(cfg)
    dataset = TreeDataset(trees, model.tokenizer, cfg.encoder.max_length, name=source)
    sampler = BucketBatchSampler(dataset.lengths, cfg.data.batch_size, seed=cfg.seed,
                                 bucket_batches=cfg.data.bucket_batches)
    order = sampler.batches(0)  # a training epoch's first batches, reused in turn when there are too few
    picks = [n % len(order) for n in range(cfg.warmup + cfg.batches)]  # an index into order per batch run
    chosen = [[dataset[i] for i in order[p]] for p in picks]

    def on_device(batch: dict) -> dict:
        return {k: v.to(device) for k, v in batch.items()}

    def model_loss(batch: dict) -> torch.Tensor:
        return model(batch)["loss"]

    def encoder_loss(batch: dict) -> torch.Tensor:
        states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return states.mean()

    name = type(model).__name__
    # name: (loss, pad_to, precision)
    variants = {name: (model_loss, None, "32"), "encoder": (encoder_loss, None, "32"),
                f"{name}_pad{cfg.pad_to}": (model_loss, cfg.pad_to, "32")}
    variants.update({f"{name}_{p}": (model_loss, None, p) for p in map(precision.check, cfg.precisions) if p != "32"})
    if cfg.compile:
        compiled = torch.compile(model, dynamic=True)
        variants[f"{name}_compiled"] = (lambda batch: compiled(batch)["loss"], None, "32")
    totals = {v: {"train": 0.0, "inference": 0.0} for v in variants}

    def train_step(loss: Callable, batch: dict, amp: str) -> None:
        model.zero_grad(set_to_none=True)
        with precision.autocast(amp, device):
            value = loss(batch)
        value.backward()

    def inference_step(loss: Callable, batch: dict, amp: str) -> None:
        with torch.inference_mode(), precision.autocast(amp, device):
            loss(batch)

    names = list(variants)
    for n, items in enumerate(tqdm(chosen, desc=f"bench ({cfg.warmup} warm-up batches)", dynamic_ncols=True)):
        for v in names[n % len(names):] + names[:n % len(names)]:
            loss, pad_to, amp = variants[v]
            batch = on_device(dataset.collate(list(items), pad_to=pad_to))
            model.train()
            train = seconds(lambda: train_step(loss, batch, amp), device)
            model.eval()
            inference = seconds(lambda: inference_step(loss, batch, amp), device)
            if n >= cfg.warmup:
                totals[v]["train"] += train
                totals[v]["inference"] += inference

    # FLOPs of the timed training steps, counted after the timed loop so that counting slows none of them; once per
    # distinct batch (too few batches repeat), weighted by its repeats. In train mode, as the steps were timed.
    model.train()
    repeats = Counter(picks[cfg.warmup:])

    def step_flops(v: str, p: int) -> int:
        batch = on_device(dataset.collate([dataset[i] for i in order[p]]))
        return count_flops(lambda: train_step(variants[v][0], batch, "32"))

    flops = {v: sum(k * step_flops(v, p) for p, k in repeats.items()) for v in (name, "encoder")}
    sentences = sum(len(items) for items in chosen[cfg.warmup:])
    padded = sum(max(len(item.input_ids) for _, item in items) for items in chosen[cfg.warmup:]) / cfg.batches
    overhead = totals[name]["train"] / totals["encoder"]["train"]
    floor = flops[name] / flops["encoder"]  # training-step FLOPs, model over bare encoder: the least overhead possible
    results = {
        "encoder": cfg.encoder.name_or_path, "model": name, "device": str(device), "threads": torch.get_num_threads(),
        "machine": describe_machine(device), "source": source, "batch_size": cfg.data.batch_size, "batches": cfg.batches, "mean_padded_length": padded,
        "sentences_per_s": {v: {k: sentences / t for k, t in times.items()} for v, times in totals.items()},
        "overhead": overhead,
        "inference_overhead": totals[name]["inference"] / totals["encoder"]["inference"],
        "train_flops": flops, "flop_floor": floor, "overhead_above_floor": overhead - floor,
        "speedup_vs_pad128": totals[f"{name}_pad{cfg.pad_to}"]["train"] / totals[name]["train"],
        # > 1: the variant trains faster than float32 eager
        **{f"speedup_{v[len(name) + 1:]}": totals[name]["train"] / totals[v]["train"]
           for v in variants if v.startswith(f"{name}_") and not v.startswith(f"{name}_pad")},
    }
    atomic_write_json(run_dir / runs.BENCH_FILE, results)
    print_results(results, sentences)
    return results


def print_results(results: dict, sentences: int) -> None:
    """The console summary of bench.json; its last line is exactly `overhead=... speedup_vs_pad128=...`."""
    print(f"{results['encoder']} on {results['device']} ({results['machine']}), {results['source']}: "
          f"{results['batches']} batches, {sentences} sentences, mean padded length "
          f"{results['mean_padded_length']:.1f} wordpieces")
    print(f"{'sentences/s':<24}{'train':>10}{'inference':>12}")
    for v, rates in results["sentences_per_s"].items():
        print(f"{v:<24}{rates['train']:>10.1f}{rates['inference']:>12.1f}")
    for key in (k for k in results if k.startswith("speedup_") and k != "speedup_vs_pad128"):
        print(f"{key}={results[key]:.2f}")
    above = results["overhead_above_floor"]
    print(f"flop_floor={results['flop_floor']:.2f} inference_overhead={results['inference_overhead']:.2f} "
          f"overhead_above_floor={above:.2f} (goal <= {FLOOR_MARGIN}: {'met' if above <= FLOOR_MARGIN else 'not met'})")
    print(f"overhead={results['overhead']:.2f} speedup_vs_pad128={results['speedup_vs_pad128']:.2f}")
