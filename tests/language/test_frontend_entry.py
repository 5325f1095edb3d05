"""The front end's public entry (nngraph.frontend): build_graph's BuiltModel, and the OpenModel the
training step adds its targets, loss and metrics through (it used to drive the builder's internals
and fabricate an ast.Call for each metric)."""

from __future__ import annotations

import numpy as np
import pytest

import nngraph as ng
from nngraph.core.ir import Graph
from nngraph.core.printer import format_graph
from nngraph.errors import NNError
from nngraph.frontend import BuiltModel, build_graph, load_text, open_model
from nngraph.training.spec import read_train

BODY = """    input x: f32[batch, 4]
    h = x | dense(8) | batchnorm | relu | dropout(0.5)
    output logits = h | dense(3)
"""
TRAINED = (
    "model M {\n" + BODY + "}\n"
    "train M {\n"
    "    data = digits\n"
    "    target label: i64[batch]\n"
    "    loss = cross_entropy(logits, label)\n"
    "    metrics = [top_k_accuracy(k=2)]\n"
    "}\n"
)
# The same loss and metric written as calls in a model: the graph the train section must give.
WRITTEN = (
    "model M {\n" + BODY + "    input label: i64[batch]\n"
    "    output loss = cross_entropy(logits, label)\n"
    "    output acc = top_k_accuracy(logits, label, k=2)\n"
    "}\n"
)


def nodes(graph: Graph) -> dict[str, tuple]:
    """Every node's op, inputs, attributes, type and value: a graph's content without spans or order."""
    out = {}
    for n in graph.g:
        d = graph.node(n)
        value = d.get("value")
        out[n] = (
            d["op"],
            tuple(d["inputs"]),
            repr(d["attrs"]),
            str(d["type"]),
            None if value is None else np.asarray(value).tobytes(),
        )
    return out


def open_trained(training: bool):
    prog = load_text(TRAINED, "t.nn")
    spec = read_train(prog.trains["M"])
    om = open_model(prog, "M", seed=3, training=training)
    for td in spec.targets:
        om.add_target(td)
    return om, spec


def test_build_graph_gives_the_model_compile_source_gives():
    built = build_graph(load_text(TRAINED, "t.nn"), seed=3)
    model = ng.compile_source(TRAINED, "t.nn", seed=3)
    assert isinstance(built, BuiltModel)
    assert format_graph(built.graph) == format_graph(model.graph)
    assert [(r.name, r.kind, r.params) for r in built.rows] == [
        (r.name, r.kind, r.params) for r in model.rows
    ]
    assert built.dims == {"batch"} and built.targets == set()
    assert built.noise == {} and built.state_updates == {}  # inference: dropout gone, running statistics


def test_a_training_build_reports_its_noise_inputs_and_buffer_updates():
    built = build_graph(load_text(TRAINED, "t.nn"), training=True)
    assert built.noise == {"dropout_1.noise": 0.5}
    assert set(built.state_updates) == {"batchnorm_1.running_mean", "batchnorm_1.running_var"}
    assert "dropout_1.noise" in built.graph.inputs


@pytest.mark.parametrize("training", [False, True])
def test_loss_and_metric_through_the_entry_match_the_same_calls_written_in_the_model(training):
    om, spec = open_trained(training)
    assert list(om.outputs) == ["logits"]  # the model's own outputs, before the loss
    loss = om.tensor(spec.loss, "the loss")
    (metric,) = spec.metrics
    acc = om.call(metric.name, ["logits", spec.targets[0].name], metric.args, metric.span, "metric")
    built = om.finish({**om.outputs, "loss": loss, "acc": acc})
    assert built.targets == {"label"}

    want = build_graph(load_text(WRITTEN, "w.nn"), seed=3, training=training).graph
    assert nodes(built.graph) == nodes(want)
    assert built.graph.outputs == want.outputs
    assert (loss, acc) == (want.outputs["loss"], want.outputs["acc"])


def test_the_eval_model_of_a_train_section_is_that_graph():
    """compile_training builds through the entry: its eval model holds the loss and metric nodes
    the written calls make."""
    c = ng.compile_source(TRAINED, "t.nn", seed=3).training("eval")
    want = build_graph(load_text(WRITTEN, "w.nn"), seed=3).graph
    assert nodes(c.graph) == nodes(want)
    assert c.interface.metrics == ["top_k_accuracy"]
    assert c.interface.outputs == ["loss", "top_k_accuracy"]


def test_a_metric_call_is_checked_and_reported_at_its_span():
    om, spec = open_trained(False)
    span = spec.metrics[0].span
    with pytest.raises(NNError) as e:
        om.call("accuracy", ["logits", "label"], {"k": 2}, span, "metric accuracy")
    assert e.value.message == "'accuracy' has no argument 'k'"
    assert (e.value.span.line, e.value.span.column) == (span.line, span.column)
    with pytest.raises(NNError, match="metric accuracy is the layer 'accuracy', not a tensor"):
        om.call("accuracy", [], {}, span, "metric accuracy")


def test_finish_refuses_a_target_that_reaches_no_output():
    om, _ = open_trained(False)
    with pytest.raises(NNError, match="target 'label' is never used"):
        om.finish()
