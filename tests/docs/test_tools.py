"""The tools/ scripts README reports from: the one-run benchmark's smoke run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT


def test_bench_quick_runs_and_writes_json(tmp_path):
    """tools/bench.py --quick: about 30 s on 2 cores, so it runs here (the full run is not a test)."""
    pytest.importorskip("torch")
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| compile ResNet-50 (25,557,032 params) | cpu |" in r.stdout
    assert (
        "| train step mlp" in r.stdout
        and "| inference digits_cnn (batch 64) vs torch eager | cpu |" in r.stdout
    )
    res = json.loads(out.read_text())
    assert [row["layers"] for row in res["compile_depth"]] == [10, 100, 300]
    assert res["resnet50_compile"]["params_ok"] and res["peak_memory_mib"]["inference"] > 0
    assert all(row["device"] == "cpu" for row in res["inference"]) or res["machine"]["cuda"]
