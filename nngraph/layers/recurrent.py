"""rnn, lstm and gru over [batch, seq, features], with PyTorch's parameter names, layout and gate order.

Over an input with a fixed sequence length (`f32[batch, 8, 16]`) a layer unrolls over time:
each step is a handful of matmul / slice / sigmoid / tanh nodes (the cells in
nngraph/ops/recurrent.py, which are also the fused operator's decomposition), so gradients,
passes and diagrams come from those operators' records. Over a symbolic length
(`f32[batch, seq, 16]`) each layer-direction is one fused `recurrent` operator, lowered to ONNX's
LSTM / GRU / RNN, so the inference model runs on any length; training needs a fixed length. The
parameters are the same either way and follow PyTorch (`weight_ih_l0` [gates*hidden, in],
`weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `..._reverse`; LSTM gates i, f, g, o; GRU r, z, n),
so weights copy to and from `torch.nn.LSTM/GRU/RNN`, and weights trained at one length run at
any other. Between stacked layers, dropout is the dropout layer (`ctx.call`).
"""

from __future__ import annotations

from nngraph.layers.args import A
from nngraph.layers.checks import seq_input
from nngraph.layers.registry import Build, LayerCtx, layer
from nngraph.ops.recurrent import GATES, stack_steps, unroll


def _state(ctx: LayerCtx, s: str | None, index: int) -> str | None:
    """Entry `index` of an initial state [layers*directions, batch, hidden] as [batch, hidden]."""
    if s is None:
        return None
    hidden = ctx.type(s).shape[2]
    return ctx.op("reshape", [ctx.op("slice", [s], axis=0, start=index, end=index + 1)], shape=(-1, hidden))


def _recurrent(kind: str) -> Build:
    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        x = xs[0]
        n_states = 2 if kind == "lstm" else 1
        if len(xs) > 1 + n_states:
            ctx.fail(
                f"{kind} takes the sequence and at most {n_states} initial state"
                f"{'s (h0, c0)' if n_states == 2 else ' (h0)'}, got {len(xs)} tensors",
                expected=f"{kind}(x{', h0, c0' if n_states == 2 else ', h0'})",
            )
        seq, features = seq_input(ctx, x, kind, static_seq=False)
        hidden, layers, dirs = a["hidden"], a["layers"], 2 if a["bidirectional"] else 1
        if hidden < 1 or layers < 1:
            ctx.fail(f"{kind} needs hidden >= 1 and layers >= 1, got hidden={hidden}, layers={layers}")
        fused = not isinstance(seq, int)
        if fused:
            _check_fused(ctx, kind, x, len(xs) > 1, a["bias"])
        elif seq < 1:
            ctx.fail(f"{kind} needs at least one time step, got {ctx.type(x)}")
        dt = ctx.type(x).dtype
        states = list(xs[1:]) + [None] * (1 + n_states - len(xs))
        for s in states:
            if s is None:
                continue
            st = ctx.type(s)
            want = (layers * dirs, ctx.type(x).shape[0], hidden)
            if st.shape != want or st.dtype != dt:
                ctx.fail(
                    f"{kind}: an initial state must be {dt}[{', '.join(map(str, want))}] "
                    "(layers*directions, batch, hidden), as in PyTorch, got " + str(st),
                    expected=f"{dt}[{', '.join(map(str, want))}]",
                )
        h0, c0 = states[0], states[1] if n_states == 2 else None
        gates = GATES[kind] * hidden
        act = a.get("nonlinearity", "tanh")
        init = a["init"]
        inp, width = x, features
        state = a["return_state"]
        if state and fused and kind == "lstm":
            ctx.fail(
                f"lstm over a symbolic sequence length ({ctx.type(x)}) runs as one ONNX LSTM node, whose "
                "final cell state nngraph does not take out",
                expected="an input with a fixed sequence length for return_state=true, e.g. f32[batch, 8, 16]",
            )
        finals_h: list[str] = []  # the last hidden state of each layer and direction, PyTorch's order
        finals_c: list[str] = []
        for layer_i in range(layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer_i}" + ("_reverse" if d else "")
                w = {
                    # PyTorch's default draws every weight from 1/sqrt(hidden); he/xavier use the
                    # matrix's own fan-in, the input width
                    "w_ih": ctx.param(
                        f"weight_ih{sfx}",
                        (gates, width),
                        init,
                        hidden if init == "default" else width,
                        gates,
                        like=x,
                    ),
                    "w_hh": ctx.param(f"weight_hh{sfx}", (gates, hidden), init, hidden, gates, like=x),
                    "b_ih": None,
                    "b_hh": None,
                }
                if a["bias"]:
                    binit = "default" if init == "default" else "zeros"
                    w["b_ih"] = ctx.param(f"bias_ih{sfx}", (gates,), binit, hidden, gates, like=x)
                    w["b_hh"] = ctx.param(f"bias_hh{sfx}", (gates,), binit, hidden, gates, like=x)
                idx = layer_i * dirs + d
                if fused:  # one ONNX LSTM/GRU/RNN node: any sequence length
                    ys = ctx.op("recurrent", [inp, *w.values()], kind=kind, reverse=d, activation=act)
                    outs.append(ys)
                    continue
                hs = unroll(
                    ctx,
                    kind,
                    inp,
                    seq,
                    hidden,
                    w,
                    bool(d),
                    _state(ctx, h0, idx),
                    _state(ctx, c0, idx),
                    act,
                    finals_c,
                )
                outs.append(hs)
            last = layer_i == layers - 1
            if state or (last and not a["return_sequences"]):
                if fused:
                    at = lambda ys, d: ctx.op(
                        "slice", [ys], axis=1, start=0 if d else -1, end=1 if d else None
                    )  # noqa: E731
                    finals = [ctx.op("reshape", [at(ys, d)], shape=(0, -1)) for d, ys in enumerate(outs)]
                else:
                    finals = [hs[0] if d else hs[-1] for d, hs in enumerate(outs)]
                finals_h += finals
            if last and not a["return_sequences"]:
                y = finals[0] if dirs == 1 else ctx.op("concat", finals, axis=-1)
                return _with_state(ctx, kind, y, finals_h, finals_c) if state else y
            if fused:
                seq_out = outs[0] if dirs == 1 else ctx.op("concat", outs, axis=-1)
            else:
                steps = [
                    ctx.op("concat", [hs[t] for hs in outs], axis=-1) if dirs == 2 else outs[0][t]
                    for t in range(seq)
                ]
                seq_out = stack_steps(ctx, steps)
            if not last and a["dropout"] and ctx.training:
                seq_out = ctx.call("dropout", [seq_out], p=a["dropout"])
            inp, width = seq_out, hidden * dirs
        return _with_state(ctx, kind, inp, finals_h, finals_c) if state else inp

    return build


