"""What the optimization passes buy, measured in one run (issue #4).

For the digits MLP, the digits CNN and ResNet-18: the training step and the
inference model at -O0 against -O2 (target: the CNN's step at least 1.2x faster
at -O2), and nngraph's -O2 inference model against the same architecture
exported by torch.onnx.export, both in onnxruntime with the same session
options (target: ratio <= 1.0). Medians of alternating timed blocks.

    python tools/bench_passes.py [--reps 20] [--threads 2] [--json out.json] [--skip-resnet]
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

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "\ntrain {name} {{\n data = digits\n target label: i64[batch]\n loss = cross_entropy(logits, label)\n optimizer = adam(lr=1e-3)\n}}\n"
CASES = {  # title: (example, inference batch, training batch)
    "digits MLP": ("digits_mlp.nn", 64, 32),
    "digits CNN": ("digits_cnn.nn", 64, 32),
    "ResNet-18": ("resnet18.nn", 2, 2),
}


def median_ms(fns: dict, reps: int, block: int = 3) -> dict[str, float]:
    """Alternate blocks of each function so machine noise hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()  # warm up
    for _ in range(max(1, reps // block)):
        for k, f in fns.items():
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def options(threads: int) -> ort.SessionOptions:
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    return o


def source(file: str) -> str:
    text = (ROOT / "examples" / file).read_text()
    if "train " not in text:
        name = text.split("model ")[1].split()[0]
        text += TRAIN.format(name=name)
    return text


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-resnet", action="store_true")
    args = ap.parse_args()
    rows = []
    for key, (file, infer_batch, train_batch) in CASES.items():
        if key == "ResNet-18" and args.skip_resnet:
            continue
        m = ng.compile_source(source(file), str(ROOT / "examples" / file))
        reps = args.reps if key != "ResNet-18" else max(3, args.reps // 5)
        steps = median_ms(
            {lvl: step_fn(m.training("step", level=lvl), lvl, train_batch, args.threads) for lvl in (0, 2)},
            reps,
        )
        t = m.graph.type("image")
        x = np.random.default_rng(1).random(
            [infer_batch if isinstance(d, str) else d for d in t.shape], dtype=np.float32
        )
        fns = {lvl: infer_fn(m.to_onnx(lvl).SerializeToString(), x, args.threads) for lvl in (0, 2)}
        exported = torch_export(file.removesuffix(".nn"), x)
        if exported is not None:
            fns["torch"] = infer_fn(exported, x, args.threads)
        inf = median_ms(fns, reps * 2)
        row = {
            "model": key,
            "train_batch": train_batch,
            "infer_batch": infer_batch,
            "step_O0_ms": steps[0],
            "step_O2_ms": steps[2],
            "step_speedup": steps[0] / steps[2],
            "infer_O0_ms": inf[0],
            "infer_O2_ms": inf[2],
            "infer_speedup": inf[0] / inf[2],
            "torch_export_ms": inf.get("torch"),
            "ratio_vs_torch_export": inf[2] / inf["torch"] if "torch" in inf else None,
        }
        rows.append(row)
        print(
            f"{key}: step -O0 {steps[0]:.2f} ms, -O2 {steps[2]:.2f} ms ({row['step_speedup']:.2f}x); "
            f"inference -O0 {inf[0]:.3f} ms, -O2 {inf[2]:.3f} ms ({row['infer_speedup']:.2f}x)"
            + (
                f"; torch.onnx.export {inf['torch']:.3f} ms, ratio {row['ratio_vs_torch_export']:.2f}"
                if "torch" in inf
                else ""
            ),
            flush=True,
        )
    print(
        "\n| model | step -O0 ms | step -O2 ms | speedup | infer -O0 ms | infer -O2 ms | torch export ms | nngraph/torch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        te = f"{r['torch_export_ms']:.3f}" if r["torch_export_ms"] else "n/a"
        ratio = f"{r['ratio_vs_torch_export']:.2f}" if r["ratio_vs_torch_export"] else "n/a"
        print(
            f"| {r['model']} (batch {r['train_batch']}/{r['infer_batch']}) | {r['step_O0_ms']:.2f} | {r['step_O2_ms']:.2f} | "
            f"{r['step_speedup']:.2f}x | {r['infer_O0_ms']:.3f} | {r['infer_O2_ms']:.3f} | {te} | {ratio} |"
        )
    cnn = next((r for r in rows if r["model"] == "digits CNN"), None)
    if cnn:
        print(
            f"\ntarget: CNN step -O2 >= 1.2x faster than -O0: {cnn['step_speedup']:.2f}x "
            f"({'met' if cnn['step_speedup'] >= 1.2 else 'NOT met'})"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
