"""Every benchmark in one run (issue #7): prints a markdown table and can write JSON.

1. compile time vs depth: an MLP of 10, 100 and 1000 dense layers written with `repeat`
   (time per layer; it must grow about linearly: the per-layer time at the deepest within
   2x of the 100-layer one);
2. compile time of ResNet-50 (examples/resnet50.nn, 25,557,032 parameters; target < 2 s),
   .nn text to a checked ONNX model written to disk, in process;
3. the training step (forward, backward, Adam) against PyTorch eager, through
   tools/bench_train.py (ratio nngraph / torch; targets MLP <= 0.6, CNN <= 1.0 on CPU,
   <= 0.8 on CUDA);
4. inference against PyTorch eager and against torch.onnx.export of the same architecture
   run in onnxruntime with the same session options (ratio nngraph / other);
5. peak memory (resource.getrusage maxrss of this process after each part).

CPU rows always; CUDA rows only when onnxruntime's CUDA provider really starts here and
PyTorch sees a GPU. The same thread count on every side (--threads, default 2).

    python tools/bench.py [--quick] [--threads 2] [--json out.json]

--quick is a smoke run (fewer depths and repetitions, no ResNet inference): about a minute.
The full run takes a few minutes on 2 cores. PyTorch is a benchmark dependency only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

import nngraph as ng
from nngraph.runtime import Session
from nngraph.runtime.stepper import Stepper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import cpu_seconds, others_share  # noqa: E402  (a sibling script)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
RESNET50_PARAMS = 25_557_032


def peak_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def median_ms(fns: dict[str, Any], reps: int, block: int = 3, sync=None) -> dict[str, float]:
    """Median time of each function, in alternating blocks so machine noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
        f()  # warm up (the second run for lazily built kernels and CUDA graphs)
    for _ in range(max(1, reps // block)):
        for k, f in fns.items():
            f()  # untimed: re-warm after the other side ran
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                if sync:
                    sync()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


# ---- 1, 2: compile time ------------------------------------------------------------------------


def deep_mlp(depth: int, width: int = 64) -> str:
    return (
        f"model Deep{depth} {{\n    input x: f32[batch, {width}]\n    h = x\n"
        f"    repeat {depth} {{ h = h | dense({width}) | relu }}\n    output y = h | dense(10)\n}}\n"
    )


def compile_once(src: str | Path, out: Path) -> float:
    t0 = time.perf_counter()
    model = ng.compile_file(src) if isinstance(src, Path) else ng.compile_source(src, "<bench>")
    model.save(out)  # lowering, the full onnx.checker check and an atomic write: `nngraph compile`
    return time.perf_counter() - t0


def bench_depth(depths: list[int], repeat: int, tmp: Path) -> list[dict]:
    compile_once(deep_mlp(2), tmp / "warm.onnx")  # imports, grammar and first-call costs: not per layer
    rows = []
    for depth in depths:
        src = deep_mlp(depth)
        secs = statistics.median(compile_once(src, tmp / "deep.onnx") for _ in range(repeat))
        rows.append({"layers": depth, "seconds": secs, "ms_per_layer": secs * 1000 / depth})
        print(
            f"  depth {depth}: {secs:.3f} s ({secs * 1000 / depth:.2f} ms/layer)", file=sys.stderr, flush=True
        )
    return rows


def linear_verdict(rows: list[dict]) -> dict:
    """About linear: the per-layer time of the deepest within 2x of the per-layer time at 100
    (small depths carry a fixed cost, so 10 layers is no baseline)."""
    base = next((r for r in rows if r["layers"] >= 100), rows[0])
    deepest = rows[-1]
    growth = deepest["ms_per_layer"] / base["ms_per_layer"]
    return {
        "per_layer_growth": growth,
        "from": base["layers"],
        "to": deepest["layers"],
        "linear": growth <= 2.0,
    }


def bench_resnet50(repeat: int, tmp: Path) -> dict:
    path = ROOT / "examples" / "resnet50.nn"
    params = ng.compile_file(path).summary_dict()["params"]
    secs = statistics.median(compile_once(path, tmp / "r50.onnx") for _ in range(repeat))
    print(f"  ResNet-50: {secs:.3f} s, {params:,} parameters", file=sys.stderr, flush=True)
    row = {
        "seconds": secs,
        "params": params,
        "params_ok": params == RESNET50_PARAMS,
        "target_s": 2.0,
        "met": secs < 2.0,
    }
    try:  # where the time goes: parse, build+shapes, lower, the onnx.checker check
        import bench_compile

        row["stages_s"] = {
            k: v for k, v in bench_compile.stages(path, tmp / "r50.onnx").items() if not k.startswith("total")
        }
    except Exception as e:
        row["stages_s"] = {"error": f"{type(e).__name__}: {e}"}
    return row


# ---- 3: training step ---------------------------------------------------------------------------


def bench_train_cpu(torch, steps: int, warmup: int, threads: int) -> list[dict]:
    try:
        import bench_train
    except Exception as e:  # another change may be under way there
        return [{"device": "cpu", "model": "-", "error": f"tools/bench_train.py: {type(e).__name__}: {e}"}]
    rows = []
    for key in bench_train.MODELS:
        try:
            r = bench_train.bench(torch, key, steps, warmup, min(10, steps), threads)
        except Exception as e:
            rows.append({"device": "cpu", "model": key, "error": f"{type(e).__name__}: {e}"})
            continue
        r.pop("times_ms", None)
        rows.append({"device": "cpu", "model": key, **r})
        print(f"  train {key} cpu: ratio {r['ratio']:.2f}", file=sys.stderr, flush=True)
    return rows


def bench_train_cuda(torch, steps: int, warmup: int) -> list[dict]:
    """nngraph's step with state on the GPU (Stepper, IOBinding) against PyTorch eager on CUDA."""
    import bench_train

    rows = []
    for key, cfg in bench_train.MODELS.items():
        try:
            name = cfg["source"].split("model ")[1].split()[0]
            src = cfg["source"] + bench_train.TRAIN.format(name=name, batch=cfg["batch"])
            compiled = ng.compile_source(src, f"<bench {key}>").training("step")
            stepper = Stepper(compiled.to_onnx().SerializeToString(), compiled.initial, device="cuda")
            rng = np.random.default_rng(0)
            n = cfg["batch"]
            x = rng.random((n, *cfg["image"]), dtype=np.float32)
            y = rng.integers(0, 10, n, dtype=np.int64)
            count = [0]

            def ours(stepper=stepper, x=x, y=y, count=count):
                count[0] += 1
                feeds = {"image": x, "label": y, "lr": np.array(1e-3, np.float32), "step": np.array(count[0])}
                return stepper.run(feeds)["loss"]  # the loss comes to the host: a step's real sync

            net = bench_train.torch_net(torch, key).cuda().train()
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)

            def theirs(net=net, opt=opt, tx=tx, ty=ty):
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(tx.cuda()), ty.cuda())
                loss.backward()
                opt.step()
                return float(loss)  # the same sync: the loss to the host

            med = median_ms({"nngraph": ours, "torch": theirs}, steps, block=10)
            rows.append(
                {
                    "device": "cuda",
                    "model": key,
                    "batch": n,
                    "nngraph_ms": med["nngraph"],
                    "torch_ms": med["torch"],
                    "ratio": med["nngraph"] / med["torch"],
                    "target": 0.8,
                    "met": med["nngraph"] / med["torch"] <= 0.8,
                }
            )
        except Exception as e:
            rows.append({"device": "cuda", "model": key, "error": f"{type(e).__name__}: {e}"})
    return rows


