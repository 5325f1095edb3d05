"""embedding of issue 15 (item 8) against torch.nn.Embedding with the same table: padding_idx (its
row starts at zero, as torch initialises it, and takes no gradient from the lookup, while a dense
tied to the table still trains it), and tables in the model's float dtype (an f64 model mixed an
f32 table into its f64 inputs and failed with "dtype mismatch"). Forward and every gradient, run
in onnxruntime and checked against the NumPy reference evaluation."""

from __future__ import annotations

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

NUM, DIM = 7, 4
IDS = np.array([[0, 2, 2, 6], [1, 6, 3, 2], [5, 5, 0, 4]], np.int64)  # the padding rows repeat


def forward_and_grads(src: str, feeds: dict[str, np.ndarray], dtype: str = "f32"):
    """loss = sum(y * r): (params, outputs and gradients, r) from onnxruntime, which the NumPy
    reference evaluation must agree with."""
    g = ng.compile_source(src).graph
    y = g.outputs["y"]
    yt = g.type(y)
    assert yt.dtype == dtype
    r = np.random.default_rng(1).standard_normal([IDS.shape[0], *yt.shape[1:]]).astype(yt.np_dtype)
    rn = g.add("r", "input", [], yt, None)
    prod = g.add("prod", "mul", [y, rn], yt, None, {})
    loss = g.add("loss", "reduce_sum", [prod], TensorType(dtype, ()), None, {"axes": None, "keepdims": 0})
    params = g.params(trainable=True)
    wrt = params + [i for i in g.inputs if g.type(i).dtype == dtype]
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
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=f"ORT vs NumPy: {k}")
    return values, got, r


def close(a, b, tol, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("pad", [2, -1, 0])
def test_padding_idx_matches_torch(pad):
    src = f"model M {{\n    input ids: i64[batch, 4]\n    output y = ids | embedding({NUM}, {DIM}, padding_idx={pad})\n}}"
    values, got, r = forward_and_grads(src, {"ids": IDS})
    table = values["embedding_1.table"]
    emb = torch.nn.Embedding(NUM, DIM, padding_idx=pad)
    row = pad % NUM
    close(table[row], emb.weight.detach().numpy()[row], 0, "the padding row starts at zero, as torch's")
    assert np.abs(np.delete(table, row, axis=0)).min() > 0  # the other rows are drawn
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(table))
    out = emb(torch.tensor(IDS))
    close(got["y"], out.detach().numpy(), 1e-6, "forward")
    (out * torch.tensor(r)).sum().backward()
    close(got["grad/embedding_1.table"], emb.weight.grad.numpy(), 1e-5, "d/dtable")
    assert not got["grad/embedding_1.table"][row].any()


def test_a_dense_tied_to_a_padded_table_trains_the_padding_row_as_in_torch():
    src = f"""model M {{
    input ids: i64[batch, 4]
    emb = embedding({NUM}, {DIM}, padding_idx=2)
    output y = ids | emb | dense({NUM}, tie=emb, bias=false)
}}"""
    values, got, r = forward_and_grads(src, {"ids": IDS})
    emb = torch.nn.Embedding(NUM, DIM, padding_idx=2)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(values["emb.table"]))
    out = emb(torch.tensor(IDS)) @ emb.weight.T
    close(got["y"], out.detach().numpy(), 1e-5, "forward")
    (out * torch.tensor(r)).sum().backward()
    close(got["grad/emb.table"], emb.weight.grad.numpy(), 1e-5, "d/dtable")
    assert got["grad/emb.table"][2].any()


@pytest.mark.parametrize("pad", ["", ", padding_idx=3"])
def test_an_f64_model_has_f64_tables(pad):
    """Regression: the table stayed f32 and `ids | embedding + x` of an f64 x was a dtype mismatch."""
    src = f"""model M {{
    input ids: i64[batch, 4]
    input x: f64[batch, 4, {DIM}]
    emb = embedding({NUM}, {DIM}{pad})
    h = (ids | emb) * x
    output y = h | dense({NUM}, tie=emb)
}}"""
    x = np.random.default_rng(2).standard_normal((IDS.shape[0], 4, DIM))
    values, got, r = forward_and_grads(src, {"ids": IDS, "x": x}, dtype="f64")
    assert {v.dtype for v in values.values()} == {np.dtype(np.float64)}
    emb = torch.nn.Embedding(NUM, DIM, padding_idx=3 if pad else None, dtype=torch.float64)
    lin = torch.nn.Linear(DIM, NUM, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(values["emb.table"]))
        lin.weight = emb.weight
        lin.bias.copy_(torch.tensor(values["dense_1.bias"]))
    xt = torch.tensor(x, requires_grad=True)
    out = lin(emb(torch.tensor(IDS)) * xt)
    close(got["y"], out.detach().numpy(), 1e-12, "forward")
    (out * torch.tensor(r)).sum().backward()
    close(got["grad/x"], xt.grad.numpy(), 1e-12, "d/dx")
    close(got["grad/emb.table"], emb.weight.grad.numpy(), 1e-12, "d/dtable")
    close(got["grad/dense_1.bias"], lin.bias.grad.numpy(), 1e-12, "d/dbias")


def test_tables_follow_f16_inputs_and_stay_f32_without_float_inputs():
    def table(decl: str) -> np.dtype:
        m = ng.compile_source(
            f"model M {{\n    input ids: i64[batch, 4]\n{decl}    output y = ids | embedding(5, 2)\n}}"
        )
        return m.graph.node("embedding_1.table")["value"].dtype

    assert table("") == np.float32
    assert table("    input x: f16[batch, 2]\n    output z = x\n") == np.float16


@pytest.mark.parametrize(
    "args,message",
    [
        ("padding_idx=7", r"embedding padding_idx must be within the table's 7 rows, got 7"),
        ("padding_idx=-8", r"embedding padding_idx must be within the table's 7 rows, got -8"),
        ("padding_idx=1.5", r"argument 'padding_idx' of 'embedding' must be an integer"),
        ("padding_idx=true", r"argument 'padding_idx' of 'embedding' must be an integer"),
    ],
)
def test_a_bad_padding_idx_is_reported(args, message):
    with pytest.raises(NNError, match=message):
        ng.compile_source(
            f"model M {{\n    input ids: i64[batch, 4]\n    output y = ids | embedding(7, 2, {args})\n}}"
        )
