"""The train section: settings checked with positioned errors, defaults filled in."""

from __future__ import annotations

import pytest

import nngraph as ng
from nngraph.errors import NNError

MODEL = "model M {\n    input x: f32[batch, 4]\n    output logits = x | dense(3)\n}\n"


def spec(body: str):
    return ng.compile_source(MODEL + "train M {\n" + body + "\n}\n", "t.nn").train_spec()


BASE = "    data = digits\n    target label: i64[batch]\n    loss = cross_entropy(logits, label)\n"


def test_defaults_and_settings():
    s = spec(
        BASE
        + "    optimizer = sgd(lr=0.1, momentum=0.9, nesterov=true)\n    batch = 16\n    metrics = [accuracy]"
    )
    assert (s.optimizer.name, s.optimizer.args["lr"], s.optimizer.args["nesterov"]) == ("sgd", 0.1, True)
    assert s.batch == 16 and s.epochs == 10 and [m.name for m in s.metrics] == ["accuracy"]
    assert spec(BASE).optimizer.name == "adam"


@pytest.mark.parametrize(
    "body,line,message,hint",
    [
        (BASE + "    optimizer = adma(lr=0.1)", 9, "unknown optimizer 'adma'", "adam"),
        (BASE + "    optimizer = adam(lrate=0.1)", 9, "has no setting 'lrate'", "lr"),
        (BASE + "    batchsize = 3", 9, "unknown train setting 'batchsize'", "batch"),
        (BASE + "    batch = 0", 9, "'batch' must be an integer", None),
        (BASE + "    metrics = [acuracy]", 9, "unknown metric acuracy", "accuracy"),
        ("    data = digits\n    target label: i64[batch]", 5, "has no loss", None),
        (BASE + "    batch = 3\n    batch = 4", 10, "given twice", None),
        (BASE + "    data = npz()", 9, "given twice", None),
    ],
)
def test_setting_mistakes(body, line, message, hint):
    with pytest.raises(NNError) as e:
        spec(body)
    assert message in e.value.message, e.value.render()
    assert e.value.span.line == line
    if hint:
        assert hint in (e.value.hint or "")


def test_loss_must_be_scalar_and_target_used():
    src = MODEL + "train M {\n    data = digits\n    target label: i64[batch]\n    loss = logits\n}\n"
    with pytest.raises(NNError, match="the loss must be a scalar"):
        ng.compile_source(src, "t.nn").training()
    src = (
        MODEL
        + "train M {\n    data = digits\n    target label: i64[batch]\n    target extra: f32[batch]\n    loss = cross_entropy(logits, label)\n}\n"
    )
    with pytest.raises(NNError, match="target 'extra' is never used"):
        ng.compile_source(src, "t.nn").training()


def test_cross_entropy_label_mismatch():
    src = (
        MODEL
        + "train M {\n    data = digits\n    target label: f32[batch]\n    loss = cross_entropy(logits, label)\n}\n"
    )
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "t.nn").training()
    assert "integer class labels" in e.value.message and e.value.span.line == 8
