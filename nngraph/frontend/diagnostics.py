"""The messages for names that do not resolve: undefined names, names used before they are
assigned, unknown layers and arguments, with the hints that PyTorch and Keras habits need."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from nngraph.errors import NNError, Span
from nngraph.frontend.scope import Scope
from nngraph.frontend.values import LayerValue, Tensor
from nngraph.layers.args import Symbol
from nngraph.layers.registry import LayerDef
from nngraph.ops import registry
from nngraph.syntax import ast

#: PyTorch and Keras names users bring with them, lower-cased, and nngraph's word for each.
FOREIGN_LAYERS = {
    "linear": "dense",
    "fc": "dense",
    "conv": "conv2d",
    "convtranspose1d": "conv_transpose1d",
    "convtranspose2d": "conv_transpose2d",
    "maxpool2d": "maxpool",
    "avgpool2d": "avgpool",
    "max_pool2d": "maxpool",
    "avg_pool2d": "avgpool",
    "maxpooling2d": "maxpool",
    "averagepooling2d": "avgpool",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "batchnormalization": "batchnorm",
    "layernormalization": "layernorm",
    "multiheadattention": "attention",
    "transformerencoderlayer": "transformer_encoder",
    "logsoftmax": "log_softmax",
    "leakyrelu": "leaky_relu",
    "crossentropyloss": "cross_entropy",
    "mseloss": "mse",
    "bcewithlogitsloss": "binary_cross_entropy",
}
FOREIGN_ARGS = {
    "dim": "axis",
    "out_features": "units",
    "out_channels": "channels",
    "filters": "channels",
    "kernel_size": "kernel",
    "strides": "stride",
    "num_heads": "heads",
    "negative_slope": "alpha",
    "use_bias": "bias",
    "rate": "p",
    "num_embeddings": "num",
    "embedding_dim": "dim",
    "hidden_size": "hidden",
    "num_layers": "layers",
}


def undefined(sym: Symbol, scope: Scope | None, dims: set[str], what: str = "tensor") -> NoReturn:
    """Refuse a name bound to nothing; `dims` are the model's dim names (a dim is not a value)."""
    names = list(scope.vars) if scope else []
    if scope is not None:
        used_before_assigned(sym, scope)
    err = NNError(f"undefined {what} '{sym.name}'", sym.span, expected="a name assigned or declared above")
    if sym.name in ("True", "False", "TRUE", "FALSE"):  # Python's spelling
        err.hint = f"did you mean '{sym.name.lower()}'? (.nn writes true and false in lower case)"
        raise err
    if sym.name in dims and sym.name not in names:  # reshape([batch * 2, 4])
        raise NNError(
            f"'{sym.name}' is a dim name, not a value: it cannot take part in arithmetic",
            sym.span,
            expected="a dim name alone in a reshape list, as in reshape([batch, 4])",
            hint="for a dim computed from others write -1 (inferred), e.g. reshape([-1, 4])",
        )
    raise err.suggest(sym.name, names)


def used_before_assigned(sym: Symbol, scope: Scope) -> None:
    """A name assigned further down: report it, and call it a cycle when that assignment needs this one."""
    for stmts, i in reversed(scope.bodies):
        target = getattr(stmts[i], "name", None)
        if target == sym.name and isinstance(stmts[i], (ast.Assign, ast.OutputDecl)):
            raise NNError(
                f"'{sym.name}' is used in its own definition (a cycle)",
                sym.span,
                expected=f"'{sym.name}' to be assigned before this line",
            )
        for later in stmts[i + 1 :]:
            if isinstance(later, (ast.Assign, ast.OutputDecl)) and later.name == sym.name:
                if target is not None and later.value is not None and target in _names_in(later.value):
                    raise NNError(
                        f"cycle: '{target}' needs '{sym.name}', which is assigned at line {later.span.line} from '{target}'",
                        sym.span,
                        expected="tensors that do not depend on themselves",
                    )
                raise NNError(
                    f"'{sym.name}' is used before it is assigned (at line {later.span.line})",
                    sym.span,
                    expected="statements in order: assign a tensor before using it",
                )


def unknown_layer(
    name: str, span: Span, scope: Scope, layers: Mapping[str, LayerDef], blocks: Iterable[str]
) -> NoReturn:
    """Refuse a call of a name that is no built-in layer (`layers`), block or layer value in scope.
    The hint names a built-in layer of the family the name looks like, when it looks like one:
    conv_transpose2d is hinted as a convolution or not at all, never as `transpose`."""
    if name in scope.vars and isinstance(scope.vars[name], Tensor):
        raise NNError(f"'{name}' is a tensor, not a layer", span, expected="a layer or block name")
    families = {k: family(d) for k, d in layers.items()}
    alike = _families_like(name, families)
    builtin = [k for k, f in families.items() if not alike or f in alike]
    candidates = builtin + list(blocks) + [k for k, v in scope.vars.items() if isinstance(v, LayerValue)]
    err = NNError(
        f"unknown layer '{name}'", span, expected="a built-in layer, a block, or a layer assigned above"
    )
    if name.lower() in FOREIGN_LAYERS and FOREIGN_LAYERS[name.lower()] in families:
        err.hint = f"did you mean '{FOREIGN_LAYERS[name.lower()]}'? (nngraph's name for {name})"
        raise err
    raise err.suggest(name, candidates)


#: a family module of nngraph/layers whose name is not the word its operators' Style.category uses
_MODULE_FAMILY = {
    "dense": "linear",
    "embedding": "embed",
    "positional": "embed",
    "losses": "loss",
    "metrics": "metric",
}


def family(d: LayerDef) -> str:
    """A layer's family: for a primitive operator the category its record's Style gives, else
    the family module it is defined in (conv, pool, norm, ...)."""
    if d.op is not None:
        return registry.get(d.op).style.category
    module = d.build.__module__.rsplit(".", 1)[-1]
    return _MODULE_FAMILY.get(module, module)


def _families_like(name: str, families: Mapping[str, str]) -> set[str]:
    """The families an unknown layer name looks like it belongs to: those of the layers whose
    first word it shares (conv_transpose2d, conv2d), and any whose family word it contains
    (adaptive_avgpool: pool). Empty when it looks like none."""
    first = _first_word(name)
    like = {f for k, f in families.items() if first and _first_word(k) == first}
    return like | {f for f in set(families.values()) if len(f) >= 4 and f in name.lower()}


def _first_word(name: str) -> str | None:
    words = re.findall(r"[a-z]+", name.lower())
    return words[0] if words else None


def unknown_argument(name: str, owner: str, span: Span, names: list[str], signature: str) -> NoReturn:
    """Refuse a keyword that `owner` does not take; `names` are the ones it does."""
    err = NNError(f"{owner} has no argument '{name}'", span, expected=signature)
    if FOREIGN_ARGS.get(name) in names:
        err.hint = f"did you mean '{FOREIGN_ARGS[name]}'? (nngraph's name for {name})"
        raise err
    raise err.suggest(name, names)


def _names_in(e: ast.Expr) -> set[str]:
    out: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, ast.Name):
            out.add(x.id)
        elif isinstance(x, ast.Node):
            for v in vars(x).values():
                if isinstance(v, list):
                    for i in v:
                        walk(i)
                else:
                    walk(v)

    walk(e)
    return out
