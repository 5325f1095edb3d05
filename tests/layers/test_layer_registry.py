"""The layer registry: each family module registers its layers, every layer the language
reference names exists, the registry is whole whichever module is imported first, and a layer
defined outside nngraph composes built-in layers with `ctx.call`."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT

import nngraph
from nngraph.layers import all_layers, layer, lookup
from nngraph.layers.args import A
from nngraph.layers.losses import LOSSES
from nngraph.layers.metrics import METRICS
from nngraph.layers.registry import LAYERS

GRAMMAR = (ROOT / "grammar" / "README.md").read_text(encoding="utf-8")

FAMILIES = {
    "activation": ["prelu"],
    "dense": ["dense"],
    "conv": ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"],
    "pool": ["maxpool", "maxpool1d", "maxpool2d", "avgpool", "avgpool1d", "avgpool2d"],
    "norm": ["batchnorm", "layernorm", "rmsnorm", "groupnorm", "instancenorm"],
    "embedding": ["embedding"],
    "regularize": ["dropout", "dropout2d", "alpha_dropout"],
    "shape": ["reshape"],
    "steps": ["last_step", "mean_steps"],
    "recurrent": ["rnn", "lstm", "gru"],
    "attention": ["attention", "transformer_encoder", "transformer_decoder"],
    "positional": ["positional"],
    "losses": [*LOSSES, "cosine_similarity"],
    "metrics": list(METRICS),
    "primitives": ["relu", "gelu", "softmax", "flatten", "concat", "slice", "transpose", "global_avgpool"],
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_registers_its_layers(family):
    layers = all_layers()
    for name in FAMILIES[family]:
        assert name in layers, f"nngraph/layers/{family}.py should register '{name}'"
        assert layers[name].build.__module__ == f"nngraph.layers.{family}", name
        assert lookup(name) is layers[name]
    assert lookup("no_such_layer") is None


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## +(.+?)[ \t]*$", text, flags=re.M)
    return {title: body.split("```")[0] for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def documented_layers() -> set[str]:
    """Every layer grammar/README.md names: the built-in table's first column, the sequence
    layers, and the losses and metrics of train sections."""
    s = _sections(GRAMMAR)
    names: set[str] = set()
    for row in re.findall(r"^\| *(`.*?) *\|", s["Built-in layers"], flags=re.M):
        names |= set(re.findall(r"`(\w+)`", row))
    # code spans there that name parameters or dims, not layers
    not_layers = {"hidden", "seq", "emb", "weight_ih_l0", "bias_hh_l0_reverse", "key_padding_mask"}
    not_layers |= {"memory", "kdim", "vdim", "attn_mask", "in_proj_bias", "out_proj_bias", "tgt_is_causal"}
    for span in re.findall(r"`([^`]+)`", s["Sequence layers"]):
        m = re.fullmatch(r"(\w+)(\(.*\))?", span, flags=re.S)
        if m and m[1] not in not_layers:
            names.add(m[1])
    train = s["Train sections"]
    for field in ("loss", "metrics"):
        listed = re.search(rf"`{field}` \((.*?)\),", train, flags=re.S)
        assert listed, f"the Train sections paragraph should list the {field} layers"
        names |= set(re.findall(r"`(\w+)", listed[1]))
    return names


def test_every_layer_in_the_language_reference_is_registered():
    named = documented_layers()
    assert {"dense", "conv2d", "relu", "lstm", "transformer_encoder", "last_step", "huber", "mae"} <= named
    missing = sorted(named - set(all_layers()))
    assert not missing, f"grammar/README.md names layers that nngraph does not register: {missing}"


def test_train_section_lists_match_the_loss_and_metric_families():
    s = _sections(GRAMMAR)["Train sections"]
    metrics = re.search(r"`metrics` \((.*?)\),", s, flags=re.S)[1]
    assert re.findall(r"`(\w+)", metrics) == list(METRICS)
    loss = re.search(r"`loss` \((.*?)\), `optimizer`", s, flags=re.S)[1]
    assert re.findall(r"`(\w+)", loss) == list(LOSSES)


@pytest.mark.parametrize("first", ["nngraph.layers.metrics", "nngraph.frontend.binding"])
def test_the_registry_is_whole_whichever_module_comes_first(first):
    code = f"import {first}; from nngraph.layers.registry import LAYERS; print(len(LAYERS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert int(out.stdout) == len(all_layers())


# ---- a layer that composes two built-in layers -----------------------------------------------


@pytest.fixture
def dense_norm():
    """`dense_norm(units, eps)`: dense then layernorm, each built with ctx.call."""

    @layer("dense_norm", [A("units", "int", required=True), A("eps", "float", 1e-5, limit="> 0")])
    def build(ctx, xs, a):
        h = ctx.call("dense", xs, name="proj", units=a["units"])
        return ctx.call("layernorm", [h], name="norm", eps=a["eps"])

    yield "dense_norm"
    del LAYERS["dense_norm"]


SOURCE = """
model M {
    input x: f32[batch, 6]
    output y = x | dense_norm(4, eps=1e-3) | relu
}
"""


def test_a_composed_layer_compiles_names_its_parameters_and_matches_numpy(dense_norm):
    m = nngraph.compile_source(SOURCE, "m.nn")
    g = m.graph
    assert g.params() == [
        "dense_norm_1.proj.weight",
        "dense_norm_1.proj.bias",
        "dense_norm_1.norm.scale",
        "dense_norm_1.norm.bias",
    ]
    assert [g.type(p).shape for p in g.params()] == [(6, 4), (4,), (4,), (4,)]
    assert m.param_count == 6 * 4 + 4 + 4 + 4
    # the nodes are the composed layers' own, inside the composite's instance
    ops = [g.node(n)["op"] for n in g.topo() if g.node(n).get("scope") == "dense_norm_1"]
    assert [o for o in ops if o not in ("param", "const")] == ["matmul", "add", "layernorm"]

    value = {p: g.node(p)["value"] for p in g.params()}
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    h = x @ value["dense_norm_1.proj.weight"] + value["dense_norm_1.proj.bias"]
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    norm = (h - mu) / np.sqrt(var + 1e-3) * value["dense_norm_1.norm.scale"] + value["dense_norm_1.norm.bias"]
    want = np.maximum(norm, 0)

    sess = ort.InferenceSession(m.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_ctx_call_rejects_unknown_and_missing_arguments(dense_norm):
    @layer("bad_call", [])
    def bad(ctx, xs, a):
        return ctx.call("dense", xs, name="proj")  # units is required

    try:
        with pytest.raises(TypeError, match="needs argument 'units'"):
            nngraph.compile_source("model M { input x: f32[2, 3]\n output y = x | bad_call }", "m.nn")
    finally:
        del LAYERS["bad_call"]
