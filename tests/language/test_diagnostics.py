"""Every user mistake gives file:line:col, the source line, a caret, what was expected,
and the nearest valid name where there is one: never a Python traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HEAD, assert_caret, run_cli

import nngraph as ng
from nngraph.errors import NNError

IMG = "model M {\n    input img: f32[batch, 1, 8, 8]\n"

# (id, source, line, token whose first occurrence on that line is the caret, message part, hint part or None)
# fmt: off
CASES = [
    ("unknown_layer", HEAD + "    y = x | dnse(4)\n    output o = y\n}", 3, "dnse", "unknown layer 'dnse'", "dense"),
    ("unknown_argument", HEAD + "    output o = x | dense(4, bais=false)\n}", 3, "bais", "has no argument 'bais'", "bias"),
    ("missing_argument", HEAD + "    output o = x | dense()\n}", 3, "dense", "missing its argument 'units'", None),
    ("wrong_argument_type", HEAD + '    output o = x | dense("ten")\n}', 3, '"ten"', "must be an integer", None),
    ("undefined_tensor", HEAD + "    output o = xx | relu\n}", 3, "xx", "undefined tensor 'xx'", "'x'"),
    ("duplicate_input", HEAD + "    input x: f32[batch, 16]\n    output o = x\n}", 3, "x", "duplicate name 'x'", None),
    ("unclosed_brace", HEAD + "    output o = x | relu\n", 1, "{", "'{' is never closed", None),
    ("stray_token", HEAD + "    output o = x | relu )\n}", 3, ")", "unmatched ')'", None),
    ("add_shape_mismatch", HEAD + "    a = x | dense(8)\n    output o = x + a\n}", 4, "x + a", "shape mismatch in '+'", None),
    ("conv_on_2d", HEAD + "    output o = x | conv2d(4, kernel=3)\n}", 3, "conv2d", "conv2d expects a 4-D", None),
    ("dense_on_4d", IMG + "    output o = img | dense(10)\n}", 3, "dense", "dense expects [batch, features]", "flatten"),
    ("cycle", HEAD + "    a = b | relu\n    b = a | relu\n    output o = b + x\n}", 3, "b", "cycle", None),
    ("self_reference", HEAD + "    y = y | relu\n    output o = y\n}", 3, "y |", "used in its own definition", None),
    ("used_before_assigned", HEAD + "    a = b | relu\n    b = x | relu\n    output o = a\n}", 3, "b", "used before it is assigned", None),
    ("unused_input", HEAD + "    input m: f32[batch, 4]\n    output o = x | relu\n}", 3, "m", "input 'm' is never used", None),
    ("output_never_assigned", HEAD + "    output o\n    y = x | relu\n}", 3, "o\n", "declared but never assigned", None),
    ("no_output", HEAD + "    y = x | relu\n}", 1, "M", "has no output", None),
    ("bad_dim_zero", "model M {\n    input x: f32[batch, 0]\n    output o = x\n}", 2, "0", "bad dim 0", None),
    ("bad_dim_float", "model M {\n    input x: f32[batch, 2.5]\n    output o = x\n}", 2, "2.5", "bad dim 2.5", None),
    ("unknown_dtype", "model M {\n    input x: f33[batch, 4]\n    output o = x\n}", 2, "f33", "unknown dtype 'f33'", "f32"),
    ("import_not_found", 'import "nope_nothing.nn"\n' + HEAD + "    output o = x\n}", 1, "import", "import not found", None),
    ("recursive_block", "block f(x) {\n    return x | f\n}\n" + HEAD + "    output o = x | f\n}", 2, "f", "calls itself", None),
    ("too_many_arguments", HEAD + "    output o = x | leaky_relu(0.1, 5)\n}", 3, "5", "too many arguments", None),
    ("argument_twice", HEAD + "    output o = x | dense(4, units=5)\n}", 3, "5", "given both by position and by name", None),
    ("keyword_argument_twice", HEAD + "    output o = x | dense(units=4, units=5)\n}", 3, "units=5", "given twice", None),
    ("block_without_return", "block b(x) {\n    y = x | relu\n}\n" + HEAD + "    output o = x | b\n}", 3, "}", "never returns", None),
    ("output_in_block", "block b(x) {\n    output y = x\n    return x\n}\n" + HEAD + "    output o = x | b\n}", 2, "y", "'output' belongs in a model", None),
    ("return_in_model", HEAD + "    return x\n}", 3, "return", "'return' belongs in a block", None),
    ("unknown_padding", IMG + "    output o = img | conv2d(4, kernel=3, padding=sme)\n}", 3, "sme", "unknown padding 'sme'", "same"),
    ("same_padding_stride", IMG + "    output o = img | conv2d(4, kernel=3, stride=2, padding=same)\n}", 3, "conv2d", "padding=same needs stride 1", None),
    ("repeat_zero", HEAD + "    h = x\n    repeat 0 { h = h | relu }\n    output o = h\n}", 4, "0", "repeat count must be a positive integer", None),
    ("matmul_inner", HEAD + "    output o = matmul(x, x)\n}", 3, "matmul", "matmul", None),
    ("concat_mismatch", HEAD + "    a = x | dense(8)\n    output o = concat(x, a, axis=0)\n}", 4, "concat", "concat", None),
    ("kernel_too_large", "model M {\n    input x: f32[batch, 1, 3, 3]\n    output o = x | conv2d(4, kernel=5)\n}", 3, "conv2d", "kernel", None),
    ("embedding_float_ids", HEAD + "    output o = x | embedding(10, 4)\n}", 3, "embedding", "integer ids", None),
    ("layer_as_tensor", HEAD + "    output o = dense(4)\n}", 3, "dense", "not a tensor", None),
    ("tensor_as_layer", HEAD + "    output o = x | x\n}", 3, "x\n", "is a tensor, not a layer", None),
    ("unknown_statement", HEAD + "    outptu o = x | relu\n}", 3, "outptu", "unknown statement 'outptu'", "output"),
    ("pipe_stage_operator", HEAD + "    output o = x | dense(4) * 2\n}", 3, "*", "cannot follow a pipeline stage", None),
    ("no_model", "block b(x) {\n    return x\n}\n", None, None, "defines no model", None),
    ("keyword_as_tensor_name", HEAD + "    model = x | relu\n    output o = model\n}", 3, "model", "'model' is a keyword and cannot be used as a name", "model_"),
    ("keyword_true_as_name", HEAD + "    true = x | relu\n    output o = true\n}", 3, "true", "'true' is a keyword", "true_"),
    ("keyword_as_argument", HEAD + "    output o = relu(input)\n}", 3, "input", "'input' is a keyword", "input_"),
    ("tensor_by_keyword", "block b(x, y) {\n    return x + y\n}\n" + HEAD + "    output o = b(x, y=x)\n}", 6, "y=", "'y' is a tensor input of block 'b'", "x, y in that order"),
    ("train_unknown_model", HEAD + "    output o = x | dense(2)\n}\ntrain Mm {\n    data = digits\n}", 5, "Mm", "train section for unknown model 'Mm'", "'M'"),
    ("return_in_repeat", "block b(x) {\n    repeat 2 {\n        return x\n    }\n}\n" + HEAD + "    output o = b(x)\n}", 3, "return", "'return' inside 'repeat'", "return after it"),
    ("groups_do_not_divide", IMG + "    output o = img | conv2d(4, kernel=3, groups=3)\n}", 3, "conv2d", "groups=3 must divide", None),
    ("shared_layer_shape", HEAD + "    enc = dense(4)\n    a = x | enc\n    output o = a | enc\n}", 5, "enc", "shared layer 'enc'", None),
    ("keyword_as_name", HEAD + "    input = x | relu\n    output o = x\n}", 3, "input", "is a keyword", None),
    ("positional_after_keyword", HEAD + "    output o = x | dense(units=4, true)\n}", 3, "true", "positional argument after a keyword", None),
    ("unknown_param_type", "block b(x, n: integer) {\n    return x\n}\n" + HEAD + "    output o = x | b(2)\n}", 1, "integer", "unknown parameter type 'integer'", "int"),
    ("builtin_name_assigned", HEAD + "    relu = x | relu\n    output o = relu\n}", 3, "relu", "name of a built-in layer", None),
    ("dropout_p_range", HEAD + "    output o = x | dropout(1.5)\n}", 3, "dropout", "dropout", None),
    ("reshape_count", HEAD + "    output o = x | reshape([batch, 5])\n}", 3, "reshape", "reshape", None),
    ("input_with_equals", "model M {\n    input x = f32[batch, 4]\n}", 2, "=", "declared with ':'", None),
    ("missing_comma", IMG + "    output o = img | conv2d(4 kernel=3)\n}", 3, "kernel", "missing ','", None),
    ("unclosed_paren", HEAD + "    h = relu(x\n    output o = h\n}", 3, "(", "'(' is never closed", None),
    ("bad_character", HEAD + "    output o = x @ x\n}", 3, "@", "unexpected character '@'", None),
    ("missing_input_tensor", HEAD + "    output o = add(x)\n}", 3, "add", "is 'add' given 1 of its 2 input tensors", "x | add"),
    ("undefined_in_block", "block b(x, n: int) {\n    return x | dense(m)\n}\n" + HEAD + "    output o = x | b(2)\n}", 2, "m", "undefined name 'm'", None),
    ("duplicate_block", "block b(x) {\n    return x\n}\nblock b(x) {\n    return x\n}\n" + HEAD + "    output o = x | b\n}", 4, "b(", "duplicate block 'b'", None),
    ("unknown_init", HEAD + "    output o = x | dense(4, init=he_unifrom)\n}", 3, "he_unifrom", "unknown value 'he_unifrom'", "he_uniform"),
    ("unclosed_brace_after_call", HEAD + "    output o = x | dense(4)\n", 1, "{", "'{' is never closed", None),
    ("unclosed_block_before_model", "block b(x) {\n    return x | dense(4)\n\n" + HEAD + "    output o = x | b\n}", 1, "{", "'{' is never closed", None),
    ("unclosed_paren_before_brace", HEAD + "    output o = x | softmax(axis=1\n}", 3, "(", "'(' is never closed", None),
    ("dangling_pipe", HEAD + "    output o = x | dense(4) |\n}", 3, "|\n", "'|' needs a layer after it", None),
    ("keyword_without_value", HEAD + "    output o = x | dense(units=)\n}", 3, ")", "'units=' has no value", None),
    ("empty_dims", "model M {\n    input x: f32[]\n    output o = x\n}", 2, "]", "'[]' is empty here", None),
    ("kernel_zero", IMG + "    output o = img | conv2d(4, kernel=0)\n}", 3, "conv2d", "kernel must be 1 or more", None),
    ("pool_stride_zero", IMG + "    output o = img | maxpool(2, stride=0)\n}", 3, "maxpool", "stride must be 1 or more", None),
    ("batchnorm_eps_zero", HEAD + "    output o = x | batchnorm(eps=0)\n}", 3, "0)", "'eps' of 'batchnorm' must be > 0", None),
    ("batchnorm_momentum", HEAD + "    output o = x | batchnorm(momentum=5)\n}", 3, "5", "must be in [0, 1]", None),
    ("layernorm_eps", HEAD + "    output o = x | layernorm(eps=-1)\n}", 3, "-1", "must be > 0", None),
    ("attention_heads_zero", "model M {\n    input x: f32[batch, 5, 8]\n    output o = attention(x, heads=0)\n}", 3, "0", "'heads' of 'attention' must be >= 1", None),
    ("dense_on_ints", "model M {\n    input x: i64[batch, 8]\n    output o = x | dense(4)\n}", 3, "dense", "dense needs a float input", "embedding"),
    ("reshape_as_written", HEAD + "    output o = x | reshape([batch, 3, 5])\n}", 3, "reshape", "into [batch, 3, 5]", None),
    ("concat_list", HEAD + "    output o = concat([x, x], axis=1)\n}", 3, "[x", "takes its tensors as separate arguments", None),
    ("c_comment", HEAD + "    output o = x | relu  // note\n}", 3, "/", "'//' does not start a comment", None),
    ("single_quotes", HEAD + "    output o = x | dense(4, init='zeros')\n}", 3, "'", "unexpected character", "double quotes"),
    ("matmul_operator", HEAD + "    output o = x @ x\n}", 3, "@", "unexpected character '@'", "matmul(a, b)"),
    ("pytorch_layer_name", HEAD + "    output o = x | Linear(4)\n}", 3, "Linear", "unknown layer 'Linear'", "'dense'"),
    ("pytorch_argument_name", HEAD + "    output o = x | softmax(dim=1)\n}", 3, "dim", "no argument 'dim'", "'axis'"),
    ("output_missing_equals", HEAD + "    output o x | relu\n}", 3, "x |", "expected '=' after 'output o'", None),
    ("lstm_on_2d", HEAD + "    output o = x | lstm(4)\n}", 3, "lstm", "lstm expects", "reshape([batch, 4, 4])"),
    ("tensor_after_arguments", "model M {\n    input x: f32[batch, 5, 8]\n    input m: f32[batch, 5]\n    output o = x | attention(4, m)\n}", 4, "m)", "got a tensor", "tensors come before"),
    ("keepdims_range", HEAD + "    output o = x | argmax(axis=1, keepdims=2)\n}", 3, "2)", "'keepdims' of 'argmax' must be in [0, 1]", None),
    ("python_true", HEAD + "    output o = x | dense(4, bias=True)\n}", 3, "True", "undefined name 'True'", "'true'"),
]
# fmt: on


def compile_error(src: str, file: str = "m.nn") -> NNError:
    with pytest.raises(NNError) as info:
        ng.compile_source(src, file)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mistake_is_positioned(case):
    _, src, line, token, message, hint = case
    err = compile_error(src)
    assert message in err.message, err.render()
    text = err.render()
    if line is None:
        return
    assert err.span is not None, text
    assert err.span.file == "m.nn"
    assert err.span.line == line, text
    src_line = src.splitlines()[line - 1]
    col = (src_line + "\n").index(token) + 1
    assert err.span.column == col, text
    # the rendering: file:line:col, the source line, and a caret under the column
    assert text.startswith(f"m.nn:{line}:{col}: error: ")
    lines = text.splitlines()
    assert lines[1].endswith(src_line)
    caret_line = lines[2]
    assert caret_line.index("^") - caret_line.index("|") - 2 == col - 1
    assert err.expected or err.hint, "every message says what was expected"
    if hint is not None:
        assert err.hint is not None and hint in err.hint, text


def test_shape_mismatch_names_both_shapes():
    err = compile_error(HEAD + "    a = x | dense(8)\n    output o = x + a\n}")
    assert "f32[batch,16]" in err.message and "f32[batch,8]" in err.message


def test_error_inside_block_notes_the_call_site():
    src = "block b(x) {\n    return x | conv2d(4, kernel=3)\n}\n" + HEAD + "    output o = x | b\n}"
    err = compile_error(src)
    assert err.span.line == 2
    assert any("in block 'b' applied at m.nn:6:20" in n for n in err.notes), err.render()


def test_cli_prints_positioned_error_without_traceback(tmp_path: Path):
    bad = tmp_path / "bad.nn"
    bad.write_text(HEAD + "    output o = x | dnse(4)\n}\n")
    r = subprocess.run(
        [sys.executable, "-m", "nngraph.cli", "check", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert f"{bad}:3:20: error: unknown layer 'dnse'" in r.stderr
    assert "did you mean 'dense'?" in r.stderr


def test_at_least_25_distinct_mistakes():
    assert len({c[0] for c in CASES}) >= 25


def test_caret_under_a_tab_indented_token():
    """The caret line copies the source line's tabs, so it lines up in a terminal."""
    err = compile_error("model M {\n\tinput x: f32[batch, 16]\n\toutput o = x | dnse(4)\n}")
    source, caret = err.render().splitlines()[1:3]
    assert source.endswith("\toutput o = x | dnse(4)")
    assert caret.split("| ", 1)[1] == "\t" + " " * len("output o = x | ") + "^^^^"


