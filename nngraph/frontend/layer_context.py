"""What a built-in layer sees while it builds (`LayerCtx`): ops, parameters, noise, buffers and
errors at its call site; and the emitter that names its nodes after the layer instance."""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from nngraph.core.emit import Emitter
from nngraph.core.types import DTYPES, TensorType
from nngraph.errors import NNError, ShapeError, Span
from nngraph.frontend.scope import Scope
from nngraph.frontend.state import BuildState
from nngraph.frontend.values import LayerValue
from nngraph.layers.init import initialize
from nngraph.ops import registry


class LayerEmitter(Emitter):
    """Forward nodes at a call site: one layer application, or one arithmetic node. A node is named
    after the layer instance (`dense_1`, or `dense_1/matmul` for a layer's inner ops); a shape
    error becomes a positioned NNError; an empty result is refused."""

    def __init__(self, b: BuildState, span: Span | None, scope_name: str = "", kind: str | None = None):
        super().__init__(b.graph, registry.get, span, scope_name, "forward")
        self.b, self.kind = b, kind

    def node_id(self, op: str) -> str:
        if op == "const" and not self.scope:
            return "const"
        return self.scope if (self.kind or op) == op else f"{self.scope}/{op}"

    def fields(self) -> dict:
        return {"order": self.b.tick()}

    def failed(self, err: ShapeError, op: str, inputs: list[str]) -> NoReturn:
        raise NNError(err.message, self.span, expected=err.expected, hint=err.hint) from None

    def made(self, op: str, inputs: list[str], t: TensorType) -> None:
        if 0 in t.shape and not any(0 in self.graph.type(i).shape for i in inputs):
            # Python's clamping makes x[5:] of 4 elements valid, but nothing after it has data
            got = ", ".join(str(self.graph.type(i)) for i in inputs)
            raise NNError(
                f"'{self.kind or op}' of {got} gives an empty tensor {t}",
                self.span,
                expected="a result with at least one element along every dim",
            )


def constant(b: BuildState, value: float, like: TensorType, span: Span, op: str | None = None) -> str:
    """A scalar constant of `like`'s dtype, refused where it cannot combine with `like` as written:
    the number of `x * 0.5`, or of a call `op(x, 0.5)` (a number where the operator takes a tensor)."""
    if like.dtype == "bool":
        raise NNError(
            f"arithmetic on a bool tensor {like}"
            if op is None
            else f"'{op}' of the number {value} and a bool tensor {like}",
            span,
            expected="a numeric tensor",
            hint="cast it first, e.g. cast(mask, to=f32)",
        )
    if like.dtype in ("i32", "i64") and float(value) != int(value):
        raise NNError(
            f"the number {value} would be truncated to combine it with the integer tensor {like}",
            span,
            expected="an integer, or a float tensor",
            hint="cast it first, e.g. cast(x, to=f32)",
        )
    return LayerEmitter(b, span).const(value, like)


