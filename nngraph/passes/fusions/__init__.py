"""Fusions as rules: a pattern, a check that says why a match does not apply, a rewrite.

One rule per module, named after its pass (`--disable fuse_gemm` is `fuse_gemm.py`); each makes
only default-domain ONNX operators. Every module here is loaded, so the rules never depend on
what was imported first, and a new fusion is its file plus its place in pipeline.py."""

from __future__ import annotations

import importlib
import pkgutil

from nngraph.passes.manager import Pass
from nngraph.passes.rule import Rule


def _load() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        rule = importlib.import_module(f"{__name__}.{info.name}").RULE
        if rule.name != info.name:
            raise ImportError(f"fusions/{info.name}.py holds the rule {rule.name!r}: name it after its pass")
        rules[rule.name] = rule
    return rules


#: Every fusion rule, by pass name.
RULES: dict[str, Rule] = _load()


def fusion(name: str) -> Pass:
    """The pass that applies the rule of fusions/<name>.py wherever it matches."""
    if name not in RULES:
        raise KeyError(f"no fusion {name!r} in nngraph/passes/fusions/ (there are {', '.join(RULES)})")
    return RULES[name].as_pass()