@pytest.mark.parametrize(
    "body,message",
    [
        ("output o = x | transpose(1)", "transpose"),
        ("output o = x | dense(99999999999999)", "more than nngraph can hold"),
        ("input m: bool[batch]\n output o = (m + 1) + x", "bool"),
        ("input i: i64[batch, 6]\n output o = (i * 2.5) + x", "truncated"),
    ],
)
def test_more_mistakes_are_positioned(body, message):
    with pytest.raises(ng.NNError) as e:
        _ = ng.compile_source(f"model M {{\n input x: f32[batch, 6]\n {body}\n}}", "m.nn").onnx
    assert message in e.value.message and e.value.span is not None


IMG_LAYER = "model M {\n    input img: f32[batch, 1, 8, 8]\n    output o = img | %s\n}\n"


@pytest.mark.parametrize(
    "layer,message",
    [
        ("conv2d(4, kernel=0)", "kernel must be 1 or more"),
        ("maxpool(0)", "kernel must be 1 or more"),
        ("conv2d(4, kernel=3, stride=0)", "stride must be 1 or more"),
    ],
    ids=["conv_kernel_0", "maxpool_0", "conv_stride_0"],
)
def test_zero_kernel_or_stride_fails_at_check(layer, message, tmp_path, capsys):
    """Regression: a zero kernel or stride passed check."""
    src = IMG_LAYER % layer
    (tmp_path / "m.nn").write_text(src)
    with pytest.raises(NNError) as info:
        ng.compile_source(src, "m.nn")
    assert message in info.value.message, info.value.render()
    rc, out, err = run_cli(capsys, "check", tmp_path / "m.nn")
    assert rc == 1 and "error:" in err and message in err and "ok:" not in out
    src_line = src.splitlines()[2]
    assert_caret(err, str(tmp_path / "m.nn"), src_line, 3, layer.split("(")[0])


