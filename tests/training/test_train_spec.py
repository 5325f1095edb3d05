"""The train section: settings checked with positioned errors, defaults filled in; what
nngraph check finds in it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HEAD, OK_LINES, assert_caret, run_cli, tiny

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


def test_missing_train_section_points_at_the_model():
    m = ng.compile_source(HEAD + "    output o = x | dense(2)\n}", "m.nn")
    with pytest.raises(NNError) as info:
        m.train_spec()
    assert info.value.render().startswith("m.nn:1:7: error: model 'M' has no train section")


def test_loss_with_a_missing_tensor_says_how_many():
    src = HEAD + "    output o = x | dense(2)\n}\ntrain M {\n    data = digits\n    target t: i64[batch]\n"
    src += "    loss = cross_entropy(o)\n    optimizer = sgd(lr=0.1)\n}"
    with pytest.raises(NNError) as info:
        ng.compile_source(src, "m.nn").training("step")
    text = info.value.render()
    assert text.startswith("m.nn:8:12: error: the loss is 'cross_entropy' given 1 of its 2 input tensors"), (
        text
    )


def test_loss_that_reaches_no_parameter():
    src = (
        HEAD + "    output o = x | dense(3)\n}\ntrain M {\n    data = digits\n    target label: i64[batch]\n"
        "    loss = cross_entropy(x, label)\n}\n"
    )
    m = ng.compile_source(src, "m.nn")
    with pytest.raises(NNError) as info:
        m.training("grads")
    assert "does not depend on any parameter" in info.value.message
    assert info.value.span is not None and info.value.span.line == 8


@pytest.mark.parametrize(
    "line, says",
    [
        ("optimizer = sgd(lr=0.1, nesterov=true)", "needs a momentum"),
        ("clip_norm = 0", "clip_norm must be > 0"),
    ],
)
def test_settings_pytorch_refuses(line, says):
    """Regression: sgd(nesterov) without momentum and clip_norm <= 0 were accepted."""
    src = tiny("data = digits", "target label: i64[batch]", "loss = cross_entropy(logits, label)", line)
    with pytest.raises(ng.NNError) as info:
        ng.compile_source(src, "t.nn").train_spec()
    assert says in info.value.message


# ---- nngraph check on the train section ---------------------------------------------------


def replaced(index: int, line: str) -> list[str]:
    out = list(OK_LINES)
    out[index] = line
    return out


# (id, lines, line number of the fault in the file, token under the caret, message parts, hint)
# fmt: off
TRAIN_CASES = [
    ("unknown_loss", replaced(2, "loss = cross_entropi(logits, label)"), 9, "cross_entropi", ["cross_entropi"], "cross_entropy"),
    ("negative_lr", replaced(3, "optimizer = sgd(lr=-0.1)"), 10, "-0.1", ["'lr'", "must be >= 0"], None),
    ("momentum_1_5", replaced(3, "optimizer = sgd(momentum=1.5)"), 10, "1.5", ["'momentum'", "in [0, 1)"], None),
    ("beta1_2", replaced(3, "optimizer = adam(beta1=2.0)"), 10, "2.0", ["'beta1'", "in [0, 1)"], None),
    ("step_every_0", [*OK_LINES, "schedule = step(every=0)"], 12, "0", ["'every'", ">= 1"], None),
    ("step_every_float", [*OK_LINES, "schedule = step(every=2.5)"], 12, "2.5", ["'every'", "must be an integer"], None),
    ("negative_seed", [*OK_LINES, "seed = -5"], 12, "-5", ["'seed'", ">= 0"], None),
    (
        "early_stopping_unmeasured",
        [*OK_LINES, "metrics = [accuracy]", "early_stopping = early_stopping(metric=acc, patience=1)"],
        13, "acc", ["'acc'", "which is not measured"], "accuracy",
    ),
    ("top_k_over_classes", [*OK_LINES, "metrics = [top_k_accuracy(k=20)]"], 12, "top_k_accuracy", ["always 1"], None),
    ("missing_data_file", replaced(0, 'data = npz("missing.npz")'), 7, '"missing.npz"', ["missing.npz", "does not exist"], None),
]
# fmt: on


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_check_finds_train_section_mistakes(case, tmp_path, monkeypatch, capsys):
    """Regression: check passed these mistakes in the train section."""
    _, lines, line, token, messages, hint = case
    src = tiny(*lines)
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "check", "f.nn")
    assert rc == 1, out + err
    assert "train section ok" not in out and "Traceback" not in err
    for part in messages:
        assert part in err, err
    src_line = src.splitlines()[line - 1]
    assert_caret(err, "f.nn", src_line, line, token)
    if hint is not None:
        assert f"hint: did you mean '{hint}'?" in err, err


def test_misspelt_optimizer_setting_names_it_and_suggests(tmp_path, monkeypatch, capsys):
    """Regression: a misspelt optimizer setting was not named, with a suggestion."""
    (tmp_path / "f.nn").write_text(tiny(*replaced(3, "optimizer = sgd(lr=0.1, momentun=0.9)")))
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "check", "f.nn")
    assert rc == 1 and "train section ok" not in out
    assert "'sgd' has no setting 'momentun'" in err and "f.nn:10:" in err
    assert "hint: did you mean 'momentum'?" in err


def test_misspelt_optimizer_setting_caret_is_under_the_name(tmp_path, monkeypatch, capsys):
    """Regression: the caret of an unknown setting was not under its name."""
    src = tiny(*replaced(3, "optimizer = sgd(lr=0.1, momentun=0.9)"))
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "check", "f.nn")
    assert rc == 1
    assert_caret(err, "f.nn", src.splitlines()[9], 10, "momentun")


def test_check_says_the_train_section_is_ok(tmp_path, monkeypatch, capsys):
    """Regression: the counterpart of the mistakes above: check says so of a correct section."""
    np.savez(tmp_path / "d.npz", image=np.zeros((4, 64), np.float32), label=np.zeros(4, np.int64))
    monkeypatch.chdir(tmp_path)
    for name, lines in {
        "digits.nn": OK_LINES,
        "npz.nn": [*replaced(0, 'data = npz("d.npz")'), "metrics = [accuracy, top_k_accuracy(k=3)]"],
    }.items():
        (tmp_path / name).write_text(tiny(*lines))
        rc, out, err = run_cli(capsys, "check", name)
        assert rc == 0, err
        assert f"{name}: ok: model Tiny, 650 parameters; train section ok" in out


@pytest.mark.parametrize(
    "loss,target,token",
    [
        ("cross_entropy(logitz, label)", "label: i64[batch]", "logitz"),
        ("mse(logit, label)", "label: f32[batch, 10]", "logit"),
    ],
    ids=["cross_entropy", "mse"],
)
def test_misspelt_loss_tensor_is_undefined_with_a_hint(loss, target, token, tmp_path, monkeypatch, capsys):
    """Regression: a misspelt tensor in the loss was not an undefined tensor with a hint."""
    src = tiny("data = digits", f"target {target}", f"loss = {loss}")
    (tmp_path / "f.nn").write_text(src)
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "check", "f.nn")
    assert rc == 1 and "Traceback" not in err
    assert f"undefined tensor '{token}'" in err
    assert "hint: did you mean 'logits'?" in err
    assert_caret(err, "f.nn", src.splitlines()[8], 9, token + ",")


def test_check_builds_the_training_step_too(tmp_path, capsys):
    """Regression: check passed a model whose training step cannot be built."""
    src = (
        "model M {\n    input x: f32[batch, seq, 8]\n    output y = x | lstm(3) | last_step\n}\n"
        "train M {\n    data = digits\n    target t: f32[batch, 3]\n    loss = mse(y, t)\n    optimizer = sgd(lr=0.1)\n}\n"
    )
    (tmp_path / "m.nn").write_text(src)
    rc, _, err = run_cli(capsys, "check", tmp_path / "m.nn")
    assert rc == 1 and "needs a fixed sequence length" in err and ":3:" in err
