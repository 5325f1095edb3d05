"""Issue 16, item 1: a tensor's shape in expressions (`x.shape[i]`, `x.rank`), static where the
input's type gives a number and a symbolic dim where it gives a name; `//` for integer division;
input dims that are multiples (`16*H`); a U-Net whose up-blocks read their sizes from the skips,
compiled once and run at two input sizes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nngraph as ng
from nngraph.core.types import TensorType


def compile_error(src: str) -> ng.NNError:
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "m.nn")
    return info.value


def assert_positioned(err: ng.NNError, src: str, line: int, token: str, message: str, hint: str | None):
    """The error names `message`, sits at the first `token` of `line`, says what was expected."""
    text = err.render()
    assert message in err.message, text
    assert err.span is not None and err.span.file == "m.nn", text
    col = (src.splitlines()[line - 1] + "\n").index(token) + 1
    assert (err.span.line, err.span.column) == (line, col), text
    assert text.startswith(f"m.nn:{line}:{col}: error: ") and "^" in text.splitlines()[2], text
    assert err.expected or err.hint, text
    if hint is not None:
        assert err.hint is not None and hint in err.hint, text


def out_type(m, name: str = "o") -> TensorType:
    return m.graph.type(m.graph.outputs[name])


def session(m) -> ort.InferenceSession:
    return ort.InferenceSession(m.onnx.SerializeToString(), providers=["CPUExecutionProvider"])


def test_static_dims_are_numbers_in_layer_arguments():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 12]\n"
        " h = x | dense(x.shape[-1] * 2)\n"  # 24
        " output o = h | dense(h.shape[1] // 5 + x.rank)\n}"  # 24 // 5 + 2 = 6
    )
    assert out_type(m) == TensorType("f32", ("batch", 6))


def test_integer_division_rounds_down_like_python():
    m = ng.compile_source(
        "model M {\n input x: f32[batch, 4]\n output o = x | dense(-7 // 2 + 9 // 2 + 7)\n}"
    )
    assert out_type(m).shape[1] == -7 // 2 + 9 // 2 + 7  # 7


def test_symbolic_dims_reshape_where_they_are_copied_or_inferred():
    src = """
