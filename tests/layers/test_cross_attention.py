"""Attention of issue 15 (item 6) against PyTorch with the same weights, forward to 1e-5 and every
gradient to 1e-4 in f32 (the queries', the keys' and values' or memory's, an additive mask's and
every parameter's), run in onnxruntime and checked against the NumPy reference evaluation:
cross-attention (keys and values from another tensor of its own length), torch's kdim/vdim,
bias=false, an additive float mask, and transformer_decoder against
torch.nn.TransformerDecoderLayer (batch_first, eval mode) both ways of norm_first."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.autodiff.backward import backward
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.onnx.lower import check, lower
from nngraph.ops.reference import evaluate_nodes

torch = pytest.importorskip("torch")

B, L, S, E, HEADS = 3, 4, 6, 8, 2


def forward_and_grads(src: str, feeds: dict[str, np.ndarray]):
    """loss = sum(y * r) for a fixed random r: (params, outputs and gradients, r) from onnxruntime,
    which the NumPy reference evaluation of the same graph must agree with."""
    g = ng.compile_source(src).graph
    y = g.outputs["y"]
    yt = g.type(y)
    r = np.random.default_rng(1).standard_normal([B, *yt.shape[1:]]).astype(np.float32)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType("f32", ()), None, {"axes": None, "keepdims": 0})
    params = g.params(trainable=True)
    wrt = params + [i for i in g.inputs if g.type(i).dtype == "f32"]
    grads = backward(g, loss, wrt)
    values = {p: g.node(p)["value"] for p in params}
    g.inputs = [*g.inputs, rn]
    g.outputs = {"y": y, **{f"grad/{w}": grads[w] for w in wrt}}
    g.prune()
    model = lower(g, g.inputs + params)
    check(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    all_feeds = {**feeds, "r": r, **values}
    got = dict(zip(g.outputs, sess.run(None, all_feeds), strict=True))
    ref = dict(zip(g.outputs, evaluate_nodes(g, all_feeds, list(g.outputs.values())), strict=True))
    for k in got:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=f"ORT vs NumPy: {k}")
    return values, got, r


def close(a, b, tol, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tensor(a):
    return torch.tensor(a, requires_grad=True)


# torch's parameter name -> nngraph's, for one MultiheadAttention
MHA_NAMES = {
    "in_proj_weight": "in_proj_weight",
    "in_proj_bias": "in_proj_bias",
    "q_proj_weight": "q_proj_weight",
    "k_proj_weight": "k_proj_weight",
    "v_proj_weight": "v_proj_weight",
    "out_proj.weight": "out_proj_weight",
    "out_proj.bias": "out_proj_bias",
}


def load(module, values: dict, prefix: str, names: dict) -> None:
    """Copy nngraph's initial parameters into `module`; both must have the same set."""
    assert len(list(module.named_parameters())) == len(values)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.tensor(values[f"{prefix}{names[name]}"]))


def compare(module, got, out, r, inputs: dict, prefix: str, names: dict) -> None:
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    (out * torch.tensor(r)).sum().backward()
    for name, t in inputs.items():
        close(got[f"grad/{name}"], t.grad.numpy(), 1e-4, f"d/d{name}")
    for name, p in module.named_parameters():
        close(got[f"grad/{prefix}{names[name]}"], p.grad.numpy(), 1e-4, f"d/d{name}")


def keep_mask(n: int) -> np.ndarray:
    keep = np.ones((B, n), np.float32)
    keep[0, -2:] = 0
    keep[2, 0] = 0
    return keep


@pytest.mark.parametrize("causal,padded", [(False, False), (True, False), (False, True)])
def test_cross_attention_over_memory_matches_torch(causal, padded):
    decl = f"\n    input keep: f32[batch, {S}]" if padded else ""
    more = ", keep" if padded else ""
    src = f"""model M {{
    input x: f32[batch, {L}, {E}]
    input mem: f32[batch, {S}, {E}]{decl}
    output y = x | attention(mem{more}, heads={HEADS}, causal={str(causal).lower()})
}}"""
    x, mem = randn(B, L, E), randn(B, S, E, seed=1)
    feeds = {"x": x, "mem": mem} | ({"keep": keep_mask(S)} if padded else {})
    values, got, r = forward_and_grads(src, feeds)
    mha = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    load(mha, values, "attention_1.", MHA_NAMES)
    xt, mt = tensor(x), tensor(mem)
    kw = {}
    if causal:
        kw["attn_mask"] = torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=1)
    if padded:
        kw["key_padding_mask"] = torch.tensor(feeds["keep"] == 0)
    out, _ = mha(xt, mt, mt, need_weights=False, **kw)
    compare(mha, got, out, r, {"x": xt, "mem": mt}, "attention_1.", MHA_NAMES)


