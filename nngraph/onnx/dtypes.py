"""Mapping between .nn dtype names and ONNX element types."""

from onnx import TensorProto

_ELEM = {
    "f16": TensorProto.FLOAT16,
    "f32": TensorProto.FLOAT,
    "f64": TensorProto.DOUBLE,
    "i32": TensorProto.INT32,
    "i64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
}


def onnx_elem_type(dtype: str) -> int:
    return _ELEM[dtype]
