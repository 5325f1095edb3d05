"""Sequence layers (issue #6): rnn, lstm, gru, multi-head attention, positional encodings and the
transformer encoder block, against PyTorch with the same weights (forward to 1e-5, gradients to
1e-4), through both the NumPy reference evaluation and onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.onnx.lower import check, lower
from nngraph.ops.reference import evaluate, evaluate_nodes

torch = pytest.importorskip("torch")

B, T, F, H = 3, 5, 4, 6


def forward_and_grads(src: str, feeds: dict[str, np.ndarray], seed: int = 0):
    """Compile `src`, add loss = sum(y * r) for a fixed random r, differentiate with nngraph's
    rules and return (params, y, grads, r) from onnxruntime, after checking the NumPy reference
    evaluation of the same graph agrees."""
    m = ng.compile_source(src)
    g = m.graph
    y = g.outputs["y"]
    yt = g.type(y)
    r = np.random.default_rng(seed + 1).standard_normal([feeds[g.inputs[0]].shape[0], *yt.shape[1:]])
    r = r.astype(np.float32)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
    params = g.params(trainable=True)
    wrt = params + [i for i in g.inputs if g.type(i).dtype == "f32"]
    grads = backward(g, loss, wrt)
    values = {p: g.node(p)["value"] for p in params}
    inputs = [*g.inputs, rn]
    g.inputs = inputs
    g.outputs = {"y": y, **{f"grad/{w}": grads[w] for w in wrt}}
    g.prune()
    model = lower(g, inputs + params)
    check(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    all_feeds = {**feeds, "r": r, **values}
    got = dict(zip(g.outputs, sess.run(None, all_feeds), strict=True))
    ref = dict(zip(g.outputs, evaluate_nodes(g, all_feeds, list(g.outputs.values())), strict=True))
    for k in got:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=f"ORT vs NumPy: {k}")
    return values, got, r


def torch_grads(module, inputs: list, out, r):
    loss = (out * torch.tensor(r)).sum()
    loss.backward()
    return {n: p.grad.numpy() for n, p in module.named_parameters()}, [i.grad.numpy() for i in inputs]


def close(a, b, tol, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


# ---- recurrent layers ------------------------------------------------------------------------

TORCH_RNN = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
RNN_CASES = [
    ("lstm", 1, False, True, ""),
    ("lstm", 2, True, True, ""),
    ("lstm", 1, False, False, ""),
    ("lstm", 2, True, False, ""),
    ("gru", 1, False, True, ""),
    ("gru", 2, True, True, ""),
    ("gru", 1, True, False, ""),
    ("rnn", 1, False, True, ""),
    ("rnn", 2, True, False, ", nonlinearity=relu"),
    ("gru", 1, False, True, ", bias=false"),
]


@pytest.mark.parametrize("kind,layers,bidir,seqs,extra", RNN_CASES)
def test_recurrent_matches_torch(kind, layers, bidir, seqs, extra):
    src = f"""
model M {{
    input x: f32[batch, {T}, {F}]
    output y = x | {kind}({H}, layers={layers}, bidirectional={str(bidir).lower()},
                        return_sequences={str(seqs).lower()}{extra})
}}"""
    x = np.random.default_rng(0).standard_normal((B, T, F)).astype(np.float32)
    values, got, r = forward_and_grads(src, {"x": x})
    kw = {"nonlinearity": "relu"} if "relu" in extra else {}
    net = TORCH_RNN[kind](
        F, H, num_layers=layers, bidirectional=bidir, batch_first=True, bias="false" not in extra, **kw
    )
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.tensor(values[f"{kind}_1.{name}"]))
    assert len(values) == len(list(net.parameters()))
    xt = torch.tensor(x, requires_grad=True)
    out, h = net(xt)
    h = h[0] if kind == "lstm" else h
    if not seqs:
        out = torch.cat([h[-2], h[-1]], dim=-1) if bidir else h[-1]
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    pg, (xg,) = torch_grads(net, [xt], out, r)
    close(got["grad/x"], xg, 1e-4, "d/dx")
    for name, gr in pg.items():
        close(got[f"grad/{kind}_1.{name}"], gr, 1e-4, f"d/d{name}")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_initial_states(kind):
    states = "x, h0, c0" if kind == "lstm" else "x, h0"
    src = f"""
