"""Compile-time benchmark: how long nngraph takes from .nn text to a checked ONNX model.

Target (issue #2): ResNet-18 compiles in under 2 s. Prints one line per example
and stage (median of --repeat runs), and the ratio to the target. The last stage,
not part of the target, compiles the training step (autodiff, -O2 passes, lowering;
a default train section is added where the file has none): its cost grows with the
graph, so it shows whether a pass went quadratic.

    python tools/bench_compile.py [--repeat 5] [files...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nngraph as ng
from nngraph.frontend import build_graph, load_file
from nngraph.onnx.lower import check, lower

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_passes import with_train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def stages(path: Path, out: Path) -> dict[str, float]:
    t = {}
    t0 = time.perf_counter()
    prog = load_file(path)
    t["parse"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    graph = build_graph(prog).graph
    t["build+shapes"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    model = lower(graph)
    t["lower"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    check(model)
    t["check"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    ng.compile_file(path).save(out)  # the whole public path, as `nngraph compile` runs it
    t["total compile_file+save"] = time.perf_counter() - t4
    t5 = time.perf_counter()
    ng.compile_source(with_train(path.read_text()), str(path)).training("step").to_onnx()
    t["training step (no target)"] = time.perf_counter() - t5
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", default=[str(ROOT / "examples" / "resnet18.nn")])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for f in args.files:
            runs = [stages(Path(f), Path(d) / "m.onnx") for _ in range(args.repeat)]
            print(f"{Path(f).name} (median of {args.repeat})")
            for key in runs[0]:
                med = statistics.median(r[key] for r in runs)
                print(f"  {key:24s} {med * 1000:8.1f} ms")
            total = statistics.median(r["total compile_file+save"] for r in runs)
            verdict = "ok" if total < TARGET_S else "SLOW"
            print(
                f"  target < {TARGET_S:.1f} s: {total:.2f} s ({total / TARGET_S:.2f} of the budget) {verdict}"
            )


if __name__ == "__main__":
    main()
