"""`sentibert bench` on the tiny encoder: one run times all three variants and ends with the summary line."""
import json
import os
import re
from pathlib import Path

import pytest

from sentibert.commands import bench
from sentibert.config import SAMPLE_DATA_DIR

FIXTURE_ROOT = Path(SAMPLE_DATA_DIR)  # the sample treebank shipped in the package (data=fixture)
pytestmark = pytest.mark.usefixtures("one_thread")  # the command sets the process's thread count: put back after


def test_bench_prints_overhead_and_speedup_last(tmp_path, capsys):
    bench.main(["encoder=tiny", "data=fixture", f"data.root={FIXTURE_ROOT}", "batches=2", "warmup=1", "threads=1",
                f"hydra.run.dir={tmp_path}"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"overhead=\d+\.\d\d speedup_vs_pad128=\d+\.\d\d", last)
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["sentences_per_s"]) == {"SentiBERT", "encoder", "SentiBERT_pad128", "SentiBERT_bf16"}
    assert results["speedup_bf16"] == pytest.approx(results["sentences_per_s"]["SentiBERT_bf16"]["train"]
                                                    / results["sentences_per_s"]["SentiBERT"]["train"])
    assert results["source"] == "sst dev" and results["mean_padded_length"] < 128
    assert last == f"overhead={results['overhead']:.2f} speedup_vs_pad128={results['speedup_vs_pad128']:.2f}"


def test_flop_floor_counts_the_composition_on_top_of_the_encoder(tmp_path, capsys):
    bench.main(["encoder=tiny", "data=fixture", f"data.root={FIXTURE_ROOT}", "batches=2", "warmup=0", "threads=1",
                "precisions=[32]", f"hydra.run.dir={tmp_path}"])
    results = json.loads((tmp_path / "bench.json").read_text())
    flops = results["train_flops"]
    assert 0 < flops["encoder"] < flops["SentiBERT"]
    assert results["flop_floor"] == pytest.approx(flops["SentiBERT"] / flops["encoder"]) and results["flop_floor"] > 1
    assert results["overhead_above_floor"] == pytest.approx(results["overhead"] - results["flop_floor"])
    assert results["inference_overhead"] > 0
    summary = capsys.readouterr().out.strip().splitlines()[-2]
    assert summary.startswith(f"flop_floor={results['flop_floor']:.2f} "
                              f"inference_overhead={results['inference_overhead']:.2f} "
                              f"overhead_above_floor={results['overhead_above_floor']:.2f} (goal <= 0.05: ")


def test_bench_without_the_dataset_uses_the_packaged_sample(tmp_path, capsys):
    # SST is not prepared under this data root: the sample trees shipped in the package stand in
    bench.main(["encoder=tiny", "data=sst", f"data.root={tmp_path / 'not-prepared'}", "batches=1", "warmup=0",
                "threads=1", "precisions=[32]", f"hydra.run.dir={tmp_path / 'run'}"])
    results = json.loads((tmp_path / "run" / "bench.json").read_text())
    assert results["source"] == "sample dev"
    assert set(results["sentences_per_s"]) == {"SentiBERT", "encoder", "SentiBERT_pad128"}
    assert "threads), sample dev: 1 batches" in capsys.readouterr().out


def test_a_timing_names_the_machine_it_ran_on():
    from sentibert.device import describe_machine

    line = describe_machine()
    assert f"{os.cpu_count()} cores" in line and "torch threads" in line
