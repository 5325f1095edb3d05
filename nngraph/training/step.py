"""The training-step model: forward, backward and optimizer update as ONE plain-ONNX graph.

Inputs, in this order (names are stable; README documents them):
  the model's inputs, the targets, `lr` (f32 scalar), `step` (i64 scalar, 1 for the
  first step), every parameter (`dense_1.weight`...), every buffer
  (`batchnorm_1.running_mean`...), every optimizer slot (`optimizer.m`...: one flat vector over all parameters),
  and one uniform [0, 1) noise input per dropout layer (`dropout_1.noise`).
Outputs: `loss`, each metric (`accuracy`...), then `next/NAME` for every
parameter, buffer and optimizer slot, in the input order.
The gradients-only model has the same inputs less `lr`, `step` and the slots, and
outputs `loss`, the metrics, `grad/PARAM` for each parameter and `next/BUFFER`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import networkx as nx
import numpy as np
import onnx

from nngraph.autodiff.backward import backward
from nngraph.core import dims
from nngraph.core.emit import Emitter
from nngraph.core.ir import Graph
from nngraph.core.types import TensorType
from nngraph.errors import NNError
from nngraph.frontend import Program, open_model
from nngraph.onnx.lower import check, lower
from nngraph.ops import registry
from nngraph.passes.manager import Runner
from nngraph.passes.pipeline import DEFAULT_LEVEL, before_autodiff, optimize
from nngraph.stepnames import grad_name, next_name
from nngraph.syntax import ast
from nngraph.training.optimizers import OPTIMIZERS, Update
from nngraph.training.spec import TrainSpec, metric_names


@dataclass
class Interface:
    """Names and roles of the step model's inputs and outputs; stored in its metadata as JSON."""

    kind: str  # "step", "grads" or "eval" (loss and metrics of the inference form)
    inputs: list[str]
    targets: list[str]
    params: list[str]
    buffers: list[str]
    slots: list[str]
    noise: dict[str, list]  # input name -> [drop probability, shape with symbolic dims]
    metrics: list[str]
    optimizer: str
    settings: dict
    outputs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> Interface:
        return Interface(**json.loads(text))

    @property
    def order(self) -> list[str]:
        """Every input of the ONNX model, in order."""
        head = self.inputs + self.targets
        if self.kind == "step":
            return head + ["lr", "step"] + self.params + self.buffers + self.slots + list(self.noise)
        return head + self.params + self.buffers + list(self.noise)  # eval has no noise


@dataclass
class Compiled:
    graph: Graph
    interface: Interface
    initial: dict[str, np.ndarray]  # parameters, buffers and optimizer slots at step 0

    def to_onnx(self, level: int = DEFAULT_LEVEL, runner: Runner | None = None) -> onnx.ModelProto:
        graph = optimize(self.graph, level, runner)
        model = lower(graph, self.interface.order, {"nngraph_training": self.interface.to_json()})
        check(model)
        return model


class _Adder(Emitter):
    """Adds the optimizer update to the training graph (phase "update", ids `update/...`); the
    update has no source span of its own, so its nodes carry the train section's."""

    def __init__(self, graph: Graph, span):
        super().__init__(graph, registry.get, span, "update", "update")
        self.g = graph

    def node_id(self, op: str) -> str:
        return f"update/{op}"

    def const(self, value: float, dtype: str = "f32") -> str:
        np_dtype = TensorType(dtype, ()).np_dtype
        if 0 < value < np.finfo(np_dtype).smallest_subnormal:
            # e.g. Adam's eps=1e-8 in float16: rounding it to 0 would make 0/0 on a zero gradient
            value = float(np.finfo(np_dtype).smallest_subnormal)
        return super().const(value, np_dtype)

    def input(self, name: str, t: TensorType) -> str:
        """A step input (lr, step, a slot); the caller lists it among the inputs in its place."""
        return self.g.add(name, "input", [], t, self.span, phase="update")


class _InDtype:
    """The adder as an optimizer rule's UpdateEmitter: constants in the dtype of the parameters it updates."""

    def __init__(self, add: _Adder, dtype: str):
        self.add, self.dtype = add, dtype

    def op(self, name: str, inputs: list[str], **attrs) -> str:
        return self.add.op(name, inputs, **attrs)

    def const(self, value: float) -> str:
        return self.add.const(value, self.dtype)