def test_a_huge_repeat_count_is_refused_at_once(tmp_path, capsys):
    """Regression: repeat 100000000 hung instead of failing at once."""
    f = tmp_path / "r.nn"
    f.write_text(
        "model M {\n    input x: f32[batch, 4]\n    h = x\n    repeat 100000000 {\n        h = h | relu\n    }\n    output y = h\n}\n"
    )
    rc, _, err = run_cli(capsys, "check", f)
    assert rc == 1 and "r.nn:4:12" in err and "at most 10,000 repetitions" in err


def test_an_input_dim_too_large_for_any_tensor_is_positioned():
    """Regression: an input dim too large for any tensor was not checked."""
    src = "model M {\n    input x: f32[batch, 99999999999999999999999]\n    output y = x | relu\n}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "big.nn")
    text = str(e.value)
    assert "big.nn:2:25" in text and "larger than a tensor can be" in text


def test_dim_names_in_arithmetic_say_what_they_are():
    """Regression: a dim name in arithmetic (reshape([batch * 2, 4])) did not say it is a dim name."""
    src = "model M {\n    input x: f32[batch, 8]\n    output y = x | reshape([batch * 2, 4])\n}\n"
    with pytest.raises(NNError) as e:
        ng.compile_source(src, "r.nn")
    text = str(e.value.render())
    assert "r.nn:3:29" in text and "'batch' is a dim name, not a value" in text
    assert "reshape([-1, 4])" in text
