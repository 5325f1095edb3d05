"""`nngraph gradcheck`: the symbolic gradients of a model's loss against central finite
differences, both evaluated in float64 with the operators' NumPy references, and the
compiled ONNX gradients model against the symbolic gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from nngraph.core import dims
from nngraph.ops.reference import evaluate_nodes
from nngraph.runtime.session import ORT_ERRORS, QUIET_RUN, open_session, run_error
from nngraph.stepnames import grad_name
from nngraph.training.step import Compiled, noise_arrays


@dataclass
class Row:
    param: str
    checked: int
    max_rel_fd: float  # symbolic vs finite differences (float64)
    max_rel_onnx: float  # onnxruntime (float32) vs symbolic


def _to64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def gradcheck(c: Compiled, batch: dict[str, np.ndarray], per_param: int = 6, seed: int = 0) -> list[Row]:
    """Compare gradients on `batch` (model inputs and targets; noise is drawn here)."""
    g, iface = c.graph, c.interface
    rng = np.random.default_rng(seed)
    named = [n for n in iface.inputs + iface.targets if n in batch]
    known = dims.bind([g.type(n).shape for n in named], [batch[n] for n in named])
    feeds = {**batch, **noise_arrays(g, iface.noise, known, rng)}
    state = {p: c.initial[p] for p in iface.params + iface.buffers}
    sess = open_session(
        c.to_onnx().SerializeToString(), ort.SessionOptions(), ["CPUExecutionProvider"], quiet=False
    )
    try:
        onnx_out = dict(zip(iface.outputs, sess.run(None, {**feeds, **state}, QUIET_RUN), strict=True))
    except ORT_ERRORS as e:
        raise run_error(e, "the gradients model") from None
    f64 = {k: _to64(v) for k, v in {**feeds, **state}.items()}
    for nid in g.g:
        if g.node(nid)["op"] == "const" and nid not in f64:
            f64[nid] = _to64(g.node(nid)["value"])
    loss = g.outputs["loss"]
    grad_nodes = [g.outputs[grad_name(p)] for p in iface.params]
    symbolic = evaluate_nodes(g, f64, grad_nodes, keep_f64=True)

    def loss_at(p: str, values: np.ndarray) -> float:
        return float(evaluate_nodes(g, {**f64, p: values}, [loss], keep_f64=True)[0])

    # float32 rounding in onnxruntime is measured against the largest gradient anywhere: a bias
    # before a batchnorm has a true gradient of 0, and its ~1e-9 noise is not an error
    overall = max([float(np.abs(s).max()) for s in symbolic] + [0.0])
    rows = []
    for p, sym in zip(iface.params, symbolic, strict=True):
        base = f64[p]
        idx = rng.choice(base.size, size=min(per_param, base.size), replace=False)
        worst = 0.0
        for j in idx:
            eps = 1e-6 * max(1.0, abs(base.flat[j]))
            hi, lo = base.copy(), base.copy()
            hi.flat[j] += eps
            lo.flat[j] -= eps
            fd = (loss_at(p, hi) - loss_at(p, lo)) / (2 * eps)
            worst = max(worst, abs(sym.flat[j] - fd) / max(1e-3, abs(fd), abs(sym.flat[j])))
        scale = max(float(np.abs(sym).max()), 1e-2 * overall, 1e-6)
        onnx_err = float(np.abs(onnx_out[grad_name(p)] - sym).max() / scale)
        rows.append(Row(p, len(idx), worst, onnx_err))
    return rows
