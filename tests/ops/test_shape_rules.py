"""Shape rules of the operator families, called directly with symbolic dims, and their error messages."""

from __future__ import annotations

import pytest

from nngraph.core.types import TensorType
from nngraph.errors import ShapeError
from nngraph.ops import registry


def T(*shape, dtype="f32") -> TensorType:
    return TensorType(dtype, tuple(shape))


def infer(name: str, *types: TensorType, **attrs) -> TensorType:
    op = registry.get(name)
    return op.infer(list(types), op.full_attrs(attrs))


def error(name: str, *types: TensorType, **attrs) -> str:
    with pytest.raises(ShapeError) as e:
        infer(name, *types, **attrs)
    return e.value.message


# ---- activation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "softmax", "log_softmax", "identity"]
)
def test_activations_keep_the_type(name):
    assert infer(name, T("batch", "seq", 8)) == T("batch", "seq", 8)
    assert infer(name, T(2, 3, dtype="f64")) == T(2, 3, dtype="f64")


def test_activation_errors():
    msg = error("relu", T("batch", 3, dtype="i64"))
    assert "'relu'" in msg and "i64[batch,3]" in msg
    msg = error("softmax", T("batch", 10), axis=2)
    assert "'softmax'" in msg and "axis 2" in msg and "f32[batch,10]" in msg
    assert "'tanh'" in error("gelu", T(3), approximate="fast")


# ---- linalg --------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, out",
    [
        ((2, 3), (3, 4), (2, 4)),
        (("batch", 3, 4), (4, 5), ("batch", 3, 5)),
        (("batch", 1, 3, 4), (7, 4, 2), ("batch", 7, 3, 2)),
        ((4,), (4, 5), (5,)),
        (("batch", "seq", 4), (4,), ("batch", "seq")),
        ((4,), (4,), ()),
    ],
)
def test_matmul_broadcasts_like_numpy(a, b, out):
    assert infer("matmul", T(*a), T(*b)) == T(*out)


def test_matmul_errors_name_both_shapes():
    msg = error("matmul", T("batch", 3, 4), T(5, 6))
    assert "f32[batch,3,4]" in msg and "f32[5,6]" in msg and "4 vs 5" in msg
    msg = error("matmul", T(2, 3, 4), T(3, 4, 6))
    assert "batch dims" in msg and "f32[2,3,4]" in msg and "f32[3,4,6]" in msg


def test_embedding():
    assert infer("embedding", T(100, 16), T("batch", "seq", dtype="i64")) == T("batch", "seq", 16)
    assert infer("embedding", T(100, 16), T(dtype="i32")) == T(16)
    msg = error("embedding", T(100, 16), T("batch", "seq"))
    assert "integer indices" in msg and "f32[batch,seq]" in msg


# ---- conv / pool ---------------------------------------------------------------


def test_conv_shapes():
    x, w = T("batch", 3, 32, 32), T(8, 3, 3, 3)
    assert infer("conv", x, w) == T("batch", 8, 30, 30)
    assert infer("conv", x, w, T(8), pads=(1, 1, 1, 1)) == T("batch", 8, 32, 32)
    assert infer("conv", x, w, stride=(2, 2), pads=(1, 1, 1, 1)) == T("batch", 8, 16, 16)
    assert infer("conv", x, w, dilation=(2, 2)) == T("batch", 8, 28, 28)
    assert infer("conv", T("batch", 4, 9), T(6, 2, 3), groups=2, stride=(2,)) == T("batch", 6, 4)
    # symbolic spatial dims become expressions; same-padding keeps the symbol
    assert infer("conv", T("batch", 3, "h", "w"), w, pads=(1, 1, 1, 1)) == T("batch", 8, "h", "w")
    assert infer("conv", T("batch", 3, "h", "w"), w, stride=(2, 2)) == T(
        "batch", 8, "(h-3)//2+1", "(w-3)//2+1"
    )


def test_conv_errors():
    msg = error("conv", T("batch", 10), T(8, 3, 3, 3))
    assert "'conv' expects a 4-D input [batch, channels, height, width], got 2-D f32[batch,10]" in msg
    msg = error("conv", T("batch", 4, 9, 9), T(8, 3, 3, 3))
    assert "f32[batch,4,9,9]" in msg and "f32[8,3,3,3]" in msg and "channels" in msg
    msg = error("conv", T(1, 4, 9), T(6, 2, 3), groups=3)
    assert "groups 3" in msg
    msg = error("conv", T(1, 3, 3, 3), T(8, 3, 5, 5))
    assert "kernel 5 is larger than the padded input 3" in msg and "f32[1,3,3,3]" in msg
    assert "dilated to 5" in error("conv", T(1, 3, 3, 3), T(8, 3, 3, 3), dilation=(2, 2))
    assert "bias" in error("conv", T(1, 3, 5, 5), T(8, 3, 3, 3), T(4))
    assert "stride" in error("conv", T(1, 3, 8), T(8, 3, 3), stride=(1, 2))


def test_pool_shapes():
    assert infer("maxpool", T("batch", 3, 32, 32), kernel=(2, 2)) == T("batch", 3, 16, 16)
    assert infer("avgpool", T("batch", 3, 7, 5), kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)) == T(
        "batch", 3, 4, 3
    )
    assert infer("maxpool", T("batch", 3, "len"), kernel=(3,), stride=(2,), pads=(1, 1)) == T(
        "batch", 3, "(len-1)//2+1"
    )
    assert infer("global_avgpool", T("batch", 16, 7, 7)) == T("batch", 16, 1, 1)
    assert infer("global_avgpool", T("batch", 16, "len")) == T("batch", 16, 1)


