"""Raw-text speed, end to end: `sentibert predict --in FILE` over SST test sentences, cold parse cache.

    python experiments/bench/predict.py                          # 1000 sentences, 3 cold runs and 1 warm run
    python experiments/bench/predict.py --precision 32 --runs 1  # any `sentibert predict` precision

Each run is a fresh `sentibert predict` process (so start-up counts) writing the text format to a file. A cold
run gets an empty $SENTIBERT_CACHE: every sentence is parsed. The warm run reuses the last cold run's cache.

The input is raw text: SST test trees' leaves, PTB escapes undone and detokenised by nltk's
TreebankWordDetokenizer ("does n't" -> "doesn't"), one sentence per line. The command's `--timings` gives load
(model and parser handle), parse (with the parser's model load, when anything is uncached), model and render;
start-up is the rest of the wall time: the interpreter and imports. Prints one line per run and their median,
with sentences/s over the wall time and "once loaded" (parse + model + render: what a running server pays),
and writes everything to experiments/bench/results/predict-<precision>.json (`--out`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nltk.tokenize.treebank import TreebankWordDetokenizer

from sentibert.data.tree import normalize_token, read_trees
from sentibert.device import describe_machine
from sentibert.io import cache_root

HERE = Path(__file__).resolve().parent
PHASES = ("start-up", "load", "parse", "model", "render")
GOAL = 100  # sentences/s, start-up included (issue 12)


def raw_sentences(trees_path: Path, n: int) -> list[str]:
    detokenize = TreebankWordDetokenizer().detokenize
    return [detokenize([normalize_token(t) for t in tree.tokens]) for tree in read_trees(trees_path)[:n]]


def run_predict(text_file: Path, cache: Path, precision: str, model: str) -> dict[str, float]:
    """One `sentibert predict` process: its wall time and the phases it timed, start-up being the rest."""
    env = {**os.environ, "SENTIBERT_CACHE": str(cache)}
    command = [sys.executable, "-m", "sentibert.cli", "predict", "--model", model, "--in", str(text_file), "--out",
               str(cache / "out.txt"), "--precision", precision, "--timings"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"predict failed ({done.returncode}):\n{done.stderr[-2000:]}")
    line = next(line for line in done.stderr.splitlines() if line.startswith("timings: "))
    phases = {name: float(value) for name, value in (item.split("=") for item in line.split()[1:])}
    return {"wall": wall, "start-up": wall - sum(phases.values()), **phases}


def describe(label: str, timing: dict[str, float], n: int) -> str:
    """Sentences/s over the wall time and, as a running `sentibert serve` would pay, over parse + model + render."""
    breakdown = " ".join(f"{name}={timing[name]:.2f}" for name in PHASES)
    loaded = n / (timing["parse"] + timing["model"] + timing["render"])
    return (f"{label:<6} {n / timing['wall']:6.1f} sentences/s ({loaded:.1f} once loaded)  "
            f"wall={timing['wall']:.2f} s  {breakdown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trees", type=Path, default=Path(os.getenv("SENTIBERT_DATA_DIR", "data")) / "sst" / "test.txt",
                    help="SST trees whose sentences are the input (default: the prepared SST test split)")
    ap.add_argument("-n", type=int, default=1000, help="sentences")
    ap.add_argument("--runs", type=int, default=3, help="cold runs (then one warm run)")
    ap.add_argument("--precision", default="auto", choices=("auto", "32", "bf16"))
    ap.add_argument("--model", default="minilm", help="a bundled model's name or a checkpoint (sentibert.bundles)")
    ap.add_argument("--out", type=Path, help="JSON results (default: experiments/bench/results/predict-<precision>.json, "
                    "predict-<model>-<precision>.json for another model than minilm)")
    args = ap.parse_args()

    sentences = raw_sentences(args.trees, args.n)
    n = len(sentences)
    cold = []
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "sentences.txt"
        text_file.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        for run in range(args.runs):
            cache = Path(tmp) / f"cache{run}"
            cache.mkdir()
            if (cache_root() / "encoders").is_dir():  # installed encoders (mpnet) stay; only parses start cold
                (cache / "encoders").symlink_to(cache_root() / "encoders")
            cold.append(run_predict(text_file, cache, args.precision, args.model))
            print(describe(f"cold{run + 1}", cold[-1], n), flush=True)
        warm = run_predict(text_file, cache, args.precision, args.model)
    print(describe("warm", warm, n))
    print(f"on {describe_machine()}; each predict process with its own threads")
    median = {key: statistics.median(t[key] for t in cold) for key in cold[0]}
    verdict = "met" if n / median["wall"] >= GOAL else "not met"
    print(describe("median", median, n) + f"  (cold; goal >= {GOAL}: {verdict})")

    stem = "predict" if args.model == "minilm" else f"predict-{Path(args.model).name}"
    out = args.out or HERE / "results" / f"{stem}-{args.precision}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": " ".join(["python", "experiments/bench/predict.py", *sys.argv[1:]]), "sentences": n,
        "model": args.model, "precision": args.precision, "machine": describe_machine(),
        "date": time.strftime("%Y-%m-%d"), "cold_median": median, "cold": cold, "warm": warm,
        "sentences_per_s_cold_median": n / median["wall"]}, indent=2) + "\n", encoding="utf-8")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
