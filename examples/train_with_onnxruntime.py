"""Train the digits MLP with bare onnxruntime and numpy: no nngraph import.

nngraph compile examples/digits_mlp.nn --train -o step.onnx     # also writes step.npz
python examples/train_with_onnxruntime.py step.onnx step.npz nngraph/data/digits.npz
"""

import json
import sys

import numpy as np
import onnxruntime as ort

step_model, initial, data = sys.argv[1:4]
sess = ort.InferenceSession(step_model, providers=["CPUExecutionProvider"])
iface = json.loads(sess.get_modelmeta().custom_metadata_map["nngraph_training"])
state = {k: v for k, v in np.load(initial).items() if not k.startswith("__")}
with np.load(data) as d:
    X, y = (d["images"].reshape(len(d["images"]), -1) / 16).astype(np.float32), d["labels"]
rng, names, batch = np.random.default_rng(0), [o.name for o in sess.get_outputs()], 32
for step in range(1, 401):
    i = rng.integers(0, len(X), batch)
    feeds = {"image": X[i], "label": y[i], "lr": np.array(0.05, np.float32), "step": np.array(step), **state}
    # dropout: fresh uniform noise each step; this model's only symbolic noise dim is the batch
    # (a model with others, e.g. seq or batch*32 after a flatten, sizes each from its inputs)
    for name, (_, shape) in iface["noise"].items():
        feeds[name] = rng.random([batch if isinstance(s, str) else s for s in shape], dtype=np.float32)
    out = dict(zip(names, sess.run(None, feeds), strict=True))
    state = {k.removeprefix("next/"): v for k, v in out.items() if k.startswith("next/")}
    if step % 100 == 0:
        print(f"step {step}: loss {out['loss']:.4f}  accuracy {out['accuracy']:.3f}")
print(json.dumps({"loss": float(out["loss"]), "nngraph_imported": "nngraph" in sys.modules}))