@pytest.mark.parametrize("kdim,vdim,bias", [(6, 5, False), (6, 5, True), (E, E, False), (E, 3, True)])
def test_keys_and_values_of_their_own_widths_match_torch_kdim_vdim(kdim, vdim, bias):
    src = f"""model M {{
    input x: f32[batch, {L}, {E}]
    input k: f32[batch, {S}, {kdim}]
    input v: f32[batch, {S}, {vdim}]
    output y = attention(x, k, v, heads={HEADS}, bias={str(bias).lower()})
}}"""
    x, k, v = randn(B, L, E), randn(B, S, kdim, seed=1), randn(B, S, vdim, seed=2)
    values, got, r = forward_and_grads(src, {"x": x, "k": k, "v": v})
    mha = torch.nn.MultiheadAttention(E, HEADS, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    load(mha, values, "attention_1.", MHA_NAMES)
    xt, kt, vt = tensor(x), tensor(k), tensor(v)
    out, _ = mha(xt, kt, vt, need_weights=False)
    compare(mha, got, out, r, {"x": xt, "k": kt, "v": vt}, "attention_1.", MHA_NAMES)


def test_self_attention_without_bias_matches_torch():
    src = f"""model M {{
    input x: f32[batch, {L}, {E}]
    output y = x | attention(heads={HEADS}, bias=false, causal=true)
}}"""
    x = randn(B, L, E)
    values, got, r = forward_and_grads(src, {"x": x})
    assert not any("bias" in name for name in values)
    mha = torch.nn.MultiheadAttention(E, HEADS, bias=False, batch_first=True)
    load(mha, values, "attention_1.", MHA_NAMES)
    xt = tensor(x)
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    out, _ = mha(xt, xt, xt, need_weights=False, attn_mask=mask)
    compare(mha, got, out, r, {"x": xt}, "attention_1.", MHA_NAMES)


@pytest.mark.parametrize("shape", ["2d", "3d", "3d_broadcast"])
def test_an_additive_float_mask_matches_torch_attn_mask(shape):
    """The mask and its gradient: torch's float attn_mask [L, S] or [batch * heads, L, S]."""
    dims = {"2d": f"{L}, {S}", "3d": f"batch, {L}, {S}", "3d_broadcast": f"batch, 1, {S}"}[shape]
    src = f"""model M {{
    input x: f32[batch, {L}, {E}]
    input mem: f32[batch, {S}, {E}]
    input bias: f32[{dims}]
    output y = attention(x, mem, bias, heads={HEADS}, mask=additive, causal=true)
}}"""
    mshape = {"2d": (L, S), "3d": (B, L, S), "3d_broadcast": (B, 1, S)}[shape]
    x, mem, bias = randn(B, L, E), randn(B, S, E, seed=1), randn(*mshape, seed=2)
    bias.flat[::5] = -1e9  # masked entries, as a user writes them
    values, got, r = forward_and_grads(src, {"x": x, "mem": mem, "bias": bias})
    mha = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    load(mha, values, "attention_1.", MHA_NAMES)
    xt, mt, bt = tensor(x), tensor(mem), tensor(bias)
    causal = torch.triu(torch.full((L, S), float("-inf")), diagonal=1)
    m = bt + causal
    if m.dim() == 3:
        m = m.expand(B, L, S).repeat_interleave(HEADS, dim=0)
    out, _ = mha(xt, mt, mt, need_weights=False, attn_mask=m)
    compare(mha, got, out, r, {"x": xt, "mem": mt, "bias": bt}, "attention_1.", MHA_NAMES)


DECODER_NAMES = {
    **{f"{a}.{k}": f"{a}.{v}" for a in ("self_attn", "multihead_attn") for k, v in MHA_NAMES.items()},
    **{f"linear{i}.{p}": f"linear{i}.{p}" for i in (1, 2) for p in ("weight", "bias")},
    **{f"norm{i}.weight": f"norm{i}.scale" for i in (1, 2, 3)},
    **{f"norm{i}.bias": f"norm{i}.bias" for i in (1, 2, 3)},
}


@pytest.mark.parametrize(
    "norm_first,activation,padded", [(False, "relu", False), (True, "gelu", False), (False, "gelu", True)]
)
def test_transformer_decoder_matches_torch(norm_first, activation, padded):
    decl = f"\n    input keep: f32[batch, {S}]" if padded else ""
    more = ", keep" if padded else ""
    src = f"""model M {{
    input x: f32[batch, {L}, {E}]
    input memory: f32[batch, {S}, {E}]{decl}
    output y = x | transformer_decoder(memory{more}, heads={HEADS}, ff=16, dropout=0.1,
                                       activation={activation}, norm_first={str(norm_first).lower()})
}}"""
    x, mem = randn(B, L, E, seed=3), randn(B, S, E, seed=4)
    feeds = {"x": x, "memory": mem} | ({"keep": keep_mask(S)} if padded else {})
    values, got, r = forward_and_grads(src, feeds)
    dec = torch.nn.TransformerDecoderLayer(
        E, HEADS, 16, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first
    )
    load(dec, values, "transformer_decoder_1.", DECODER_NAMES)
    dec.eval()
    xt, mt = tensor(x), tensor(mem)
    kw = {"memory_key_padding_mask": torch.tensor(feeds["keep"] == 0)} if padded else {}
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L)
    out = dec(xt, mt, tgt_mask=causal, tgt_is_causal=True, **kw)
    compare(dec, got, out, r, {"x": xt, "memory": mt}, "transformer_decoder_1.", DECODER_NAMES)