model M {{
    input x: f32[batch, {T}, {F}]
    input h0: f32[2, batch, {H}]
    {"input c0: f32[2, batch, " + str(H) + "]" if kind == "lstm" else ""}
    output y = {kind}({states}, hidden={H}, layers=2)
}}"""
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((B, T, F)), "h0": rng.standard_normal((2, B, H))}
    if kind == "lstm":
        feeds["c0"] = rng.standard_normal((2, B, H))
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    values, got, r = forward_and_grads(src, feeds)
    net = TORCH_RNN[kind](F, H, num_layers=2, batch_first=True)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.tensor(values[f"{kind}_1.{name}"]))
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in feeds.items()}
    hx = (ts["h0"], ts["c0"]) if kind == "lstm" else ts["h0"]
    out, _ = net(ts["x"], hx)
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    pg, grads = torch_grads(net, list(ts.values()), out, r)
    for name, gr in zip(ts, grads, strict=True):
        close(got[f"grad/{name}"], gr, 1e-4, f"d/d{name}")
    for name, gr in pg.items():
        close(got[f"grad/{kind}_1.{name}"], gr, 1e-4, f"d/d{name}")


def test_recurrent_errors():
    with pytest.raises(NNError, match="batch, seq, features"):
        ng.compile_source("model M {\n input x: f32[batch, 64]\n output y = x | gru(8)\n}\n")
    with pytest.raises(NNError, match="initial states"):
        ng.compile_source(
            "model M {\n input x: f32[batch, seq, 4]\n input h: f32[1, batch, 8]\n output y = gru(x, h, hidden=8)\n}\n"
        )
    train = 'train M {\n data = npz("d.npz")\n target t: f32[batch, seq, 8]\n loss = mse(y, t)\n optimizer = sgd(lr=0.1)\n}\n'
    m = ng.compile_source("model M {\n input x: f32[batch, seq, 4]\n output y = x | lstm(8)\n}\n" + train)
    with pytest.raises(NNError, match="needs a fixed sequence length"):
        m.training("grads")


@pytest.mark.parametrize(
    "kind,args",
    [
        ("lstm", "layers=2, bidirectional=true"),
        ("gru", "return_sequences=false, bidirectional=true"),
        ("rnn", "nonlinearity=relu"),
    ],
)
def test_recurrent_runs_on_any_length(kind, args, tmp_path):
    """A symbolic length lowers to ONNX's LSTM/GRU/RNN; with the same (seeded) weights it matches the
    unrolled graph at every fixed length, in onnxruntime and in the NumPy reference."""
    src = "model M {{\n input x: f32[batch, {n}, 4]\n output y = x | " + f"{kind}(6, {args})" + "\n}}\n"
    fused = ng.compile_source(src.format(n="seq"))
    assert "recurrent" in {fused.graph.node(n)["op"] for n in fused.graph.g}
    onnx_ops = {node.op_type for node in fused.onnx.graph.node}
    assert kind.upper() in onnx_ops
    sess = ng.runtime.Session(fused.save(tmp_path / "fused.onnx"))
    for n in (1, 3, 9):
        unrolled = ng.compile_source(src.format(n=n))
        for p in unrolled.graph.params():
            np.testing.assert_array_equal(unrolled.graph.node(p)["value"], fused.graph.node(p)["value"])
        x = np.random.default_rng(n).standard_normal((2, n, 4)).astype(np.float32)
        want = ng.runtime.Session(unrolled.save(tmp_path / f"u{n}.onnx"))(x=x)["y"]
        close(sess(x=x)["y"], want, 1e-5, f"length {n}")
        close(evaluate(fused.graph, {"x": x})["y"], want, 1e-5, f"NumPy, length {n}")


# ---- attention -------------------------------------------------------------------------------

E, HEADS = 8, 2


def _mha(values, prefix=""):
    mha = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(values[f"{prefix}in_proj_weight"]))
        mha.in_proj_bias.copy_(torch.tensor(values[f"{prefix}in_proj_bias"]))
        mha.out_proj.weight.copy_(torch.tensor(values[f"{prefix}out_proj_weight"]))
        mha.out_proj.bias.copy_(torch.tensor(values[f"{prefix}out_proj_bias"]))
    return mha


TORCH_MHA_NAMES = {
    "in_proj_weight": "in_proj_weight",
    "in_proj_bias": "in_proj_bias",
    "out_proj.weight": "out_proj_weight",
    "out_proj.bias": "out_proj_bias",
}


@pytest.mark.parametrize("causal,padded", [(False, False), (True, False), (False, True), (True, True)])
def test_attention_matches_torch(causal, padded):
    mask_decl = f"\n    input keep: f32[batch, {T}]" if padded else ""
    call = "attention(x, keep" if padded else "attention(x"
    src = f"""
