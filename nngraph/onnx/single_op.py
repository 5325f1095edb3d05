"""Lower one registry operator on its own: the registry test's way to run an op in onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from nngraph.core.types import TensorType, dtype_name, onnx_elem_type
from nngraph.onnx.context import IR_VERSION, OPSET, LowerContext
from nngraph.ops.registry import Op


def single_op_model(
    op: Op, arrays: list[np.ndarray], attrs: dict[str, Any]
) -> tuple[onnx.ModelProto, TensorType]:
    """A model with inputs x0..xn feeding `op`; returns it and the inferred output type."""
    attrs = op.full_attrs(attrs)
    in_types = [TensorType(dtype_name(a.dtype), tuple(a.shape)) for a in arrays]
    out_type = op.infer(in_types, attrs)
    names = [f"x{i}" for i in range(len(arrays))]
    ctx = LowerContext(reserved=set(names) | {"y"})
    ctx.source = op.name
    result = op.lower(ctx, names, attrs, in_types, out_type)
    if result != "y":
        ctx.emit("Identity", [result], out="y")
    graph = helper.make_graph(
        ctx.nodes,
        f"single_{op.name}",
        [
            helper.make_tensor_value_info(n, onnx_elem_type(t.dtype), list(t.shape))
            for n, t in zip(names, in_types, strict=True)
        ],
        [helper.make_tensor_value_info("y", onnx_elem_type(out_type.dtype), list(out_type.shape))],
        ctx.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    return model, out_type
