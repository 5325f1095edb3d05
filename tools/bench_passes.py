"""What the optimization passes buy, measured in one run (issue #4).

For the digits MLP, the digits CNN and ResNet-18: the training step and the
inference model at -O0 against -O2 (target: the CNN's step at least 1.2x faster
at -O2), and nngraph's -O2 inference model against the same architecture
exported by torch.onnx.export, both in onnxruntime with the same session
options (target: ratio <= 1.0).

Timing is paired: the configurations run one call each, in turn (the order
rotating), so that a slow spell of the machine hits all of them alike; a
speedup is the median over rounds of the per-round ratio, with its
interquartile range. Every figure is taken at each thread count asked for: on a
shared 2-core machine one intra-op thread is often steadier, and sometimes
faster, than two.

    python tools/bench_passes.py [--reps 40] [--threads 1,2] [--json out.json] [--skip-resnet]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import nngraph as ng
from nngraph.runtime.stepper import Stepper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import cpu_seconds, others_share  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "\ntrain {name} {{\n data = digits\n target label: i64[batch]\n loss = cross_entropy(logits, label)\n optimizer = adam(lr=1e-3)\n}}\n"
CASES = {  # title: (example, inference batch, training batch)
    "digits MLP": ("digits_mlp.nn", 64, 32),
    "digits CNN": ("digits_cnn.nn", 64, 32),
    "ResNet-18": ("resnet18.nn", 2, 2),
}


def paired_ms(fns: dict, reps: int, warmup: int = 3) -> dict[str, list[float]]:
    """Each round times one call of every function, starting from a different one each round;
    returns every call's milliseconds, round by round."""
    times: dict = {k: [] for k in fns}
    for f in fns.values():
        for _ in range(warmup):
            f()
    keys = list(fns)
    for r in range(reps):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append((time.perf_counter() - t0) * 1000)
    return times


