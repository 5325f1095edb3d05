"""The one-way flow of ../shared/DESIGN.md, checked on the source: no module imports a module of a
later stage (imports inside functions included), nothing imports in a cycle, and the runtime imports
nothing of the compiler."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
from conftest import ROOT

PKG = ROOT / "nngraph"

#: The stages in data-flow order; a module may import its own stage and earlier ones.
STAGES = [
    "syntax",
    "core",
    "ops",
    "layers",
    "frontend",
    "autodiff",
    "passes",
    "onnx",
    "training",
    "viz",
    "compiler",
    "cli",
]
#: Modules every stage may use: errors, atomic file writing, the version, the dtype table, the
#: step model's output names.
BASE = {"errors", "fileio", "version", "dtypes", "stepnames"}
#: The embeddable runtime: numpy and onnxruntime plus the base; the compiler may use it from
#: training on, and it uses nothing of the compiler.
RUNTIME = "runtime"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every nngraph module `path` imports, anywhere in it (functions included)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("nngraph")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("nngraph"):
                continue
            for a in node.names:  # `from nngraph.ops import registry` imports the submodule
                sub = f"{base}.{a.name}"
                is_module = (PKG.parent / (sub.replace(".", "/") + ".py")).exists() or (
                    PKG.parent / sub.replace(".", "/") / "__init__.py"
                ).exists()
                out.add(sub if is_module else base)
    return out - {mod}


def stage_of(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "compiler"  # `nngraph` itself is the public API


def rank(stage: str) -> int:
    return STAGES.index(stage)


def graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for path in PKG.rglob("*.py"):
        mod = module_name(path)
        g.add_node(mod)
        for target in imports_of(path):
            g.add_edge(mod, target)
    return g


def violations(g: nx.DiGraph) -> list[str]:
    bad = []
    for a, b in g.edges:
        sa, sb = stage_of(a), stage_of(b)
        if sb in BASE or sa == sb:
            continue
        if sa in BASE:
            bad.append(f"{a} (base) imports {b}")
        elif sa == RUNTIME:
            bad.append(f"{a} (runtime) imports the compiler's {b}")
        elif sb == RUNTIME:
            if sa not in STAGES or rank(sa) < rank("training"):
                bad.append(f"{a} imports the runtime ({b}) before the training stage")
        elif sa not in STAGES or sb not in STAGES:
            bad.append(f"{a} -> {b}: a stage missing from STAGES ({sa if sa not in STAGES else sb})")
        elif rank(sb) > rank(sa):
            bad.append(f"{a} ({sa}) imports {b} of the later stage {sb}")
    return sorted(bad)


def test_no_module_imports_a_later_stage():
    bad = violations(graph())
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(graph()))
    assert not cycles, "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:20])


def test_the_checker_sees_function_level_and_backward_imports(tmp_path, monkeypatch):
    """The walk must catch what it is for: an import inside a function, from an earlier stage to a
    later one, and a two-module cycle."""
    pkg = tmp_path / "nngraph"
    for rel, text in {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/a.py": "def f():\n    from nngraph.cli import main\n",
        "cli/__init__.py": "from nngraph.core import a\n",
        "runtime/__init__.py": "import nngraph.ops.x\n",
        "ops/__init__.py": "",
        "ops/x.py": "from nngraph.ops import y\n",
        "ops/y.py": "from nngraph.ops import x\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__), "PKG", pkg)
    g = graph()
    bad = violations(g)
    assert "nngraph.core.a (core) imports nngraph.cli of the later stage cli" in bad
    assert "nngraph.runtime (runtime) imports the compiler's nngraph.ops.x" in bad
    assert any(set(c) == {"nngraph.ops.x", "nngraph.ops.y"} for c in nx.simple_cycles(g))
    assert any(set(c) == {"nngraph.core.a", "nngraph.cli"} for c in nx.simple_cycles(g))
