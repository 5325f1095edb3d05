"""Every primitive operator a .nn file may call is a layer as it is: its attributes become the
layer's arguments, and building it is one node."""

from __future__ import annotations

from nngraph.layers.args import ArgSpec
from nngraph.layers.registry import LAYERS, LayerCtx, LayerDef
from nngraph.ops import registry

# ---- every other primitive operator is a layer as it is ------------------------------

_ATTR_KINDS = {
    "axis": "int",
    "start": "int",
    "end": "int",
    "step": "int",
    "perm": "ints",
    "p": "float",
    "alpha": "float",
    "eps": "float",
    "approximate": "choice:none|tanh",
    "axes": "ints",
    "keepdims": "int",
    "depth": "int",
}
_ATTR_LIMITS = {"keepdims": "in [0, 1]", "depth": ">= 1"}
_WRAPPED_OPS = {"conv", "maxpool", "avgpool", "batchnorm", "layernorm", "embedding", "reshape", "dropout"}
#: Operators the compiler makes for itself (gradients, fusions, the pieces of sequence layers):
#: not layers a .nn file calls.
_INTERNAL_OPS = {
    "batchnorm_train",
    "broadcast_like",
    "causal_fill",
    "conv_patches",
    "dim_size",
    "gemm",
    "positions",
    "recurrent",
    "reshape_like",
    "sinusoid",
    "softmax_cross_entropy",
}


def _primitive(op: registry.Op) -> LayerDef:
    params = []
    for attr, default in op.attrs.items():
        kind = _ATTR_KINDS.get(attr) or (
            "float" if isinstance(default, float) else "int" if isinstance(default, int) else "str"
        )
        required = default is registry.REQUIRED
        params.append(ArgSpec(attr, kind, None if required else default, required, _ATTR_LIMITS.get(attr)))
    variadic = any(i.startswith("*") for i in op.inputs)
    n = None if variadic else len([i for i in op.inputs if not i.endswith("?")])

    def build(ctx: LayerCtx, xs: list[str], a: dict) -> str:
        kinds = {spec.name: spec.kind for spec in params}
        a = {
            k: tuple(v) if isinstance(v, list) else (v,) if kinds[k] == "ints" and isinstance(v, int) else v
            for k, v in a.items()
        }
        return ctx.op(op.name, xs, **a)

    return LayerDef(op.name, n, params, build, op.doc)


def register_primitives() -> None:
    """Wrap every operator not already a layer; nngraph.layers runs it after loading every family."""
    for name, op in registry.all_ops().items():
        internal = name in _INTERNAL_OPS or "_grad" in name
        if name not in _WRAPPED_OPS and name not in LAYERS and not internal:
            LAYERS[name] = _primitive(op)
