"""The command line's pass options: --report, --dump-after and --disable (with a suggestion for
a misspelt pass name)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def nngraph(*args):
    return subprocess.run([sys.executable, "-m", "nngraph.cli", *args], capture_output=True, text=True)


def test_cli_report_dump_and_disable(tmp_path):
    mlp = str(ROOT / "examples" / "mlp.nn")
    r = nngraph("compile", mlp, "-o", str(tmp_path / "m.onnx"), "--report")
    assert r.returncode == 0 and "fuse_gemm" in r.stdout and "nodes before" in r.stdout
    r = nngraph("compile", mlp, "--dump-after", "fuse_gemm")
    assert r.returncode == 0 and "= gemm(" in r.stdout and "[fused by fuse_gemm from 2 nodes]" in r.stdout
    r = nngraph("compile", mlp, "-o", str(tmp_path / "d.onnx"), "--disable", "fuse_gemm")
    assert r.returncode == 0
    assert "Gemm" not in {n.op_type for n in __import__("onnx").load(tmp_path / "d.onnx").graph.node}
    r = nngraph("compile", mlp, "--disable", "fuse_gem")
    assert r.returncode == 1 and "did you mean 'fuse_gemm'?" in r.stderr
    r = nngraph(
        "compile", str(ROOT / "examples" / "digits_cnn.nn"), "--train", "-O0", "-o", str(tmp_path / "s.onnx")
    )
    assert r.returncode == 0, r.stderr