model M {
    input x: f32[batch, seq, 8]
    n = x.shape[0]
    t = x.shape[1]
    h = x | reshape([n, t, 2, x.shape[-1] // 2])     # n, t copied; 4 a number
    output o = h | reshape([n, t * 2, 4])              # t * 2 inferred, checked
}"""
    m = ng.compile_source(src)
    assert out_type(m) == TensorType("f32", ("batch", "seq*2", 4))
    x = np.random.default_rng(0).standard_normal((3, 5, 8)).astype(np.float32)
    (got,) = session(m).run(None, {"x": x})
    np.testing.assert_array_equal(got, x.reshape(3, 10, 4))


UP2 = """
# nearest-neighbour upsampling by 2 of [batch, C, H, W], for any H and W
block up2(x) {
    n = x.shape[0]
    c = x.shape[1]
    h = x.shape[2]
    w = x.shape[3]
    y = x | reshape([n, c, h, w, 1])
    y = concat(y, y, axis=4) | reshape([n, c, h, w * 2])
    y = y | transpose([0, 1, 3, 2]) | reshape([n, c, w * 2, h, 1])
    y = concat(y, y, axis=4) | reshape([n, c, w * 2, h * 2])
    return y | transpose([0, 1, 3, 2])
}
"""

UNET = (
    UP2
    + """
block down(x, width: int) {
    skip = x | conv2d(width, kernel=3, padding=same) | relu
    return skip, skip | maxpool(2)
}

block up(x, skip) {
    width = skip.shape[1]
    h = x | up2 | conv2d(width, kernel=3, padding=same) | relu
    return concat(h, skip, axis=1) | conv2d(width, kernel=3, padding=same) | relu
}

model UNet {
    input image: f32[batch, 3, 16*H, 16*W]     # any size divisible by 2^depth
    h = image
    skips = []
    width = 4
    repeat 4 {
        skip, h = h | down(width)
        skips = skips + [skip]
        width = width * 2
    }
    h = h | conv2d(width, kernel=3, padding=same) | relu
    repeat i in 4 {
        h = up(h, skips[-1 - i])
    }
    output mask = h | conv2d(1, kernel=1)
}
"""
)


def test_upsampling_block_reads_its_input_size():
    m = ng.compile_source(UP2 + "model M {\n input x: f32[batch, 2, H, W]\n output o = x | up2\n}")
    assert out_type(m) == TensorType("f32", ("batch", 2, "H*2", "W*2"))
    s = session(m)
    for h, w in [(3, 5), (4, 2)]:
        x = np.random.default_rng(h).standard_normal((2, 2, h, w)).astype(np.float32)
        (got,) = s.run(None, {"x": x})
        np.testing.assert_array_equal(got, x.repeat(2, axis=2).repeat(2, axis=3))


def test_unet_of_depth_4_runs_at_two_sizes():
    m = ng.compile_source(UNET)
    assert out_type(m, "mask") == TensorType("f32", ("batch", 1, "H*16", "W*16"))
    s = session(m)
    for hw in [(32, 32), (48, 64)]:
        x = np.random.default_rng(0).standard_normal((2, 3, *hw)).astype(np.float32)
        (got,) = s.run(None, {"image": x})
        assert got.shape == (2, 1, *hw)
        assert np.isfinite(got).all()


def test_unet_compiles_at_two_static_sizes():
    for size in (32, 64):
        m = ng.compile_source(UNET.replace("16*H, 16*W", f"{size}, {size}"))
        assert out_type(m, "mask") == TensorType("f32", ("batch", 1, size, size))


HEAD = "model M {\n    input x: f32[batch, 16]\n"
IMG = "model M {\n    input x: f32[batch, 3, H, W]\n"

# (id, source, line, caret token, message part, hint part or None)
# fmt: off
MISTAKES = [
    ("unknown_attribute", HEAD + "    output o = x | dense(x.shap[1])\n}", 3, "shap", "unknown attribute '.shap'", "'shape'"),
    ("shape_of_a_number", HEAD + "    n = 3\n    output o = x | dense(n.shape[0])\n}", 4, "n.", "must be a tensor", None),
    ("index_out_of_range", HEAD + "    output o = x | dense(x.shape[2])\n}", 3, "2]", "index 2 is out of range", None),
    ("index_not_an_integer", HEAD + "    output o = x | dense(x.shape[1.5])\n}", 3, "1.5", "an index must be an integer", None),
    ("index_a_tensor", HEAD + "    output o = x[0]\n}", 3, "x[", "a tensor cannot be indexed", None),
    ("symbolic_dim_as_units", HEAD + "    output o = x | dense(x.shape[0])\n}", 3, "x.shape[0]", "symbolic dim 'batch'", "known only when the model runs"),
    ("true_division_of_a_symbolic_dim", IMG + "    output o = x | reshape([x.shape[0], 3, x.shape[2] / 2, -1])\n}", 3, "x.shape[2] /", "'/' of the symbolic dim 'H'", None),
    ("floor_division_of_tensors", HEAD + "    output o = x // 2\n}", 3, "x //", "'//' divides numbers and dims", None),
    ("floor_division_by_zero", HEAD + "    output o = x | dense(8 // 0)\n}", 3, "8 //", "division by zero", None),
    ("reshape_infers_two_dims", IMG + "    output o = x | reshape([x.shape[0], 3, x.shape[3], x.shape[2]])\n}", 3, "reshape", "can infer only one dim", "two steps"),
    ("reshape_dim_does_not_work_out", IMG + "    output o = x | reshape([x.shape[0], 3, x.shape[2], x.shape[3] * 2, 2])\n}", 3, "reshape", "works out to", None),
    ("zero_multiple_in_input_type", "model M {\n    input x: f32[batch, 0*H]\n    output o = x\n}", 2, "0*H", "a multiple of 0", None),
    ("c_comment", HEAD + "    output o = x | relu  // a note\n}", 3, "//", "'//' does not start a comment", "integer division"),
]
# fmt: on


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    assert_positioned(compile_error(src), src, line, token, message, hint)