# ---- 4: inference -------------------------------------------------------------------------------


def torch_model(torch, key: str):
    """The same architecture as examples/<key>.nn in PyTorch, in eval mode."""
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.down = (
                None
                if stride == 1 and cin == cout
                else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            )

        def forward(self, x):
            return torch.relu((x if self.down is None else self.down(x)) + self.body(x))

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, stride, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.Conv2d(width, width * 4, 1, bias=False),
                nn.BatchNorm2d(width * 4),
            )
            self.down = (
                None
                if stride == 1 and cin == width * 4
                else nn.Sequential(
                    nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4)
                )
            )

        def forward(self, x):
            return torch.relu((x if self.down is None else self.down(x)) + self.body(x))

    if key == "digits_mlp":
        net = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
        )
    elif key == "digits_cnn":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            Basic(32, 32, 1),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(512, 10),
        )
    else:
        stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        layers, cin = [], 64
        if key == "resnet18":
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
                cin = cout
        else:
            for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                layers.append(Bottleneck(cin, width, stride))
                layers += [Bottleneck(width * 4, width, 1) for _ in range(count - 1)]
                cin = width * 4
        net = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))
    return net.eval()


def torch_onnx(torch, net, x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with contextlib.redirect_stdout(sys.stderr):  # the exporter's progress lines: not in the table
        _export(torch, net, x, buf)
    return buf.getvalue()


def _export(torch, net, x: np.ndarray, buf: io.BytesIO) -> None:
    torch.onnx.export(
        net,
        (torch.from_numpy(x),),
        buf,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}},
        opset_version=18,  # the exporter's lowest: no down-conversion (which fails on an axes input)
    )