def _with_state(ctx: LayerCtx, kind: str, y: str, hs: list[str], cs: list[str]) -> tuple:
    """`y, h_n` (rnn, gru) or `y, (h_n, c_n)` (lstm), as PyTorch returns them: each state
    [layers*directions, batch, hidden], the last step of every layer and direction."""
    stack = lambda xs: ctx.op("concat", [ctx.op("unsqueeze", [v], axes=(0,)) for v in xs], axis=0)  # noqa: E731
    h = stack(hs)
    return (y, (h, stack(cs))) if kind == "lstm" else (y, h)


def _check_fused(ctx: LayerCtx, kind: str, x: str, states: bool, bias: bool) -> None:
    """A symbolic sequence length: inference only, through the fused `recurrent` operator."""
    t = ctx.type(x)
    if ctx.training:
        ctx.fail(
            f"{kind} trains by unrolling over time and needs a fixed sequence length, but {t} has "
            f"'{t.shape[1]}' there",
            expected="a training input whose sequence length (dim 1) is a number, e.g. f32[batch, 8, 16]",
            hint="train with a fixed length; the same weights then run on any length in a model whose "
            "input is f32[batch, seq, ...]",
        )
    if states or not bias:
        ctx.fail(
            f"{kind} over a symbolic sequence length ({t}) runs as one ONNX {kind.upper()} node, which "
            "nngraph builds without initial states and with biases",
            expected=f"{kind}(x, hidden) with bias=true, or an input with a fixed sequence length",
        )


_RNN_ARGS = [
    A("hidden", "int", required=True),
    A("layers", "int", 1, limit=">= 1"),
    A("bidirectional", "bool", False),
    A("return_sequences", "bool", True),
    A("bias", "bool", True),
    A("dropout", "float", 0.0, limit="in [0, 1)"),
    A("init", "init", "default"),
    A("return_state", "bool", False),
]
_RNN_DOC = (
    "over [batch, seq, features] (a fixed seq unrolls and trains; a symbolic seq runs as one ONNX node, "
    "inference only); returns [batch, seq, hidden*directions], "
    "or [batch, hidden*directions] (the last state) with return_sequences=false. Optional initial "
    "state tensors [layers*directions, batch, hidden]. With return_state=true also the final states, "
    "as PyTorch returns them: out, (h, c) = x | lstm(...) and out, h = x | gru(...). PyTorch's weight "
    "names, layout and gate order"
)
layer(
    "rnn",
    [*_RNN_ARGS, A("nonlinearity", "choice:tanh|relu", "tanh")],
    n_tensors=None,
    doc="Elman RNN " + _RNN_DOC,
)(_recurrent("rnn"))
layer("lstm", _RNN_ARGS, n_tensors=None, doc="LSTM (gates i, f, g, o) " + _RNN_DOC)(_recurrent("lstm"))
layer("gru", _RNN_ARGS, n_tensors=None, doc="GRU (gates r, z, n) " + _RNN_DOC)(_recurrent("gru"))