model M {{
    input x: f32[batch, {T}, {E}]{mask_decl}
    output y = {call}, heads={HEADS}, causal={str(causal).lower()})
}}"""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, E)).astype(np.float32)
    feeds = {"x": x}
    keep = np.ones((B, T), np.float32)
    keep[0, -2:] = 0
    keep[2, -1] = 0
    if padded:
        feeds["keep"] = keep
    values, got, r = forward_and_grads(src, feeds)
    values = {k.split(".", 1)[1]: v for k, v in values.items()}
    mha = _mha(values)
    xt = torch.tensor(x, requires_grad=True)
    kw = {}
    if causal:
        kw["attn_mask"] = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    if padded:
        kw["key_padding_mask"] = torch.tensor(keep == 0)
    out, _ = mha(xt, xt, xt, need_weights=False, **kw)
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    pg, (xg,) = torch_grads(mha, [xt], out, r)
    close(got["grad/x"], xg, 1e-4, "d/dx")
    for name, gr in pg.items():
        close(got[f"grad/attention_1.{TORCH_MHA_NAMES[name]}"], gr, 1e-4, f"d/d{name}")


def test_attention_runs_on_any_length(tmp_path):
    src = "model M {\n input x: f32[batch, seq, 8]\n output y = x | positional | attention(heads=2, causal=true)\n}\n"
    m = ng.compile_source(src)
    sess = ng.runtime.Session(m.save(tmp_path / "a.onnx"))
    values = {p: m.graph.node(p)["value"] for p in m.graph.params()}
    mha = _mha({k.split(".", 1)[1]: v for k, v in values.items()})
    for n in (1, 4, 11):
        x = np.random.default_rng(n).standard_normal((2, n, 8)).astype(np.float32)
        got = sess(x=x)["y"]
        pe = sinusoid_table(n, 8)
        xt = torch.tensor(x + pe)
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
        want, _ = mha(xt, xt, xt, attn_mask=mask, need_weights=False)
        close(got, want.detach().numpy(), 1e-5, f"length {n}")


def sinusoid_table(n: int, e: int) -> np.ndarray:
    """The positional encoding of PyTorch's transformer tutorial."""
    pos = np.arange(n)[:, None]
    div = np.exp(np.arange(0, e, 2) * (-np.log(10000.0) / e))
    pe = np.zeros((n, e))
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)
    return pe.astype(np.float32)


def test_positional_encodings():
    src = f"""
model M {{
    input x: f32[batch, {T}, {E}]
    output y = x | positional(learned, max_len=16, init=normal) | positional
}}"""
    x = np.random.default_rng(6).standard_normal((B, T, E)).astype(np.float32)
    values, got, r = forward_and_grads(src, {"x": x})
    table = values["positional_1.table"]
    close(got["y"], x + table[:T] + sinusoid_table(T, E), 1e-5, "forward")
    want = np.zeros_like(table)
    want[:T] = r.sum(0)
    close(got["grad/positional_1.table"], want, 1e-4, "d/dtable")
    close(got["grad/x"], r, 1e-5, "d/dx")


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_matches_torch(norm_first, activation):
    src = f"""
model M {{
    input x: f32[batch, {T}, {E}]
    output y = x | transformer_encoder(heads={HEADS}, ff=16, dropout=0.1, activation={activation},
                                       norm_first={str(norm_first).lower()})
}}"""
    x = np.random.default_rng(7).standard_normal((B, T, E)).astype(np.float32)
    values, got, r = forward_and_grads(src, {"x": x})
    enc = torch.nn.TransformerEncoderLayer(
        E, HEADS, 16, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    rename = {
        **{f"self_attn.{k}": f"self_attn.{v}" for k, v in TORCH_MHA_NAMES.items()},
        "linear1.weight": "linear1.weight",
        "linear1.bias": "linear1.bias",
        "linear2.weight": "linear2.weight",
        "linear2.bias": "linear2.bias",
        "norm1.weight": "norm1.scale",
        "norm1.bias": "norm1.bias",
        "norm2.weight": "norm2.scale",
        "norm2.bias": "norm2.bias",
    }
    with torch.no_grad():
        for name, p in enc.named_parameters():
            p.copy_(torch.tensor(values[f"transformer_encoder_1.{rename[name]}"]))
    enc.eval()
    xt = torch.tensor(x, requires_grad=True)
    out = enc(xt)
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    pg, (xg,) = torch_grads(enc, [xt], out, r)
    close(got["grad/x"], xg, 1e-4, "d/dx")
    for name, gr in pg.items():
        close(got[f"grad/transformer_encoder_1.{rename[name]}"], gr, 1e-4, f"d/d{name}")
