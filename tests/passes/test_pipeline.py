"""The pipeline: its levels, its pass names (what --disable and --dump-after take), that every
fusion file is in it, and that passes emit only default-domain ONNX and leave their input alone."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import nngraph as ng
from nngraph.passes import fusions
from nngraph.passes.manager import names
from nngraph.passes.pipeline import BEFORE_AUTODIFF, PIPELINES, all_pass_names


def test_passes_emit_only_default_domain_and_leave_the_input_graph_alone():
    m = ng.compile_file(ROOT / "examples" / "digits_cnn.nn")
    snapshot = copy.deepcopy(m.graph)
    for model in (m.to_onnx(2), m.training("step").to_onnx(2)):
        assert all(n.domain == "" for n in model.graph.node)
    assert set(snapshot.g) == set(m.graph.g)
    w = "conv2d_1.weight"
    assert np.array_equal(snapshot.node(w)["value"], m.graph.node(w)["value"])


def test_pipeline_levels_are_ordered():
    assert not PIPELINES[0].steps
    assert set(all_pass_names()) >= {
        "dce",
        "cse",
        "fold_constants",
        "simplify",
        "fuse_gemm",
        "fold_batchnorm",
    }


def test_pass_names_are_the_ones_the_cli_takes():
    """--disable and --dump-after take these names, and the ONNX node names of fused nodes hold
    them: renaming a fusion file renames its pass. (A new fusion adds a name; none goes.)"""
    assert set(all_pass_names()) >= {
        "conv_as_gemm",
        "cse",
        "dce",
        "fold_batchnorm",
        "fold_constants",
        "fuse_batchnorm_train",
        "fuse_conv_bias",
        "fuse_gemm",
        "fuse_softmax_cross_entropy",
        "pool_before_relu",
        "simplify",
    }
    before = set(names(BEFORE_AUTODIFF[2]))
    assert before >= {"fuse_softmax_cross_entropy", "fuse_batchnorm_train", "pool_before_relu"}


def test_every_fusion_file_is_a_rule_named_after_it_and_in_the_pipeline():
    files = sorted(p.stem for p in Path(fusions.__file__).parent.glob("*.py") if p.stem != "__init__")
    assert sorted(fusions.RULES) == files
    assert all(rule.name == name for name, rule in fusions.RULES.items())
    assert set(files) <= set(all_pass_names())


def test_an_unknown_fusion_name_in_the_pipeline_fails_at_import_and_lists_the_known():
    with pytest.raises(KeyError, match="no fusion 'fuse_gem' .*fuse_gemm"):
        fusions.fusion("fuse_gem")