def test_pool_errors():
    msg = error("maxpool", T("batch", 3, 8), kernel=(2, 2))
    assert "'maxpool' expects a 4-D input" in msg and "f32[batch,3,8]" in msg
    msg = error("avgpool", T("batch", 3, 2, 2), kernel=(3, 3))
    assert "kernel 3 is larger than the padded input 2" in msg and "f32[batch,3,2,2]" in msg
    assert "smaller than the kernel" in error("maxpool", T(1, 1, 8, 8), kernel=(2, 2), pads=(2, 0, 0, 0))
    assert "f32[batch,16]" in error("global_avgpool", T("batch", 16))


# ---- norm ----------------------------------------------------------------------


def test_norm_shapes():
    c = T(16)
    assert infer("batchnorm", T("batch", 16, 8, 8), c, c, c, c) == T("batch", 16, 8, 8)
    assert infer("batchnorm", T("batch", 16), c, c, c, c, eps=1e-3) == T("batch", 16)
    assert infer("layernorm", T("batch", "seq", 16), c, c) == T("batch", "seq", 16)
    assert infer("dropout", T("batch", 5), p=0.25) == T("batch", 5)


def test_norm_errors():
    c = T(16)
    msg = error("batchnorm", T("batch", 8, 4, 4), c, c, c, c)
    assert "f32[batch,8,4,4]" in msg and "f32[16]" in msg
    assert "'batchnorm' expects a 2 or 3 or 4-D" in error("batchnorm", T(1, 16, 2, 2, 2), c, c, c, c)
    msg = error("layernorm", T("batch", "seq", 8), T(8), T(7))
    assert "bias" in msg and "f32[batch,seq,8]" in msg and "f32[7]" in msg
    assert "[0, 1)" in error("dropout", T(3), p=1.0)


# ---- shape ---------------------------------------------------------------------


def test_flatten():
    assert infer("flatten", T("batch", 32, 4, 4)) == T("batch", 512)
    assert infer("flatten", T("batch", "seq", 4), axis=2) == T("batch*seq", 4)
    assert infer("flatten", T(2, 3, 4), axis=0) == T(1, 24)
    assert infer("flatten", T(2, 3, 4), axis=3) == T(24, 1)
    assert infer("flatten", T(2, 3, 4), axis=-1) == T(6, 4)
    assert "f32[2,3,4]" in error("flatten", T(2, 3, 4), axis=4)


@pytest.mark.parametrize(
    "shape, out",
    [
        ((0, -1), ("batch", 12)),
        ((-1, 12), ("batch", 12)),
        ((0, 3, 2, 2), ("batch", 3, 2, 2)),
        ((6, -1), (6, "batch*2")),
        ((24, -1), (24, "batch//2")),
    ],
)
def test_reshape_symbolic(shape, out):
    assert infer("reshape", T("batch", 3, 4), shape=shape) == T(*out)


def test_reshape_errors_name_both_shapes():
    msg = error("reshape", T(2, 3, 4), shape=(5, 5))
    assert "f32[2,3,4]" in msg and "[5,5]" in msg and "24" in msg and "25" in msg
    assert "not divisible by 5" in error("reshape", T(2, 3, 4), shape=(5, -1))
    msg = error("reshape", T("batch", 3, 4), shape=(0, 5))
    assert "f32[batch,3,4]" in msg and "[0,5]" in msg
    assert "[-1,-1]" in error("reshape", T(2, 3, 4), shape=(-1, -1))
    assert "copies" in error("reshape", T(6), shape=(0, 0))


def test_transpose():
    assert infer("transpose", T("batch", 3, 4), perm=(0, 2, 1)) == T("batch", 4, 3)
    msg = error("transpose", T("batch", 3, 4), perm=(0, 1))
    assert "(0, 1)" in msg and "f32[batch,3,4]" in msg


def test_concat():
    xs = T("batch", 3), T("batch", 4), T("batch", "k")
    assert infer("concat", *xs, axis=1) == T("batch", "k+7")
    assert infer("concat", T(2, 3), T(4, 3), axis=-2) == T(6, 3)
    assert infer("concat", T("n", 3), T("n", 3), axis=0) == T("n+n", 3)
    msg = error("concat", T("batch", 3), T(2, 4), axis=1)
    assert "f32[batch,3]" in msg and "f32[2,4]" in msg and "dim 0" in msg
    msg = error("concat", T("batch", 3), T(2), axis=0)
    assert "rank" in msg and "f32[batch,3]" in msg and "f32[2]" in msg
    assert "dtype" in error("concat", T(2, 3), T(2, 3, dtype="f64"), axis=0)


@pytest.mark.parametrize(
    "attrs, dim",
    [
        ({"start": 1}, "seq-1"),
        ({"start": -3}, 3),
        ({"end": -1}, "seq-1"),
        ({"start": 0, "end": 5}, 5),
        ({"step": 2}, "(seq+1)//2"),
        ({"start": -1, "step": -1}, "seq"),
    ],
)
def test_slice_symbolic(attrs, dim):
    assert infer("slice", T("batch", "seq"), axis=1, **attrs) == T("batch", dim)


def test_slice_static_clamps_like_python():
    assert infer("slice", T(4, 3), axis=1, start=5, end=9) == T(4, 0)
    assert infer("slice", T(6, 2), axis=0, start=4, end=-10, step=-2) == T(3, 2)
    assert infer("slice", T(6), axis=0, start=-100, end=100) == T(6)
    assert "f32[batch,seq]" in error("slice", T("batch", "seq"), axis=2)
    assert "step" in error("slice", T(4), axis=0, step=0)
