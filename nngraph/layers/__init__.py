"""The layers a .nn file calls: one family per module, registered in registry.py.

Importing nngraph.layers, or any module in it, registers every family and then wraps every
primitive operator that is not already a layer, so what the registry holds never depends on
which module was imported first. A layer may build other layers with `ctx.call`.
"""

from nngraph.layers import (  # noqa: F401  (each family registers its layers)
    activation,
    attention,
    conv,
    dense,
    embedding,
    losses,
    metrics,
    norm,
    pool,
    positional,
    recurrent,
    regularize,
    shape,
    steps,
)
from nngraph.layers.primitives import register_primitives
from nngraph.layers.registry import LayerCtx, LayerDef, all_layers, layer, lookup

register_primitives()

__all__ = ["LayerCtx", "LayerDef", "all_layers", "layer", "lookup"]
