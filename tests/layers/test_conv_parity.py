"""conv3d and conv_transpose1d/2d/3d (issue 15) against torch.nn.Conv3d and ConvTranspose1d/2d/3d:
the forward to 1e-5 and the gradients of the input, the weight and the bias to 1e-4 in f32, run in
onnxruntime, with nngraph's initial parameters copied into the module. The initial ones follow
torch's default: U(±1/sqrt(fan_in)), fan_in being the weight's dim 1 times the kernel (for a
transposed convolution: out_channels/groups times the kernel)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from torch_parity import compare, run, sample

from nngraph.errors import NNError

torch = pytest.importorskip("torch")
nn = torch.nn

#: (call, input shape, the torch module)
CASES = [
    ("conv3d(4, kernel=3)", (2, 3, 5, 6, 5), lambda: nn.Conv3d(3, 4, 3)),
    (
        "conv3d(4, kernel=[2, 3, 2], stride=[2, 1, 2], padding=1, dilation=[1, 2, 1], groups=2, bias=false)",
        (2, 2, 5, 6, 6),
        lambda: nn.Conv3d(
            2, 4, (2, 3, 2), stride=(2, 1, 2), padding=1, dilation=(1, 2, 1), groups=2, bias=False
        ),
    ),
    ("conv3d(2, kernel=3, padding=same)", (1, 2, 4, 4, 3), lambda: nn.Conv3d(2, 2, 3, padding="same")),
    ("conv_transpose1d(4, kernel=3)", (2, 3, 7), lambda: nn.ConvTranspose1d(3, 4, 3)),
    (
        "conv_transpose1d(6, kernel=4, stride=3, padding=2, output_padding=2, groups=3)",
        (2, 3, 5),
        lambda: nn.ConvTranspose1d(3, 6, 4, stride=3, padding=2, output_padding=2, groups=3),
    ),
    (  # output_padding of the stride or more: allowed by the dilation, zeros past the end
        "conv_transpose1d(2, kernel=3, dilation=3, output_padding=2, bias=false)",
        (1, 2, 4),
        lambda: nn.ConvTranspose1d(2, 2, 3, dilation=3, output_padding=2, bias=False),
    ),
    ("conv_transpose2d(3, kernel=3)", (2, 4, 5, 4), lambda: nn.ConvTranspose2d(4, 3, 3)),
    (
        "conv_transpose2d(4, kernel=[3, 2], stride=2, padding=1, output_padding=1)",
        (2, 3, 4, 5),
        lambda: nn.ConvTranspose2d(3, 4, (3, 2), stride=2, padding=1, output_padding=1),
    ),
    (
        "conv_transpose2d(6, kernel=3, stride=[1, 2], padding=[2, 0], output_padding=[0, 1], dilation=2, groups=2)",
        (1, 4, 5, 4),
        lambda: nn.ConvTranspose2d(
            4, 6, 3, stride=(1, 2), padding=(2, 0), output_padding=(0, 1), dilation=2, groups=2
        ),
    ),
    (
        "conv_transpose2d(2, kernel=2, stride=2, bias=false)",
        (3, 2, 3, 3),
        lambda: nn.ConvTranspose2d(2, 2, 2, stride=2, bias=False),
    ),
    (
        "conv_transpose3d(2, kernel=[2, 3, 2], stride=2, padding=[0, 1, 1], output_padding=[1, 0, 1])",
        (1, 3, 3, 3, 2),
        lambda: nn.ConvTranspose3d(3, 2, (2, 3, 2), stride=2, padding=(0, 1, 1), output_padding=(1, 0, 1)),
    ),
]


@pytest.mark.parametrize("call,shape,module", CASES, ids=[c for c, _, _ in CASES])
def test_conv_matches_torch(call, shape, module):
    torch.manual_seed(0)
    compare(torch, module(), call, sample(shape))


@pytest.mark.parametrize(
    "call,cin,weight,fan_in",
    [
        ("conv3d(8, kernel=3, groups=2)", 4, (8, 2, 3, 3, 3), 2 * 27),
        ("conv_transpose2d(12, kernel=3, groups=3)", 6, (6, 4, 3, 3), 4 * 9),
        ("conv_transpose1d(5, kernel=4)", 3, (3, 5, 4), 5 * 4),
    ],
)
def test_default_initialization_is_torchs(call, cin, weight, fan_in):
    """torch's kaiming_uniform(a=sqrt(5)) and bias bound, both 1/sqrt(fan_in); fan_in reads the
    weight's dim 1, which for ConvTranspose is out_channels/groups."""
    shape = (1, cin) + (6,) * (len(weight) - 2)
    _, values, _ = run(call, sample(shape))
    name = call.split("(")[0] + "_1"
    w, b = values[f"{name}.weight"], values[f"{name}.bias"]
    channels = int(call.split("(")[1].split(",")[0])
    assert w.shape == weight and b.shape == (channels,)
    bound = 1 / math.sqrt(fan_in)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.85 * bound
    assert np.abs(b).max() <= bound


