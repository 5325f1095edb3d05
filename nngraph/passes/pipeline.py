"""The default pass pipeline for each -O level, in one place, top to bottom."""

from __future__ import annotations

import copy

from nngraph.core.ir import Graph
from nngraph.errors import NNError
from nngraph.passes.cleanup import CSE, DCE, FOLD, SIMPLIFY
from nngraph.passes.fusions import fusion
from nngraph.passes.manager import FixedPoint, Runner, Sequence, names

CLEANUP = FixedPoint([DCE, SIMPLIFY, CSE, FOLD])

# Before autodiff, on the forward graph and its loss (training graphs only): a fused
# operator made here brings its own closed-form gradient rule into the backward graph.
BEFORE_AUTODIFF = {
    0: Sequence([]),
    1: Sequence([]),
    2: Sequence(
        [
            fusion("fuse_softmax_cross_entropy"),
            fusion("fuse_batchnorm_train"),
            fusion("pool_before_relu"),
        ]
    ),
}

# After autodiff, on every graph that is lowered. A fusion is listed by its module's name
# (fusions/fuse_gemm.py); the name is also what --disable and --dump-after take.
PIPELINES = {
    0: Sequence([]),
    1: Sequence([CLEANUP]),
    2: Sequence(
        [
            CLEANUP,
            fusion("fold_batchnorm"),  # inference only: its check refuses training graphs
            fusion("fuse_conv_bias"),
            fusion("conv_as_gemm"),  # training only: needs a weight gradient
            fusion("fuse_gemm"),
            fusion("fuse_softmax_cross_entropy"),  # the loss of an eval graph
            CLEANUP,
        ]
    ),
}
DEFAULT_LEVEL = 2


def all_pass_names() -> list[str]:
    return sorted(set(names(PIPELINES[2])) | set(names(BEFORE_AUTODIFF[2])))


def before_autodiff(graph: Graph, level: int = DEFAULT_LEVEL, runner: Runner | None = None) -> None:
    """Rewrite the forward graph in place before its gradient is taken."""
    BEFORE_AUTODIFF[level].run(graph, runner or Runner())


def optimize(graph: Graph, level: int = DEFAULT_LEVEL, runner: Runner | None = None) -> Graph:
    """A new, optimized graph; the given one is left as it was."""
    if level not in PIPELINES:
        raise NNError(f"unknown optimization level -O{level}", expected="-O0, -O1 or -O2")
    runner = runner or Runner()
    for name in sorted(runner.disabled) + ([runner.dump_after] if runner.dump_after else []):
        _known(name)
    g = copy.deepcopy(graph)
    PIPELINES[level].run(g, runner)
    return g


def _known(name: str) -> None:
    """Refuse a pass name that no pipeline has (--disable, --dump-after), suggesting the nearest."""
    known = all_pass_names()
    if name not in known:
        raise NNError(f"no pass named '{name}'", expected="one of " + ", ".join(known)).suggest(name, known)
