"""Every primitive operator a .nn file may call is a layer as it is: its attributes become the
layer's arguments, and building it is one node."""

from __future__ import annotations

from nngraph.layers.args import ArgSpec
from nngraph.layers.registry import LAYERS, LayerCtx, LayerDef
from nngraph.ops import registry

# What a .nn call may pass comes from the operator's record: `internal` ops are not layers,
# `attr_kind` / `attr_limits` say how each attribute is written and checked.


def _primitive(op: registry.Op) -> LayerDef:
    params = []
    for attr, default in op.attrs.items():
        required = default is registry.REQUIRED
        params.append(
            ArgSpec(
                attr, op.attr_kind(attr), None if required else default, required, op.attr_limits.get(attr)
            )
        )
    variadic = any(i.startswith("*") for i in op.inputs)
    n = None if variadic else len([i for i in op.inputs if not i.endswith("?")])

    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        kinds = {spec.name: spec.kind for spec in params}
        a = {
            k: tuple(v) if isinstance(v, list) else (v,) if kinds[k] == "ints" and isinstance(v, int) else v
            for k, v in a.items()
        }
        return ctx.op(op.name, xs, **a)

    return LayerDef(op.name, n, params, build, op.doc, op=op.name)


def register_primitives() -> None:
    """Wrap every operator that is not internal and not already a layer (a layer of the op's own
    name wraps it); nngraph.layers runs it after loading every family."""
    for name, op in registry.all_ops().items():
        if name not in LAYERS and not op.internal:
            LAYERS[name] = _primitive(op)
