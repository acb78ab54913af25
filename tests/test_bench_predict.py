"""experiments/bench/predict.py, the end-to-end raw-text benchmark, on three sample sentences: it runs `sentibert
predict` (bundled model and parser) in fresh processes and reports the phases `--timings` prints."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sentibert.config import SAMPLE_DATA_DIR
from sentibert.bundles import BUNDLES, DEFAULT_MODEL

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "predict.py"


def test_benchmark_reports_every_phase_of_cold_and_warm_runs(tmp_path):
    if not (BUNDLES[DEFAULT_MODEL] / "config.json").is_file():
        pytest.skip("no bundled model in this installation")
    out = tmp_path / "predict.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--trees", str(Path(SAMPLE_DATA_DIR) / "sst" / "test.txt"),
                           "-n", "3", "--runs", "1", "--precision", "32", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["sentences"] == 3 and results["precision"] == "32" and len(results["cold"]) == 1
    for run in (*results["cold"], results["warm"]):
        assert set(run) == {"wall", "start-up", "load", "parse", "model", "render"}
        assert all(seconds >= 0 for seconds in run.values())
        assert run["wall"] == pytest.approx(sum(v for k, v in run.items() if k != "wall"))
    assert results["warm"]["parse"] < results["cold"][0]["parse"]  # the warm run's parses come from the cache
    assert "median" in done.stdout and "sentences/s" in done.stdout