def speedup(slow: list[float], fast: list[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile) of the per-round ratio slow / fast."""
    q = np.percentile([a / b for a, b in zip(slow, fast, strict=True)], [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def options(threads: int) -> ort.SessionOptions:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    return o


def with_train(text: str) -> str:
    """The source with a default train section for its first model, where it has none."""
    if "train " not in text:
        text += TRAIN.format(name=text.split("model ")[1].split()[0])
    return text


def source(file: str) -> str:
    return with_train((ROOT / "examples" / file).read_text())


def step_fn(c, level: int, batch: int, threads: int):
    st = Stepper(c.to_onnx(level).SerializeToString(), c.initial, threads=threads)
    rng = np.random.default_rng(0)
    t = c.graph.type("image")
    feeds = {
        "image": rng.random([batch if isinstance(d, str) else d for d in t.shape], dtype=np.float32),
        "label": rng.integers(0, 10, batch),
        "lr": np.array(1e-3, np.float32),
        "step": np.array(1),
    }
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([batch if isinstance(d, str) else d for d in shape], dtype=np.float32)
    return lambda: st.run(feeds)


def infer_fn(model_bytes: bytes, x: np.ndarray, threads: int):
    sess = ort.InferenceSession(model_bytes, options(threads), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: x})


def torch_export(key: str, x: np.ndarray) -> bytes | None:
    """The same architecture in PyTorch (tools/bench.py builds it), exported to ONNX;
    None when torch or its exporter is missing."""
    try:
        import torch
    except ImportError:
        return None
    from bench import torch_model, torch_onnx

    try:
        with torch.inference_mode():
            return torch_onnx(torch, torch_model(torch, key), x)
    except Exception as e:  # the exporter's own dependencies (onnxscript) may be missing
        print(f"  torch.onnx.export failed: {type(e).__name__}: {str(e).splitlines()[0]}", file=sys.stderr)
        return None


def bench_case(key: str, file: str, infer_batch: int, train_batch: int, threads: int, reps: int) -> dict:
    m = ng.compile_source(source(file), str(ROOT / "examples" / file))
    steps = paired_ms(
        {lvl: step_fn(m.training("step", level=lvl), lvl, train_batch, threads) for lvl in (0, 2)}, reps
    )
    t = m.graph.type("image")
    x = np.random.default_rng(1).random(
        [infer_batch if isinstance(d, str) else d for d in t.shape], dtype=np.float32
    )
    fns = {lvl: infer_fn(m.to_onnx(lvl).SerializeToString(), x, threads) for lvl in (0, 2)}
    exported = torch_export(file.removesuffix(".nn"), x)
    if exported is not None:
        fns["torch"] = infer_fn(exported, x, threads)
    inf = paired_ms(fns, reps * 2)
    med = {k: statistics.median(v) for k, v in inf.items()}
    lo, mid, hi = speedup(steps[0], steps[2])
    row = {
        "model": key,
        "threads": threads,
        "train_batch": train_batch,
        "infer_batch": infer_batch,
        "rounds": reps,
        "step_O0_ms": statistics.median(steps[0]),
        "step_O2_ms": statistics.median(steps[2]),
        "step_speedup": mid,
        "step_speedup_iqr": [lo, hi],
        "infer_O0_ms": med[0],
        "infer_O2_ms": med[2],
        "infer_speedup": med[0] / med[2],  # sub-millisecond calls: ratios of medians
        "torch_export_ms": med.get("torch"),
        "ratio_vs_torch_export": med[2] / med["torch"] if "torch" in inf else None,
    }
    print(
        f"{key}, {threads} thread(s): step -O0 {row['step_O0_ms']:.2f} ms, -O2 {row['step_O2_ms']:.2f} ms "
        f"(speedup {mid:.2f}x, IQR {lo:.2f}-{hi:.2f}); inference -O0 {med[0]:.3f} ms, -O2 {med[2]:.3f} ms"
        + (
            f"; torch.onnx.export {med['torch']:.3f} ms, ratio {row['ratio_vs_torch_export']:.2f}"
            if "torch" in inf
            else ""
        ),
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40, help="rounds (ResNet-18: a fifth of them, at least 3)")
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts, comma-separated")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-resnet", action="store_true")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    before = cpu_seconds()
    t0 = time.perf_counter()
    rows = []
    for key, (file, infer_batch, train_batch) in CASES.items():
        if key == "ResNet-18" and args.skip_resnet:
            continue
        reps = args.reps if key != "ResNet-18" else max(3, args.reps // 5)
        for n in threads:
            rows.append(bench_case(key, file, infer_batch, train_batch, n, reps))
    after = cpu_seconds()
    print(
        "\n| model | threads | step -O0 ms | step -O2 ms | speedup (IQR) | infer -O0 ms | infer -O2 ms "
        "| torch export ms | nngraph/torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        te = f"{r['torch_export_ms']:.3f}" if r["torch_export_ms"] else "n/a"
        ratio = f"{r['ratio_vs_torch_export']:.2f}" if r["ratio_vs_torch_export"] else "n/a"
        lo, hi = r["step_speedup_iqr"]
        print(
            f"| {r['model']} (batch {r['train_batch']}/{r['infer_batch']}) | {r['threads']} | {r['step_O0_ms']:.2f} "
            f"| {r['step_O2_ms']:.2f} | {r['step_speedup']:.2f}x ({lo:.2f}-{hi:.2f}) | {r['infer_O0_ms']:.3f} "
            f"| {r['infer_O2_ms']:.3f} | {te} | {ratio} |"
        )
    for cnn in (r for r in rows if r["model"] == "digits CNN"):
        met = "NOT met"
        if cnn["step_speedup"] >= 1.2:
            met = "met" if cnn["step_speedup_iqr"][0] >= 1.2 else "met in the median only"
        print(
            f"target: CNN step -O2 >= 1.2x faster than -O0 at {cnn['threads']} thread(s): "
            f"{cnn['step_speedup']:.2f}x ({met})"
        )
    share = others_share(before, after, time.perf_counter() - t0)
    if share is not None:
        print(f"other processes used {share:.0%} of the machine during the run")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