def test_transformer_decoder_trains_with_dropout_on_any_length(tmp_path):
    """The training step builds (a dropout per sublayer and in each attention) and the inference
    model runs on lengths it was not built for."""
    src = """model M {
    input x: f32[batch, seq, 8]
    input memory: f32[batch, src, 8]
    output y = x | transformer_decoder(memory, heads=2, ff=16, norm_first=true)
}
train M {
    data = digits
    target t: f32[batch, seq, 8]
    loss = mse(y, t)
    optimizer = sgd(lr=0.1)
}
"""
    m = ng.compile_source(src)
    step = m.training("grads")
    noise = [n for n in step.graph.inputs if n.endswith("noise") or ".noise_" in n]
    assert len(noise) == 6  # 3 sublayers, 2 attentions, the feed-forward's hidden layer
    sess = ng.runtime.Session(m.save(tmp_path / "d.onnx"))
    for n, s in ((1, 2), (5, 3)):
        y = sess(x=randn(2, n, 8), memory=randn(2, s, 8, seed=1))["y"]
        assert y.shape == (2, n, 8) and np.isfinite(y).all()


def compile_error(body: str) -> str:
    with pytest.raises(NNError) as e:
        ng.compile_source("model M {\n" + body + "\n}\n")
    return str(e.value)


@pytest.mark.parametrize(
    "body,message",
    [
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[other, 6, 8]\noutput y = attention(x, m, heads=2)",
            r"attention: the keys must be f32\[batch, S, width\] like the queries f32\[batch,4,8\], got "
            r"f32\[other,6,8\]",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput k: f32[batch, 6, 8]\ninput v: f32[batch, 5, 8]\n"
            "output y = attention(x, k, v, heads=2)",
            r"attention: keys f32\[batch,6,8\] and values f32\[batch,5,8\] differ in length",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[batch, 6, 8]\noutput y = attention(x, m, m, m, heads=2)",
            r"attention takes the queries \[batch, L, E\], then keys and values",
        ),
        (
            "input x: f32[batch, 4, 8]\noutput y = attention(x, heads=2, mask=additive)",
            r"attention: mask=additive needs the mask as the last tensor",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[batch, 6, 8]\ninput b: f32[4, 5]\n"
            "output y = attention(x, m, b, heads=2, mask=additive)",
            r"the additive mask \(mask=additive, the last tensor\) must be f32\[4, 6\] or f32\[batch, 4, 6\]",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput b: f32[4, 4]\noutput y = attention(x, b, heads=2)",
            r"the padding mask must be f32\[batch, 4\] \(1 keeps a key, 0 masks it\), got f32\[4,4\](.|\n)*"
            r"needs mask=additive",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[batch, 6, 8]\noutput y = attention(x, m, heads=3)",
            r"attention: 3 heads must divide the model width 8",
        ),
        (
            "input x: f32[batch, 4, 8]\noutput y = transformer_decoder(x, heads=2)",
            r"transformer_decoder takes x, the encoder's output \(memory\) and an optional padding mask of "
            r"memory, got 1 tensor",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[batch, 6, 5]\noutput y = transformer_decoder(x, m, heads=2)",
            r"transformer_decoder: memory f32\[batch,6,5\] must have the width 8 of x",
        ),
        (
            "input x: f32[batch, 4, 8]\ninput m: f32[batch, 6, 8]\ninput k: f32[batch, 4]\n"
            "output y = transformer_decoder(x, m, k, heads=2)",
            r"transformer_decoder: the padding mask must be f32\[batch, 6\]",
        ),
    ],
)
def test_attention_input_mistakes_are_reported(body, message):
    assert re.search(message, compile_error(body)), compile_error(body)