class LayerContext:
    """What a built-in layer sees while it builds: ops, parameters and errors at its call site."""

    def __init__(self, b: BuildState, lv: LayerValue, span: Span, scope: Scope, prefix: str | None = None):
        self.b, self.lv, self.span, self.scope = b, lv, span, scope
        self.prefix = lv.name if prefix is None else prefix  # parameter names: PREFIX.local

    def call(self, kind: str, xs: list[str], name: str | None = None, **args: Any) -> str:
        """Build the built-in layer `kind` inside this one (layers compose): its nodes are this
        layer's, its parameters `THIS.NAME.param` (`THIS.param` without a name), its arguments
        the layer's defaults updated by `args`."""
        d = self.b.layers[kind]
        full = {}
        for spec in d.params:
            if spec.name in args:
                full[spec.name] = args.pop(spec.name)
            elif spec.required:
                raise TypeError(f"ctx.call({kind!r}) needs argument {spec.name!r}")
            else:
                full[spec.name] = spec.default
        if args:
            raise TypeError(f"layer {kind!r} has no argument {sorted(args)[0]!r}")
        sub = LayerContext(
            self.b, self.lv, self.span, self.scope, f"{self.prefix}.{name}" if name else self.prefix
        )
        return d.build(sub, list(xs), full)

    def op(self, name: str, inputs: list[str], **attrs: Any) -> str:
        return LayerEmitter(self.b, self.span, self.lv.name, self.lv.kind).op(name, inputs, **attrs)

    def param(
        self,
        local: str,
        shape: tuple[int, ...],
        init: str,
        fan_in: int = 0,
        fan_out: int = 0,
        trainable: bool = True,
        like: str | None = None,
        dtype: str | None = None,
        zero_rows: tuple[int, ...] = (),
    ) -> str:
        """A parameter of `like`'s float dtype (else `dtype`, else f32); `zero_rows` are rows of
        axis 0 that start at zero whatever the init (an embedding's padding row)."""
        g = self.b.graph
        pid = f"{self.prefix}.{local}"
        if like is not None and g.type(like).dtype in ("f16", "f32", "f64"):
            dtype = g.type(like).dtype
        dtype = dtype or "f32"
        t = TensorType(dtype, tuple(shape))
        if pid in g.g:
            if g.type(pid) != t:
                self.fail(
                    f"shared layer '{self.lv.name}' was built with {local} {g.type(pid)} but is now applied "
                    f"to an input that needs {t}",
                    expected="the same input shape at every application",
                )
            return pid
        n = int(np.prod(shape, dtype=np.float64))
        if n > 2**31:
            self.fail(
                f"parameter {local} of shape {list(shape)} has {n:,} elements, more than nngraph can hold",
                expected="a layer size that fits in memory",
            )
        value = initialize(pid, tuple(shape), init, fan_in, fan_out, self.b.seed, DTYPES[dtype])
        if zero_rows:
            value[list(zero_rows)] = 0
        if trainable:  # buffers (running statistics) are counted apart, as PyTorch's are
            self.b.param_elements += n
        return g.add(
            pid, "param", [], t, self.span, value=value, trainable=trainable, init=init, order=self.b.tick()
        )

    def type(self, node: str) -> TensorType:
        return self.b.graph.type(node)

    def fail(self, message: str, expected: str | None = None, hint: str | None = None) -> None:
        raise NNError(message, self.span, expected=expected, hint=hint)

    def dims(self) -> set[str]:
        return self.b.dims

    def float_dtype(self) -> str:
        """The model's float dtype: the one its float inputs share, or f32 (none, or several)."""
        g = self.b.graph
        found = {g.type(i).dtype for i in g.inputs} & {"f16", "f32", "f64"}
        return found.pop() if len(found) == 1 else "f32"

    @property
    def training(self) -> bool:
        return self.b.training

    def shared(self, instance: str, local: str) -> str:
        """Another layer's parameter (weight tying): `local` of the layer instance `instance`."""
        pid = f"{instance}.{local}"
        if pid not in self.b.graph.g:
            self.fail(
                f"layer '{instance}' has no parameter '{local}' to share",
                expected="an embedding layer that was applied before this line",
            )
        return pid

    def scalar(self, value: float, like: str) -> str:
        return constant(self.b, value, self.b.graph.type(like), self.span)

    def update(self, buffer: str, value: str) -> None:
        """Record a buffer's value after a training step (batchnorm running statistics)."""
        self.b.state_updates[buffer] = value

    def latest(self, buffer: str) -> str:
        """A buffer's value so far in this step: its update by an earlier application, or itself."""
        return self.b.state_updates.get(buffer, buffer)

    def noise(self, like: str, p: float, shape: tuple | None = None) -> str:
        """A fresh input of uniform [0, 1) noise of `like`'s dtype, shaped like it or `shape`
        (dropout2d's [batch, C, 1, 1]), fed anew at every training step."""
        g = self.b.graph
        t = g.type(like) if shape is None else g.type(like).with_shape(tuple(shape))
        nid = g.add(f"{self.prefix}.noise", "input", [], t, self.span, order=self.b.tick())
        g.inputs.append(nid)
        self.b.noise[nid] = p
        return nid