def compile_training(
    prog: Program,
    spec: TrainSpec,
    seed: int = 0,
    kind: str = "step",
    level: int = DEFAULT_LEVEL,
    runner: Runner | None = None,
) -> Compiled:
    """Build the training graph of `spec` (kind "step": with the optimizer; "grads": gradients only;
    "eval": the inference form's loss and metrics, parameters as inputs)."""
    if spec.model not in prog.models:
        raise NNError(
            f"train section names no known model '{spec.model}'",
            spec.span,
            expected="the name of a model in this file",
        ).suggest(spec.model, prog.models)
    om = open_model(prog, spec.model, seed, training=kind != "eval")
    model_outputs = om.outputs
    for td in spec.targets:
        om.add_target(td)
    _check_reserved(om.graph, prog.models[spec.model], spec)
    loss = om.tensor(spec.loss, "the loss")
    if om.graph.type(loss).rank != 0:
        raise NNError(
            f"the loss must be a scalar, got {om.graph.type(loss)}",
            spec.loss.span,
            expected="a loss such as cross_entropy(logits, label), which averages over the batch",
        )
    g = om.graph
    trainable = g.params(trainable=True)
    if trainable and not set(trainable) & nx.ancestors(g.g, loss):
        raise NNError(
            "the loss does not depend on any parameter of the model: training would change nothing",
            spec.loss.span,
            expected="a loss of the model's outputs, e.g. cross_entropy("
            + next(iter(model_outputs), "logits")
            + ", label)",
        )
    g.params_fixed = False  # parameters are inputs of every training model
    outputs = {"loss": loss}
    names = metric_names(spec.metrics)
    for m, name in zip(spec.metrics, names, strict=True):
        if not model_outputs or not spec.targets:
            raise NNError(f"metric '{m.name}' needs a model output and a target", m.span)
        first_out, first_target = next(iter(model_outputs)), spec.targets[0].name
        outputs[name] = om.call(m.name, [first_out, first_target], m.args, m.span, f"metric {m.name}")
    for buf, new in om.state_updates.items():
        outputs[next_name(buf)] = new
    built = om.finish(outputs)

    params = g.params(trainable=True)
    buffers = [p for p in g.params(trainable=False) if kind == "eval" or p in built.state_updates]
    data_inputs = [i for i in g.inputs if i not in built.targets and i not in built.noise]
    noise = {n: [p, list(g.type(n).shape)] for n, p in built.noise.items()}
    iface = Interface(
        kind,
        data_inputs,
        [t.name for t in spec.targets],
        params,
        buffers,
        [],
        noise,
        names,
        spec.optimizer.name,
        dict(spec.optimizer.args),
    )
    initial = {p: g.node(p)["value"] for p in params + buffers}
    if kind == "eval":
        iface.outputs = list(g.outputs)
        return Compiled(g, iface, initial)
    before_autodiff(g, level, runner)
    loss = g.outputs["loss"]
    grads = backward(g, loss, params)
    add = _Adder(g, spec.span)
    if spec.clip_norm and kind != "grads":  # raw gradients out: data-parallel clips after summing them
        grads = _clip(add, grads, spec.clip_norm)
    new_outputs = {"loss": loss, **{m: outputs[m] for m in iface.metrics}}
    if kind == "grads":
        new_outputs.update({grad_name(p): grads[p] for p in params})
        new_outputs.update({next_name(x): built.state_updates[x] for x in buffers})
    else:
        lr = add.input("lr", TensorType("f32", ()))
        step = add.input("step", TensorType("i64", ()))
        g.inputs += [lr, step]  # kept even when the optimizer does not read them (sgd ignores step)
        t = add.op("cast", [step], to="f32")
        next_params, next_slots = {}, {}
        groups: dict[str, list[str]] = {}
        for p in params:  # one flat update per dtype: a few large elementwise nodes, not many small ones
            groups.setdefault(g.type(p).dtype, []).append(p)
        for dtype, members in groups.items():
            new_p, new_state = _flat_update(add, spec, iface, initial, members, grads, dtype, lr, t)
            next_params.update(new_p)
            next_slots.update(new_state)
        new_outputs.update({next_name(p): next_params[p] for p in params})
        new_outputs.update({next_name(x): built.state_updates[x] for x in buffers})
        new_outputs.update({next_name(sl): next_slots[sl] for sl in iface.slots})
    g.outputs = new_outputs
    g.prune()
    iface.outputs = list(new_outputs)
    return Compiled(g, iface, initial)


