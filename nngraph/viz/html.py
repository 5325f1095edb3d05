"""One self-contained HTML page: inline SVG views and inline JS; nothing fetched from the network.

The page holds one pre-laid-out SVG per block depth (0 .. deepest, then "all
layers"), so expanding or collapsing blocks switches between exact layouts
instead of moving boxes in the browser. Pan (drag) and zoom (wheel), hover and
click for details (op, attributes, shapes, params, source file:line), search by
name, expand a collapsed block by clicking it, collapse a block by clicking its
group label, and +/- buttons for the depth.
"""

from __future__ import annotations

import json
from html import escape

from nngraph.viz.model_view import build_view, human
from nngraph.viz.svg import make_diagram, svg_document

CSS = """
*{box-sizing:border-box}
html,body{margin:0;height:100%;font-family:Helvetica,Arial,sans-serif;font-size:13px;color:#1f2937}
#bar{position:fixed;top:0;left:0;right:0;height:42px;display:flex;gap:8px;align-items:center;
 padding:6px 10px;background:#f8fafc;border-bottom:1px solid #cbd5e1;z-index:2}
#bar input{width:220px;padding:4px 6px}
#bar button{padding:4px 8px}
#bar .info{color:#475569}
#stage{position:fixed;top:42px;left:0;right:340px;bottom:0;overflow:hidden;cursor:grab;background:#fff}
#stage.dragging{cursor:grabbing}
#stage svg{display:block;width:100%;height:100%}
.view{display:none;width:100%;height:100%}
.view.on{display:block}
#panel{position:fixed;top:42px;right:0;width:340px;bottom:0;overflow:auto;padding:10px;
 border-left:1px solid #cbd5e1;background:#fcfcfd}
#panel h2{font-size:15px;margin:4px 0 8px}
#panel table{border-collapse:collapse;width:100%}
#panel td{border-bottom:1px solid #e5e7eb;padding:3px 4px;vertical-align:top;word-break:break-word}
#panel td:first-child{color:#64748b;width:80px}
#tip{position:fixed;pointer-events:none;background:#111827;color:#f9fafb;padding:4px 7px;border-radius:4px;
 font-size:12px;display:none;z-index:3;white-space:pre}
.nn .node{cursor:pointer}
.nn .node:hover rect{stroke-width:3}
.nn .node.sel rect{stroke:#111827;stroke-width:3}
.nn .node.hit rect{stroke:#f59e0b;stroke-width:4}
.nn.searching .node:not(.hit){opacity:.3}
.nn .edge.lit path{stroke:#111827;stroke-width:2.2}
.nn .group text{cursor:pointer}
.nn .node.block{cursor:zoom-in}
"""