def test_output_padding_must_be_smaller_than_stride_or_dilation():
    with pytest.raises(
        NNError,
        match=r"conv_transpose2d: output_padding \[2, 0\] must be smaller than the stride \[2, 2\] "
        r"or the dilation \[1, 1\] in each dim",
    ):
        run("conv_transpose2d(2, kernel=3, stride=2, output_padding=[2, 0])", sample((1, 2, 4, 4)))


def test_transposed_convolution_names_a_bad_input():
    with pytest.raises(
        NNError, match=r"conv_transpose2d expects a 4-D \[batch, channels, height, width\] input"
    ):
        run("conv_transpose2d(2, kernel=3)", sample((1, 2, 4)))
    with pytest.raises(NNError, match=r"groups=2 must divide both the input channels \(3\)"):
        run("conv_transpose1d(4, kernel=3, groups=2)", sample((1, 3, 4)))
    with pytest.raises(NNError, match=r"padding \[3, 3\] removes more than the output has"):
        run("conv_transpose1d(4, kernel=2, padding=3)", sample((1, 3, 3)))
    with pytest.raises(NNError, match=r"conv_transpose1d needs a fixed spatial size \(dim 2\)"):
        run("conv_transpose1d(4, kernel=3)", sample((1, 3, 4)), dims="batch, 3, len")


def test_conv3d_names_a_bad_input():
    with pytest.raises(
        NNError, match=r"conv3d expects a 5-D \[batch, channels, depth, height, width\] input, got 4-D"
    ):
        run("conv3d(2, kernel=3)", sample((1, 2, 4, 4)))


DECODER = """
model Decoder {
    input image: f32[batch, 64]
    s = image | reshape([batch, 4, 4, 4])
    a = s | conv_transpose2d(6, kernel=3, stride=2, padding=1, output_padding=1) | relu
    b = a | pixel_unshuffle(2) | conv2d(8, kernel=3, padding=1) | pixel_shuffle(2) | upsample(0.5, mode=bilinear)
    v = image | reshape([batch, 1, 4, 4, 4]) | conv3d(2, kernel=3, padding=1) | upsample(2) | maxpool3d(2)
    output logits = concat(b | flatten, v | flatten, axis=1) | dense(10)
}
train Decoder {
    data = digits
    target label: i64[batch]
    loss = cross_entropy(logits, label)
    optimizer = sgd(lr=0.1, momentum=0.9)
}
"""


def test_a_training_step_through_the_new_layers_runs_with_and_without_conv_as_gemm():
    """conv_as_gemm rewrites the transposed convolution's weight gradient (a conv_grad_weight of g
    against x) like any other, and declines the 3-D one; the step agrees either way."""
    import onnxruntime as ort

    import nngraph as ng
    from nngraph.passes.manager import Runner

    c = ng.compile_source(DECODER).training("step")
    rng = np.random.default_rng(0)
    feeds = {
        "image": rng.standard_normal((3, 64)).astype(np.float32),
        "label": rng.integers(0, 10, 3),
        "lr": np.array(0.1, np.float32),
        "step": np.array(1),
        **c.initial,
    }
    out = []
    for runner in (Runner(check=True), Runner(disabled={"conv_as_gemm"})):
        model = c.to_onnx(2, runner)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        out.append(dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True)))
    assert out[0].keys() == out[1].keys() and any("conv_transpose2d" in k for k in out[0])
    for k in out[0]:
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=1e-5, atol=1e-6, err_msg=k)
