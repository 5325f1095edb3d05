"""What the pass tests share: running a model in onnxruntime, counting its ONNX ops, a training
step's feeds, and the 1-D convolution net that two fusions' tests train."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort


def run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


def ops(model) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def step_feeds(c, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = c.graph.type("image")
    feeds = {
        "image": rng.standard_normal([batch if isinstance(d, str) else d for d in t.shape]).astype(
            np.float32
        ),
        "label": rng.integers(0, 10, batch),
        "lr": np.array(0.1, np.float32),
        "step": np.array(1),
        **c.initial,
    }
    for name, (_, shape) in c.interface.noise.items():
        feeds[name] = rng.random([batch if isinstance(d, str) else d for d in shape], dtype=np.float32)
    return feeds


def gemms(model) -> list:
    """The weight-gradient GEMMs conv_as_gemm made."""
    return [
        n for n in model.graph.node if n.op_type == "MatMul" and "conv_grad_weight/conv_as_gemm" in n.name
    ]


CONV1D_NET = """
model C1 {
    input image: f32[batch, 64]
    s = image | reshape([batch, 4, 16])
    a = s | conv1d(6, kernel=3, padding=same) | batchnorm | relu
    b = a | conv1d(6, kernel=5, stride=2, padding=2, bias=false) | batchnorm | relu | maxpool(2)
    output logits = b | flatten | dense(10)
}
train C1 {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1, momentum=0.9)
}
"""
