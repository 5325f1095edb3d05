"""upsample, pixel_shuffle, pixel_unshuffle and the 3-D pools (issue 15) against torch.nn.Upsample,
PixelShuffle, PixelUnshuffle, MaxPool3d and AvgPool3d with the modules' own defaults: the forward to
1e-5 and the input's gradient to 1e-4 in f32, run in onnxruntime; and the mistakes a user makes,
named."""

from __future__ import annotations

import numpy as np
import pytest
from torch_parity import compare, run, sample

from nngraph.errors import NNError

torch = pytest.importorskip("torch")
nn = torch.nn


def up(scale, mode="nearest", align=None):
    return lambda: nn.Upsample(scale_factor=scale, mode=mode, align_corners=align)


#: (call, input shape, the torch module)
CASES = [
    ("upsample(2)", (2, 3, 4, 5), up(2.0)),
    ("upsample(3)", (1, 2, 5), up(3.0)),
    ("upsample(1.5)", (1, 2, 5, 3), up(1.5)),
    ("upsample(2, mode=nearest)", (1, 2, 2, 3, 2), up(2.0)),
    ("upsample(2, mode=bilinear)", (2, 3, 4, 5), up(2.0, "bilinear", False)),
    ("upsample(2.5, mode=bilinear)", (1, 2, 3, 4), up(2.5, "bilinear", False)),
    ("upsample(2, mode=bilinear, align_corners=true)", (1, 2, 4, 3), up(2.0, "bilinear", True)),
    ("upsample(0.5, mode=bilinear)", (1, 2, 6, 7), up(0.5, "bilinear", False)),
    (
        "upsample(2.3, mode=bilinear)",
        (1, 2, 10, 3),
        up(2.3, "bilinear", False),
    ),  # 23 rows, as torch (ONNX Resize: 22)
    ("upsample(3, mode=linear)", (2, 2, 6), up(3.0, "linear", False)),
    ("upsample(2, mode=linear, align_corners=true)", (1, 2, 5), up(2.0, "linear", True)),
    ("upsample(2, mode=trilinear)", (1, 2, 3, 2, 4), up(2.0, "trilinear", False)),
    ("upsample(1.5, mode=trilinear, align_corners=true)", (1, 1, 2, 3, 4), up(1.5, "trilinear", True)),
    ("pixel_shuffle(2)", (2, 8, 3, 4), lambda: nn.PixelShuffle(2)),
    ("pixel_shuffle(3)", (1, 18, 2, 2), lambda: nn.PixelShuffle(3)),
    ("pixel_unshuffle(2)", (2, 3, 4, 6), lambda: nn.PixelUnshuffle(2)),
    ("pixel_unshuffle(3)", (1, 2, 6, 3), lambda: nn.PixelUnshuffle(3)),
    ("maxpool3d(2)", (2, 3, 4, 4, 6), lambda: nn.MaxPool3d(2)),
    ("maxpool(3, stride=2, padding=1)", (1, 2, 5, 6, 5), lambda: nn.MaxPool3d(3, stride=2, padding=1)),
    ("maxpool3d([2, 3, 2], stride=1)", (1, 2, 4, 5, 3), lambda: nn.MaxPool3d((2, 3, 2), stride=1)),
    ("avgpool3d(2)", (2, 3, 4, 5, 4), lambda: nn.AvgPool3d(2)),
    ("avgpool(3, stride=2, padding=1)", (1, 2, 5, 6, 5), lambda: nn.AvgPool3d(3, stride=2, padding=1)),
]


@pytest.mark.parametrize("call,shape,module", CASES, ids=[c for c, _, _ in CASES])
def test_resampling_matches_torch(call, shape, module):
    x = sample(shape)
    if "maxpool" in call:  # ties, as ReLU zeros make them: the gradient goes to the first maximum
        x = np.round(x)
    compare(torch, module(), call, x)


def test_pixel_shuffle_and_upsample_take_a_symbolic_height_and_width():
    """pixel_shuffle / unshuffle run on any size; their gradients are declared as their input's."""
    x = sample((2, 8, 3, 4))
    got, _, _ = run("pixel_shuffle(2) | pixel_unshuffle(2)", x, dims="batch, 8, h, w")
    np.testing.assert_array_equal(got["y"], x)
    np.testing.assert_allclose(got["grad/x"], np.random.default_rng(1).standard_normal(x.shape), rtol=1e-6)


@pytest.mark.parametrize(
    "call,shape,message",
    [
        ("upsample(2, mode=bilinear)", (1, 2, 5), r"'upsample' mode=bilinear does not fit the 3-D input"),
        ("upsample(2, mode=trilinear)", (1, 2, 5, 4), r"mode=trilinear does not fit the 4-D input"),
        ("upsample(2, align_corners=true)", (1, 2, 5, 4), r"align_corners=true needs an interpolating mode"),
        ("upsample(2, mode=cubic)", (1, 2, 5, 4), r"unknown value 'cubic' for argument 'mode'"),
        ("upsample(0)", (1, 2, 5, 4), r"argument 'scale' of 'upsample' must be > 0"),
        ("upsample(0.1)", (1, 2, 5, 4), r"scale 0.1 shrinks f32\[batch,2,5,4\] to the spatial size \[0, 0\]"),
        ("upsample(2)", (2, 5), r"'upsample' expects a 3-D, 4-D or 5-D input"),
        ("pixel_shuffle(2)", (1, 6, 2, 2), r"the 6 channels of f32\[batch,6,2,2\] are not a multiple of"),
        ("pixel_shuffle(2)", (1, 8, 2), r"'pixel_shuffle' expects a 4-D input"),
        ("pixel_shuffle(0)", (1, 8, 2, 2), r"argument 'upscale_factor' of 'pixel_shuffle' must be >= 1"),
        ("pixel_unshuffle(2)", (1, 2, 4, 5), r"dim 3 of f32\[batch,2,4,5\] is 5, not a multiple of"),
        ("maxpool3d(2)", (1, 2, 4, 4), r"maxpool3d expects a 5-D \[batch, channels, depth, height, width\]"),
        ("avgpool(2)", (1, 2, 4, 4, 4, 4), r"avgpool expects a 3-D .*, 4-D .* or 5-D .* input, got 6-D"),
    ],
)
def test_mistakes_are_named(call, shape, message):
    with pytest.raises(NNError, match=message):
        run(call, sample(shape))


def test_upsample_needs_static_spatial_dims():
    with pytest.raises(NNError, match=r"'upsample' needs static spatial dims .* got f32\[batch,2,h,4\]"):
        run("upsample(2)", sample((1, 2, 3, 4)), dims="batch, 2, h, 4")