def _flat_update(
    add: _Adder,
    spec: TrainSpec,
    iface: Interface,
    initial: dict,
    members: list[str],
    grads: dict[str, str],
    dtype: str,
    lr: str,
    t: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """The optimizer update of every parameter of one dtype as ONE flat vector: parameters and
    gradients are concatenated, the update formulas run once, and the result is sliced back.
    Its slots are flat too: `optimizer.m`, `optimizer.v` (adam, adamw), `optimizer.momentum` (sgd);
    a `.f64` suffix marks the slots of float64 parameters."""
    g = add.g
    sizes = [int(np.prod(g.type(p).shape)) for p in members]
    flat = lambda xs: xs[0] if len(xs) == 1 else add.op("concat", xs, axis=0)
    p_flat = flat([add.op("reshape", [p], shape=(-1,)) for p in members])
    g_flat = flat([add.op("reshape", [grads[p]], shape=(-1,)) for p in members])
    cast = lambda x: x if dtype == "f32" else add.op("cast", [x], to=dtype)
    state = {}
    suffix = "" if dtype == "f32" else f".{dtype}"
    optimizer = OPTIMIZERS[spec.optimizer.name]
    for slot in optimizer.slots_for(spec.optimizer.args):
        sid = add.input(f"optimizer.{slot.name}{suffix}", TensorType(dtype, (sum(sizes),)))
        iface.slots.append(sid)
        state[slot.name] = sid
        initial[sid] = np.full(sum(sizes), slot.start, TensorType(dtype, ()).np_dtype)
    update = Update(p_flat, g_flat, state, cast(lr), cast(t))
    new_flat, new_state = optimizer.rule(_InDtype(add, dtype), update, spec.optimizer.args)
    if new_state.keys() != state.keys():
        raise ValueError(
            f"optimizer '{optimizer.name}' updated the slots {sorted(new_state)}, but carries {sorted(state)}"
        )
    out, start = {}, 0
    for p, n in zip(members, sizes, strict=True):
        part = (
            new_flat if len(members) == 1 else add.op("slice", [new_flat], axis=0, start=start, end=start + n)
        )
        out[p] = add.op("reshape", [part], shape=tuple(g.type(p).shape))
        start += n
    return out, {f"optimizer.{k}{suffix}": v for k, v in new_state.items()}


def _clip(add: _Adder, grads: dict[str, str], max_norm: float) -> dict[str, str]:
    """Scale all gradients by min(1, max_norm / (global norm + 1e-6)), as clip_grad_norm_."""
    total = None
    for gr in grads.values():
        sq = add.op("reduce_sum", [add.op("mul", [gr, gr])], axes=None, keepdims=0)
        sq = sq if add.g.type(sq).dtype == "f32" else add.op("cast", [sq], to="f32")
        total = sq if total is None else add.op("add", [total, sq])
    norm = add.op("sqrt", [total])
    scale = add.op(
        "minimum",
        [add.const(1.0), add.op("div", [add.const(max_norm), add.op("add", [norm, add.const(1e-6)])])],
    )
    out = {}
    for p, gr in grads.items():
        dt = add.g.type(gr).dtype
        out[p] = add.op("mul", [gr, scale if dt == "f32" else add.op("cast", [scale], to=dt)])
    return out


#: Names the training models give their own inputs and outputs.
RESERVED = ("lr", "step", "loss")


def _check_reserved(g: Graph, model: ast.ModelDef, spec: TrainSpec) -> None:
    """An input, target or output named like the step model's own lr, step or loss would clash
    with it in the ONNX file; say so at the declaration."""
    declared = [(d.name, d.span) for d in model.body if isinstance(d, (ast.InputDecl, ast.OutputDecl))]
    declared += [(t.name, t.span) for t in spec.targets]
    for name, span in declared:
        if name in RESERVED:
            raise NNError(
                f"'{name}' is a name the training models use for their own {name}",
                span,
                expected="another name for this input, target or output (not lr, step or loss)",
            )


def noise_arrays(
    graph: Graph, noise: dict[str, list], known: dict[str, int], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Fresh uniform [0, 1) noise for each dropout input, its shape's symbols (and expressions of
    them, such as batch*32 after a flatten) sized from `known`, the sizes the data gave them."""
    out = {}
    for name, (_, shape) in noise.items():
        sizes = [dims.value(d, known) for d in shape]
        if None in sizes:
            d = shape[sizes.index(None)]
            raise NNError(
                f"dropout noise '{name}' has a dim '{d}' that the inputs' shapes do not size",
                expected="dims made from the inputs' dims",
            )
        u = rng.random(sizes, dtype=np.float32)
        out[name] = u.astype(graph.type(name).np_dtype, copy=False)  # the model's float type (f16, f64)
    return out