JS = r"""
(function(){
  "use strict";
  var errors = [];
  window.addEventListener("error", function(e){ errors.push(String(e.message)); report(); });
  var DATA = JSON.parse(document.getElementById("nn-data").textContent);
  var stage = document.getElementById("stage");
  var views = Array.prototype.slice.call(document.querySelectorAll(".view"));
  var current = DATA.initial, boxes = {};
  var panel = document.getElementById("details"), tip = document.getElementById("tip");
  var search = document.getElementById("search"), info = document.getElementById("info");

  function svgOf(i){ return views[i].querySelector("svg"); }
  function vb(svg){ var b = svg.viewBox.baseVal; return {x:b.x, y:b.y, w:b.width, h:b.height}; }
  function setVb(svg, r){ svg.setAttribute("viewBox", r.x + " " + r.y + " " + r.w + " " + r.h); }
  function fit(){ var s = svgOf(current); setVb(s, s.__full); }
  function centerOn(el){
    var s = svgOf(current), bb = el.getBBox(), r = vb(s);
    var w = Math.max(r.w, bb.width * 3), h = Math.max(r.h, bb.height * 3);
    var scale = Math.min(1, Math.max(w / s.__full.w, h / s.__full.h));
    w = Math.min(s.__full.w, Math.max(bb.width * 4, s.__full.w * scale));
    h = w * (stage.clientHeight / Math.max(stage.clientWidth, 1));
    setVb(s, {x: bb.x + bb.width / 2 - w / 2, y: bb.y + bb.height / 2 - h / 2 + 64, w: w, h: h});
  }
  function show(i, focusId){
    views.forEach(function(v, k){ v.classList.toggle("on", k === i); });
    current = i;
    var s = svgOf(i);
    if (!s.__full) { var r = vb(s); s.__full = r; }
    fit();
    info.textContent = DATA.views[i].label + " · " + DATA.views[i].count + " boxes";
    runSearch();
    if (focusId) {
      var el = s.querySelector('[data-id="' + cssEsc(focusId) + '"]');
      if (!el) {
        var all = s.querySelectorAll(".node");
        for (var k = 0; k < all.length; k++) {
          if (all[k].getAttribute("data-id").indexOf(focusId + "/") === 0) { el = all[k]; break; }
        }
      }
      if (el) centerOn(el);
    }
  }
  function cssEsc(s){ return s.replace(/["\\]/g, "\\$&"); }
  function details(id){
    var d = DATA.views[current].nodes[id];
    if (!d) return;
    var rows = [["op", d.op], ["kind", d.kind], ["output", d.type], ["params", d.params.toLocaleString()]];
    if (d.buffers) rows.push(["buffers", d.buffers.toLocaleString()]);
    if (d.flops) rows.push(["FLOPs", d.flops.toLocaleString() + " (batch 1)"]);
    rows.push(["source", d.source.join("\n")]);
    var ak = Object.keys(d.attrs);
    if (ak.length) rows.push(["attributes", ak.map(function(k){ return k + " = " + JSON.stringify(d.attrs[k]); }).join("\n")]);
    if (d.folded.length) rows.push(["folded in", d.folded.join("\n")]);
    rows.push(["graph nodes", d.nodes.join("\n")]);
    rows.push(["id", d.id]);
    panel.innerHTML = "";
    var h = document.createElement("h2"); h.textContent = d.name; panel.appendChild(h);
    var t = document.createElement("table");
    rows.forEach(function(r){
      var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
      a.textContent = r[0]; b.textContent = r[1]; b.style.whiteSpace = "pre-wrap";
      tr.appendChild(a); tr.appendChild(b); t.appendChild(tr);
    });
    panel.appendChild(t);
  }
  function select(el){
    var s = svgOf(current);
    s.querySelectorAll(".sel").forEach(function(x){ x.classList.remove("sel"); });
    s.querySelectorAll(".lit").forEach(function(x){ x.classList.remove("lit"); });
    el.classList.add("sel");
    s.querySelectorAll('.edge[data-src="' + el.id + '"],.edge[data-dst="' + el.id + '"]').forEach(function(x){ x.classList.add("lit"); });
    details(el.id);
  }
  function runSearch(){
    var q = search.value.trim().toLowerCase(), s = svgOf(current), n = 0, first = null;
    s.classList.toggle("searching", q.length > 0);
    s.querySelectorAll(".node").forEach(function(el){
      var hit = q.length > 0 && (el.getAttribute("data-id").toLowerCase().indexOf(q) >= 0 ||
                                 el.getAttribute("data-name").toLowerCase().indexOf(q) >= 0);
      el.classList.toggle("hit", hit);
      if (hit) { n++; if (!first) first = el; }
    });
    document.getElementById("hits").textContent = q ? n + " found" : "";
    return first;
  }
  search.addEventListener("input", runSearch);
  search.addEventListener("keydown", function(e){
    if (e.key === "Enter") { var f = runSearch(); if (f) { centerOn(f); select(f); } }
  });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("more").addEventListener("click", function(){ if (current < views.length - 1) show(current + 1); });
  document.getElementById("less").addEventListener("click", function(){ if (current > 0) show(current - 1); });

  views.forEach(function(v, i){
    var s = v.querySelector("svg");
    s.removeAttribute("width"); s.removeAttribute("height");
    s.addEventListener("click", function(e){
      var node = e.target.closest(".node");
      if (node) {
        if (node.classList.contains("block") && i < views.length - 1) { show(i + 1, node.getAttribute("data-id")); return; }
        select(node); return;
      }
      var g = e.target.closest(".group");
      if (g && e.target.tagName === "text") {
        var gid = g.getAttribute("data-id"), parts = gid.split("/");
        if (parts[0] === "grad" || parts[0] === "update") parts = parts.slice(1);
        var depth = parts.length - 1;
        if (depth >= 0 && depth < i) show(depth, g.getAttribute("data-id"));
      }
    });
    s.addEventListener("mousemove", function(e){
      var node = e.target.closest(".node");
      if (!node) { tip.style.display = "none"; return; }
      var d = DATA.views[i].nodes[node.id];
      tip.textContent = d.name + " — " + d.op + (d.type ? "\n" + d.type : "") + (d.params ? "\nparams " + d.params.toLocaleString() : "") + (d.source.length ? "\n" + d.source[0] : "");
      tip.style.left = (e.clientX + 14) + "px"; tip.style.top = (e.clientY + 14) + "px"; tip.style.display = "block";
    });
    s.addEventListener("mouseleave", function(){ tip.style.display = "none"; });
  });

  var drag = null;
  stage.addEventListener("mousedown", function(e){
    drag = {x: e.clientX, y: e.clientY, r: vb(svgOf(current)), moved: false}; stage.classList.add("dragging");
  });
  window.addEventListener("mousemove", function(e){
    if (!drag) return;
    var s = svgOf(current), k = drag.r.w / Math.max(stage.clientWidth, 1), k2 = drag.r.h / Math.max(stage.clientHeight, 1);
    var f = Math.max(k, k2);
    setVb(s, {x: drag.r.x - (e.clientX - drag.x) * f, y: drag.r.y - (e.clientY - drag.y) * f, w: drag.r.w, h: drag.r.h});
  });
  window.addEventListener("mouseup", function(){ drag = null; stage.classList.remove("dragging"); });
  stage.addEventListener("wheel", function(e){
    e.preventDefault();
    var s = svgOf(current), r = vb(s), rect = stage.getBoundingClientRect();
    var f = Math.max(r.w / rect.width, r.h / rect.height);
    var ox = r.x + (r.w - rect.width * f) / 2, oy = r.y + (r.h - rect.height * f) / 2;
    var px = ox + (e.clientX - rect.left) * f, py = oy + (e.clientY - rect.top) * f;
    var z = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    setVb(s, {x: px - (px - r.x) * z, y: py - (py - r.y) * z, w: r.w * z, h: r.h * z});
  }, {passive: false});

  function report(){
    var s = svgOf(current), shown = 0;
    s.querySelectorAll(".node").forEach(function(el){ var b = el.getBBox(); if (b.width > 0 && b.height > 0) shown++; });
    document.body.setAttribute("data-nodes", String(s.querySelectorAll(".node").length));
    document.body.setAttribute("data-nodes-shown", String(shown));
    document.body.setAttribute("data-errors", String(errors.length));
    document.body.setAttribute("data-ready", "1");
  }
  show(current);
  report();
})();
"""