INFER = {"digits_mlp": 64, "digits_cnn": 64, "resnet18": 1, "resnet50": 1}  # example: batch


def bench_infer(torch, keys: list[str], device: str, reps: int, threads: int) -> list[dict]:
    rows = []
    for key in keys:
        batch = INFER[key]
        try:
            model = ng.compile_file(ROOT / "examples" / f"{key}.nn")
            t = model.graph.type("image")
            x = np.random.default_rng(1).random(
                [batch if isinstance(d, str) else d for d in t.shape], dtype=np.float32
            )
            ours = Session(model.to_onnx().SerializeToString(), device=device, threads=threads)
            net = torch_model(torch, key)
            fns: dict[str, Any] = {"nngraph": lambda ours=ours, x=x: ours.run({"image": x})}
            sync = None
            with torch.inference_mode():
                exported = None
                try:
                    exported = torch_onnx(torch, net, x)
                except Exception as e:  # the exporter's own dependencies may be missing
                    print(f"  torch.onnx.export failed for {key}: {type(e).__name__}: {e}", file=sys.stderr)
                if exported is not None:
                    theirs = Session(exported, device=device, threads=threads)
                    fns["torch_export"] = lambda theirs=theirs, x=x: theirs.run({"image": x})
                if device == "cuda":
                    net = net.cuda()
                    fns["torch_eager"] = lambda net=net, x=x: net(torch.from_numpy(x).cuda()).cpu()
                    sync = torch.cuda.synchronize
                else:
                    tx = torch.from_numpy(x)
                    fns["torch_eager"] = lambda net=net, tx=tx: net(tx)
                med = median_ms(fns, reps if not key.startswith("resnet") else max(3, reps // 3), sync=sync)
        except Exception as e:
            rows.append({"device": device, "model": key, "error": f"{type(e).__name__}: {e}"})
            traceback.print_exc()
            continue
        row = {
            "device": device,
            "model": key,
            "batch": batch,
            "nngraph_ms": med["nngraph"],
            "torch_eager_ms": med["torch_eager"],
            "ratio_vs_eager": med["nngraph"] / med["torch_eager"],
            "torch_export_ms": med.get("torch_export"),
            "ratio_vs_export": med["nngraph"] / med["torch_export"] if "torch_export" in med else None,
        }
        rows.append(row)
        print(
            f"  infer {key} {device}: vs eager {row['ratio_vs_eager']:.2f}"
            + (f", vs export {row['ratio_vs_export']:.2f}" if row["ratio_vs_export"] else ""),
            file=sys.stderr,
            flush=True,
        )
    return rows


# ---- the run ------------------------------------------------------------------------------------


def cuda_present(torch) -> bool:
    """CUDA rows only where onnxruntime's CUDA provider really starts and PyTorch sees a GPU."""
    if torch is None or not torch.cuda.is_available():
        return False
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    src = "model P {\n input x: f32[batch, 4]\n output y = x | dense(2)\n}"
    try:
        return Session(ng.compile_source(src).to_onnx().SerializeToString(), device="auto").device == "cuda"
    except Exception:
        return False


def fmt(v: Any, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def table(res: dict) -> str:
    lines = ["| benchmark | device | result | target | met |", "|---|---|---|---|---|"]
    for r in res["compile_depth"]:
        lines.append(
            f"| compile MLP, {r['layers']} dense layers | cpu | {r['seconds']:.3f} s ({r['ms_per_layer']:.2f} ms/layer) | | |"
        )
    lin = res["compile_linear"]
    lines.append(
        f"| compile time per layer, {lin['to']} vs {lin['from']} layers | cpu | {lin['per_layer_growth']:.2f}x "
        f"| about linear (<= 2x) | {'yes' if lin['linear'] else 'NO'} |"
    )
    r50 = res["resnet50_compile"]
    lines.append(
        f"| compile ResNet-50 ({r50['params']:,} params) | cpu | {r50['seconds']:.3f} s | < 2 s | {'yes' if r50['met'] else 'NO'} |"
    )
    st = r50.get("stages_s", {})
    if "error" not in st and st:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in st.items())
        lines.append(f"| ResNet-50 compile stages (s) | cpu | {parts} | | |")
    for r in res["train"]:
        if "error" in r:
            lines.append(
                f"| train step {r['model']} vs torch eager | {r['device']} | error: {r['error']} | | |"
            )
            continue
        lines.append(
            f"| train step {r['model']} (batch {r['batch']}) vs torch eager | {r['device']} | "
            f"{r['nngraph_ms']:.2f} / {r['torch_ms']:.2f} ms = {r['ratio']:.2f} | <= {r['target']} | "
            f"{'yes' if r['met'] else 'NO'} |"
        )
    for r in res["inference"]:
        if "error" in r:
            lines.append(f"| inference {r['model']} | {r['device']} | error: {r['error']} | | |")
            continue
        lines.append(
            f"| inference {r['model']} (batch {r['batch']}) vs torch eager | {r['device']} | "
            f"{r['nngraph_ms']:.3f} / {r['torch_eager_ms']:.3f} ms = {r['ratio_vs_eager']:.2f} | | |"
        )
        lines.append(
            f"| inference {r['model']} (batch {r['batch']}) vs torch.onnx.export in onnxruntime | {r['device']} | "
            f"{fmt(r['nngraph_ms'], '.3f')} / {fmt(r['torch_export_ms'], '.3f')} ms = {fmt(r['ratio_vs_export'])} "
            f"| <= 1.0 | {'n/a' if r['ratio_vs_export'] is None else ('yes' if r['ratio_vs_export'] <= 1.0 else 'NO')} |"
        )
    for part, mib in res["peak_memory_mib"].items():
        lines.append(f"| peak memory (maxrss) after {part} | | {mib:.0f} MiB | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer depths and repetitions")
    ap.add_argument("--threads", type=int, default=2, help="threads on every side (default 2)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--no-torch", action="store_true", help="skip everything that compares with PyTorch")
    args = ap.parse_args(argv)
    start, cpu_before = time.perf_counter(), cpu_seconds()
    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
            torch.manual_seed(0)
        except ImportError:
            print(
                "PyTorch is not installed: the comparisons are skipped (pip install torch)", file=sys.stderr
            )
    cuda = cuda_present(torch)
    depths = [10, 100, 300] if args.quick else [10, 100, 1000]
    res: dict[str, Any] = {"peak_memory_mib": {}}
    mem = res["peak_memory_mib"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("compile time vs depth", file=sys.stderr, flush=True)
        res["compile_depth"] = bench_depth(depths, 1 if args.quick else 3, tmp)
        res["compile_linear"] = linear_verdict(res["compile_depth"])
        mem["compile vs depth"] = peak_mib()
        res["resnet50_compile"] = bench_resnet50(1 if args.quick else 3, tmp)
        mem["ResNet-50 compile"] = peak_mib()
    res["train"], res["inference"] = [], []
    if torch is not None:
        steps, warmup = (5, 2) if args.quick else (30, 5)
        res["train"] += bench_train_cpu(torch, steps, warmup, args.threads)
        if cuda:
            res["train"] += bench_train_cuda(torch, steps * 2, warmup)
        mem["train step"] = peak_mib()
        keys = ["digits_mlp", "digits_cnn"] + ([] if args.quick else ["resnet18", "resnet50"])
        reps = 6 if args.quick else 30
        res["inference"] += bench_infer(torch, keys, "cpu", reps, args.threads)
        if cuda:
            res["inference"] += bench_infer(torch, keys, "cuda", reps * 2, args.threads)
        mem["inference"] = peak_mib()
    res["machine"] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "torch": torch.__version__ if torch is not None else None,
        "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "nngraph": ng.__version__,
    }
    res["quick"] = args.quick
    res["seconds"] = time.perf_counter() - start
    cpu_after = cpu_seconds()
    # the share of the machine other processes took meanwhile: they skew every timing (PyTorch's
    # OpenMP threads far more than onnxruntime's), so say so next to the figures
    res["other_processes_cpu_share"] = others_share(cpu_before, cpu_after, res["seconds"])
    m = res["machine"]
    print(
        f"\nnngraph {m['nngraph']}, onnxruntime {m['onnxruntime']}, torch {m['torch']}; {m['machine']}, "
        f"{m['cpu_count']} cores, {args.threads} threads per side"
        + (f", GPU {m['gpu']}" if cuda else ", no CUDA")
        + ("; --quick" if args.quick else "")
        + f"; {res['seconds']:.0f} s in all"
    )
    share = res["other_processes_cpu_share"]
    if share is not None:
        verdict = "quiet enough" if share < 0.1 else "NOISY: rerun on a quiet machine"
        print(f"other processes used {share:.0%} of the {os.cpu_count()} cores during the run ({verdict})")
    print()
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
