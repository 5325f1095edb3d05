"""Issue 16, item 2: `out, (h, c) = x | lstm(..., return_state=true)` and `out, h = x | gru(...)`
give PyTorch's final states [layers*directions, batch, hidden] besides the output; forward to
1e-5 and every gradient (the input's and each parameter's, through out, h and c together) to
1e-4 against torch.nn.LSTM/GRU/RNN with the same weights."""

from __future__ import annotations

import numpy as np
import pytest
from test_sequence_layers import TORCH_RNN, close, forward_and_grads, torch_grads

import nngraph as ng

torch = pytest.importorskip("torch")

B, T, F, H = 3, 4, 3, 5

CASES = [("lstm", 1, False, True), ("lstm", 2, True, False), ("gru", 2, True, True), ("rnn", 1, False, False)]


@pytest.mark.parametrize("kind,layers,bidir,seqs", CASES)
def test_final_states_match_torch(kind, layers, bidir, seqs):
    states = "(h, c)" if kind == "lstm" else "h"
    flat = "h | transpose([1, 0, 2]) | reshape([batch, -1])"  # [batch, layers*dirs*hidden]
    cs = ", c | transpose([1, 0, 2]) | reshape([batch, -1])" if kind == "lstm" else ""
    src = f"""
model M {{
    input x: f32[batch, {T}, {F}]
    out, {states} = x | {kind}({H}, layers={layers}, bidirectional={str(bidir).lower()},
                                return_sequences={str(seqs).lower()}, return_state=true)
    output y = concat(out | reshape([batch, -1]), {flat}{cs}, axis=1)
}}"""
    x = np.random.default_rng(0).standard_normal((B, T, F)).astype(np.float32)
    values, got, r = forward_and_grads(src, {"x": x})
    net = TORCH_RNN[kind](F, H, num_layers=layers, bidirectional=bidir, batch_first=True)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.tensor(values[f"{kind}_1.{name}"]))
    xt = torch.tensor(x, requires_grad=True)
    out, state = net(xt)
    h, c = state if kind == "lstm" else (state, None)
    if not seqs:
        out = torch.cat([h[-2], h[-1]], dim=-1) if bidir else h[-1]
    parts = [out.reshape(B, -1), h.transpose(0, 1).reshape(B, -1)]
    parts += [c.transpose(0, 1).reshape(B, -1)] if c is not None else []
    want = torch.cat(parts, dim=1)
    close(got["y"], want.detach().numpy(), 1e-5, "forward")
    pg, (xg,) = torch_grads(net, [xt], want, r)
    close(got["grad/x"], xg, 1e-4, "d/dx")
    for name, gr in pg.items():
        close(got[f"grad/{kind}_1.{name}"], gr, 1e-4, f"d/d{name}")


def test_state_types_and_the_symbolic_length_case():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 6, 3]\n"
        " out, (h, c) = x | lstm(4, layers=2, bidirectional=true, return_state=true)\n"
        " output o = out\n output hn = h\n output cn = c\n}"
    )
    types = {k: str(m.graph.type(v)) for k, v in m.graph.outputs.items()}
    assert types == {"o": "f32[batch,6,8]", "hn": "f32[4,batch,4]", "cn": "f32[4,batch,4]"}
    # a symbolic length runs as one ONNX GRU node; its final h is the last step of each direction
    m = ng.compile_source(
        "model M {\n input x: f32[batch, seq, 3]\n out, h = x | gru(4, return_state=true)\n output hn = h\n}"
    )
    assert str(m.graph.type(m.graph.outputs["hn"])) == "f32[1,batch,4]"
    with pytest.raises(ng.NNError) as e:
        ng.compile_source(
            "model M {\n input x: f32[batch, seq, 3]\n out, (h, c) = x | lstm(4, return_state=true)\n"
            " output o = c\n}",
            "m.nn",
        )
    assert "final cell state" in e.value.message and e.value.span.line == 3
