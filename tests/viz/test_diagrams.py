"""Diagrams (issue #5): every example drawn, layout geometry checked, formats parsed, HTML run in Chromium."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from functools import cache

import pytest
from conftest import EXAMPLES, ROOT

from nngraph.compiler import compile_file, compile_source
from nngraph.errors import NNError
from nngraph.viz import draw, render
from nngraph.viz.layout import Layout
from nngraph.viz.model_view import build_view
from nngraph.viz.svg import make_diagram

TRAIN = "digits_cnn.nn:train"

#: Edge crossings the layout may make, per example and view (TB/LR alike); a layout change
#: that makes more fails here. Examples not listed may cross at most once per edge.
CROSSING_BOUNDS: dict[tuple[str, str], int] = {
    ("cnn.nn", "layers"): 0,
    ("cnn.nn", "ops"): 0,
    ("digits_cnn.nn", "layers"): 0,
    ("digits_cnn.nn", "ops"): 0,
    ("digits_gru.nn", "layers"): 0,
    ("digits_gru.nn", "ops"): 500,  # two directions unrolled over 8 steps, one box per operator
    ("digits_lstm.nn", "layers"): 0,
    ("digits_lstm.nn", "ops"): 130,
    ("digits_mlp.nn", "layers"): 0,
    ("digits_mlp.nn", "ops"): 0,
    ("mlp.nn", "layers"): 0,
    ("mlp.nn", "ops"): 0,
    ("residual_cnn.nn", "layers"): 0,
    ("residual_cnn.nn", "ops"): 0,
    ("resnet18.nn", "layers"): 0,
    ("resnet18.nn", "ops"): 0,
    ("transformer.nn", "layers"): 0,
    ("transformer.nn", "ops"): 0,
    (TRAIN, "layers"): 215,
    (TRAIN, "depth0"): 210,
}


@cache
def model(name: str):
    return compile_file(ROOT / "examples" / name)


@cache
def train_graph():
    return model("digits_cnn.nn").training("step").graph


def graph_and_rows(name: str):
    if name == TRAIN:
        return train_graph(), None
    m = model(name)
    return m.graph, m.rows


def _inside_segment(p, q, rect, eps: float = 0.5) -> bool:
    """Does segment p-q pass through the interior of rect (shrunk by eps)? Liang-Barsky clipping."""
    x, y, w, h = rect
    x0, y0, x1, y1 = x + eps, y + eps, x + w - eps, y + h - eps
    if x1 <= x0 or y1 <= y0:
        return False
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for pk, qk in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if pk == 0:
            if qk < 0:
                return False
        else:
            t = qk / pk
            if pk < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 > t1:
                return False
    return t1 - t0 > 1e-9


def check_geometry(lay: Layout) -> None:
    boxes = list(lay.boxes.items())
    # no two node boxes overlap
    by_x = sorted(boxes, key=lambda kv: kv[1][0])
    for i, (a, (ax, ay, aw, ah)) in enumerate(by_x):
        for b, (bx, by, bw, bh) in by_x[i + 1 :]:
            if bx >= ax + aw:
                break
            overlap = min(ax + aw, bx + bw) - max(ax, bx) > 0.5 and min(ay + ah, by + bh) - max(ay, by) > 0.5
            assert not overlap, f"boxes {a} and {b} overlap"
    # no route passes through a box it does not connect
    axis = 1 if lay.rankdir == "TB" else 0
    gaps = [(round(lo, 3), round(hi, 3)) for lo, hi in lay.gaps]
    for r in lay.routes:
        pts = r.points
        assert len(pts) >= 4 and len(pts) % 2 == 0
        for i in range(1, len(pts)):
            p, q = pts[i - 1], pts[i]
            if i % 2 == 0:  # drawn as a curve whose control points share the ends' v: it stays in the gap
                span = tuple(sorted((round(p[axis], 3), round(q[axis], 3))))
                assert span in gaps, f"edge {r.src}->{r.dst} crosses {span}, not a gap between layers"
            for name, rect in boxes:
                if name in (r.src, r.dst) and i in (1, len(pts) - 1):
                    continue  # the stubs that touch the boxes the edge connects
                assert not _inside_segment(p, q, rect), f"edge {r.src}->{r.dst} passes through {name}"


CASES = (
    [(e.name, "layers", "TB") for e in EXAMPLES]
    + [(e.name, "ops", "TB") for e in EXAMPLES]
    + [
        ("resnet18.nn", "depth0", "TB"),
        ("resnet18.nn", "layers", "LR"),
        ("transformer.nn", "ops", "LR"),
        (TRAIN, "layers", "TB"),
        (TRAIN, "depth0", "LR"),
    ]
)


def view_of(name: str, mode: str):
    graph, rows = graph_and_rows(name)
    kw = {"ops": True} if mode == "ops" else {"depth": 0} if mode == "depth0" else {}
    return build_view(graph, rows=rows, **kw)


@pytest.mark.parametrize("name,mode,rankdir", CASES)
def test_layout_geometry_and_crossings(name, mode, rankdir):
    view = view_of(name, mode)
    d = make_diagram(view, rankdir)
    lay = d.layout
    assert set(lay.boxes) == set(view.boxes)
    check_geometry(lay)
    bound = CROSSING_BOUNDS.get((name, mode), len(view.edges))
    assert lay.crossings <= bound, f"{lay.crossings} crossings, bound {bound}"


@pytest.mark.parametrize("example", [e.name for e in EXAMPLES] + [TRAIN])
def test_svg_of_every_example_is_xml_with_every_box(example, tmp_path):
    graph, rows = graph_and_rows(example)
    out = draw(graph, tmp_path / "d.svg", rows=rows)
    root = ET.fromstring(out.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ns = "{http://www.w3.org/2000/svg}"
    nodes = [g for g in root.iter(ns + "g") if "node" in (g.get("class") or "").split()]
    view = build_view(graph, rows=rows)
    assert sorted(g.get("data-id") for g in nodes) == sorted(view.boxes)
    texts = "".join(t.text or "" for t in root.iter(ns + "text"))
    assert f"{graph.param_count(True):,} trainable parameters" in texts
    assert "FLOPs" in texts


def test_view_folds_params_and_marks_inputs_outputs():
    m = model("residual_cnn.nn")
    view = build_view(m.graph, rows=m.rows)
    assert sum(b.params for b in view.boxes.values()) == m.param_count
    assert not any(m.graph.node(n)["op"] == "param" for b in view.boxes.values() for n in b.nodes)
    assert view.boxes["image"].kind == "input" and view.boxes["output:logits"].kind == "output"
    assert view.boxes["residual_1/conv2d_1"].params == 32 * 32 * 9
    assert view.boxes["residual_1/conv2d_1"].groups == ("residual_1",)
    assert "residual_1" in view.groups
    assert view.flops > 0


def test_depth_collapses_blocks():
    m = model("residual_cnn.nn")
    full = build_view(m.graph, rows=m.rows)
    top = build_view(m.graph, depth=0, rows=m.rows)
    assert top.boxes["residual_1"].kind == "block"
    assert top.boxes["residual_1"].params == sum(
        b.params for k, b in full.boxes.items() if k.startswith("residual_1/")
    )
    assert not top.groups and len(top.boxes) < len(full.boxes)
    assert build_view(m.graph, depth=1, rows=m.rows).boxes.keys() == full.boxes.keys()
    with pytest.raises(NNError):
        render(m.graph, "svg", depth=-1)


def test_training_view_has_backward_and_update_boxes():
    view = build_view(train_graph())
    kinds = {b.kind for b in view.boxes.values()}
    assert {"backward", "update", "layer", "input", "output"} <= kinds
    assert "grad/residual_1/conv2d_1" in view.boxes and "update/dense_1.weight" in view.boxes
    assert view.groups["grad"].label == "backward" and view.groups["update"].label == "optimizer"
    svg = render(train_graph(), "svg")
    assert "#ffe4e6" in svg and "#fef9c3" in svg  # backward and update colours


def test_resnet18_layout_is_fast():
    m = model("resnet18.nn")
    t = time.perf_counter()
    render(m.graph, "svg", rows=m.rows)
    assert time.perf_counter() - t < 2.0


def test_dot_output():
    m = model("transformer.nn")
    dot = render(m.graph, "dot", rows=m.rows, rankdir="LR")
    assert dot.startswith("digraph ") and dot.count("{") == dot.count("}")
    assert "rankdir=LR;" in dot and 'subgraph "cluster_encoder_1"' in dot
    for key in build_view(m.graph, rows=m.rows).boxes:
        assert f'"{key}" [label=' in dot
    assert re.search(r'-> "output:logits" \[label="f32\[batch, seq, 5\]"\]', dot)
    no_shapes = render(m.graph, "dot", shapes=False)
    assert 'label="f32' not in no_shapes.split("->", 1)[1]


def test_draw_picks_format_and_rejects_unknown(tmp_path):
    m = model("mlp.nn")
    for suffix in ("svg", "html", "dot"):
        p = draw(m.graph, tmp_path / f"m.{suffix}", rows=m.rows)
        assert p.stat().st_size > 100
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    with pytest.raises(NNError, match="format"):
        draw(m.graph, tmp_path / "m.jpg")
    with pytest.raises(NNError):
        render(m.graph, "svg", rankdir="BT")


def test_png(tmp_path, monkeypatch):
    m = model("mlp.nn")
    try:
        import cairosvg  # noqa: F401

        have = True
    except (ImportError, OSError):
        have = False
    if have:
        assert draw(m.graph, tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # as if it were not installed
    with pytest.raises(NNError, match="cairosvg"):
        render(m.graph, "png")


def test_cli_draw(tmp_path, capsys):
    from nngraph.cli import draw as draw_command
    from nngraph.cli.app import add_command

    p = argparse.ArgumentParser(prog="nngraph")
    add_command(p.add_subparsers(dest="command", required=True), draw_command)
    out = tmp_path / "r.svg"
    args = p.parse_args(["draw", str(ROOT / "examples/residual_cnn.nn"), "-o", str(out), "--depth", "0"])
    assert args.fn(args) == 0 and "residual_1" in out.read_text()
    assert "wrote" in capsys.readouterr().out
    out2 = tmp_path / "t.dot"
    args = p.parse_args(
        [
            "draw",
            str(ROOT / "examples/digits_cnn.nn"),
            "-o",
            str(out2),
            "--train",
            "--rankdir",
            "LR",
            "--no-shapes",
        ]
    )
    assert args.fn(args) == 0 and "grad/" in out2.read_text()
    args = p.parse_args(["draw", str(ROOT / "examples/mlp.nn"), "-o", str(tmp_path / "x.bmp")])
    with pytest.raises(NNError):
        args.fn(args)


def test_model_integration_calls(tmp_path):
    """What Model.draw and Model._repr_svg_ will call."""
    m = model("cnn.nn")
    assert draw(m.graph, tmp_path / "c.html", rows=m.rows, depth=0, rankdir="LR", shapes=False).exists()
    assert render(m.graph, "svg", rows=m.rows).startswith("<svg")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("example", ["resnet18.nn", TRAIN])
def test_html_in_headless_chromium(example, tmp_path):
    graph, rows = graph_and_rows(example)
    page = draw(graph, tmp_path / "page.html", rows=rows)
    html = page.read_text()
    assert "<link" not in html and not re.search(r"""(src|href)=["']?https?:""", html)
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,900",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("data-ready") == "1"
    assert attrs.get("data-errors") == "0"
    n = len(build_view(graph, rows=rows).boxes)
    assert attrs.get("data-nodes") == str(n) and attrs.get("data-nodes-shown") == str(n)
    assert "Uncaught" not in dom.stderr
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        flags + ["--hide-scrollbars", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Uncaught" not in r.stderr


def test_fused_nodes_say_which_rule_made_them():
    from nngraph.passes.pipeline import optimize

    m = compile_file(ROOT / "examples" / "cnn.nn")
    view = build_view(optimize(m.graph, 2), rows=m.rows)
    ops = [b.op for b in view.boxes.values()]
    assert any("fused: fold_batchnorm" in o for o in ops) and any("fused: fuse_gemm" in o for o in ops)


def test_notebook_html_is_isolated_in_an_iframe():
    import html as html_lib

    m = compile_source("model M {\n    input x: f32[batch, 4]\n    output y = x | dense(2)\n}\n")
    out = m._repr_html_()
    assert out.startswith("<iframe srcdoc=") and out.endswith("</iframe>")
    page = html_lib.unescape(out.split('srcdoc="', 1)[1].split('" style=', 1)[0])
    assert "<svg" in page and "dense_1" in page


def test_training_view_boxes_show_their_activation():
    """A batchnorm box in the training graph shows its output, not a running statistic; a backward
    box shows the gradient flowing on, not a weight gradient that also leaves it."""
    from nngraph.viz.model_view import shape_text

    c = compile_file(ROOT / "examples" / "digits_cnn.nn").training("step", level=0)
    boxes = build_view(c.graph, depth=1).boxes
    assert shape_text(boxes["residual_1/batchnorm_1"].type) == "f32[batch, 32, 8, 8]"
    assert shape_text(boxes["grad/dense_1"].type) == "f32[batch, 512]"


def test_a_layer_shared_around_another_keeps_both_arrows():
    """x | tied | tanh | tied: tanh_1 -> tied is a back edge whose reverse is an edge too; it is
    drawn (it was dropped, leaving tanh_1 a dead end)."""
    m = compile_source(
        "model T {\n    input x: f32[batch, 8]\n    tied = dense(8)\n"
        "    output y = x | tied | tanh | tied | tanh\n}\n"
    )
    view = build_view(m.graph, rows=m.rows)
    drawn = {(r.src, r.dst) for r in make_diagram(view).layout.routes}
    assert {(e.src, e.dst) for e in view.edges} <= drawn
    assert ("tanh_1", "tied") in drawn and ("tied", "tanh_1") in drawn


def test_flops_count_the_gemms_of_an_optimized_graph():
    from nngraph.passes.pipeline import optimize
    from nngraph.viz.model_view import node_flops

    m = compile_file(ROOT / "examples" / "mlp.nn")
    total = lambda g: sum(node_flops(g, n) for n in g.g)  # noqa: E731
    assert total(m.graph) > 0 and total(optimize(m.graph, 2)) == total(m.graph)


def test_draw_train_without_O_shows_no_fusions(tmp_path):
    def drawn(*opts: str) -> str:
        out = tmp_path / f"d{len(opts)}.svg"
        cmd = [
            sys.executable,
            "-m",
            "nngraph.cli",
            "draw",
            str(ROOT / "examples" / "digits_cnn.nn"),
            "--train",
        ]
        r = subprocess.run([*cmd, *opts, "-o", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return out.read_text()

    assert "fuse_batchnorm_train" not in drawn()
    assert "fuse_batchnorm_train" in drawn("-O", "2")


def test_a_block_named_like_the_optimizer_scope_still_collapses():
    """A block called `updater` has depth like any other (a scope test without its slash took it
    for the optimizer's update/ scope)."""
    depth = {}
    for name in ("updater", "stage"):
        m = compile_source(
            f"block {name}(x) {{\n    return x | dense(8) | relu\n}}\n"
            f"model M {{\n    input x: f32[batch, 8]\n    output y = x | {name} | {name}\n}}\n"
        )
        depth[name] = build_view(m.graph, rows=m.rows).max_depth
    assert depth["updater"] == depth["stage"] >= 1