def render_html(graph, depth=None, rankdir="TB", shapes=True, rows=None, title=None, ops=False) -> str:
    first = build_view(graph, None, rows, ops, title)
    levels: list[int | None] = [] if ops else list(range(first.max_depth))
    levels.append(None)
    views, svgs = [], []
    for lv in levels:
        view = first if lv is None else build_view(graph, lv, rows, ops, title)
        d = make_diagram(view, rankdir, shapes)
        label = "all layers" if lv is None else f"depth {lv}"
        if ops:
            label = "all operators"
        views.append(
            {
                "label": label,
                "depth": lv,
                "count": len(view.boxes),
                "nodes": {d.ids[k]: b.details() for k, b in view.boxes.items()},
            }
        )
        svgs.append(svg_document(d, title))
    initial = len(levels) - 1 if depth is None else min(depth, len(levels) - 1)
    data = json.dumps({"views": views, "initial": initial}).replace("</", "<\\/")
    heading = first.title
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(heading)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        '<div id="bar"><b>' + escape(heading) + "</b>",
        f'<span class="info">{first.params:,} params · {human(first.flops)}FLOPs</span>',
        '<input id="search" type="search" placeholder="search by name (Enter to go)">',
        '<span id="hits" class="info"></span>',
        '<button id="less" title="collapse blocks one level">− collapse</button>',
        '<button id="more" title="expand blocks one level">+ expand</button>',
        '<button id="fit">fit</button><span id="info" class="info"></span></div>',
        '<div id="stage">',
    ]
    for i, s in enumerate(svgs):
        parts.append(f'<div class="view" data-view="{i}">{s}</div>')
    parts += [
        "</div>",
        '<div id="panel"><div id="details"><p>Click a box for its details; click a collapsed block to '
        "expand it, a group's label to collapse it. Drag to pan, wheel to zoom.</p></div></div>",
        '<div id="tip"></div>',
        f'<script type="application/json" id="nn-data">{data}</script>',
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
