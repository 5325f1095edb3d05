"""Run a compiled training-step model: parameters and optimizer state stay in OrtValues
(on the GPU under CUDA), bound with IOBinding; input and output buffers swap every step,
so a step copies nothing it need not. Needs only numpy and onnxruntime."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort

from nngraph.errors import NNError
from nngraph.runtime.session import ORT_ERRORS, _providers, open_session, run_bound, run_error
from nngraph.stepnames import next_name, state_of


def session_options(threads: int | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    # ORT_ENABLE_ALL adds NCHWc layout conversions around convolutions whose weights are
    # inputs, which slows the training step (../shared/notes): EXTENDED is the measured best.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return opts


class Stepper:
    """One training-step (or gradients, or eval) model with its state held between calls."""

    def __init__(
        self,
        model: bytes | str | os.PathLike,
        initial: dict[str, np.ndarray],
        device: str = "cpu",
        threads: int | None = None,
    ):
        self.sess = open_session(
            model if isinstance(model, bytes) else str(model),
            session_options(threads),
            _providers(device),
            quiet=device == "auto",
        )
        self.device = "cuda" if self.sess.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise NNError(
                "CUDA was asked for, but onnxruntime could not start its CUDA provider",
                expected="CUDA and cuDNN matching this onnxruntime-gpu, or --device cpu",
            )
        meta = self.sess.get_modelmeta().custom_metadata_map
        self.interface: dict[str, Any] = json.loads(meta["nngraph_training"])
        i = self.interface
        self.state_names: list[str] = i["params"] + i["buffers"] + i["slots"]
        self.reported = [o for o in i["outputs"] if state_of(o) is None]
        dev, idx = ("cuda", 0) if self.device == "cuda" else ("cpu", 0)
        # On the CPU an OrtValue shares the numpy array's memory, and the buffers are written
        # in turn: copy, so the caller's arrays (the graph's initial values) never change.
        missing = [n for n in self.state_names if n not in initial]
        if missing:
            raise NNError(
                f"no initial value for '{missing[0]}'", expected="a checkpoint with every parameter and slot"
            )
        self._cur = {
            n: ort.OrtValue.ortvalue_from_numpy(np.array(initial[n], order="C"), dev, idx)
            for n in self.state_names
        }
        self._nxt = {
            n: ort.OrtValue.ortvalue_from_numpy(np.empty_like(initial[n]), dev, idx) for n in self.state_names
        }
        # Two bindings made once, cur -> nxt and nxt -> cur: a step binds only its batch, runs, and
        # flips to the other, so state buffers are never rebound (and nothing is copied) per step.
        outputs = set(self.interface["outputs"])
        self._advanced = [n for n in self.state_names if next_name(n) in outputs]
        self._bindings = [self._binding(self._cur, self._nxt), self._binding(self._nxt, self._cur)]
        n_state_out = len(self._advanced)
        self._reported_at = range(n_state_out, n_state_out + len(self.reported))

    def _binding(self, src: dict[str, ort.OrtValue], dst: dict[str, ort.OrtValue]) -> ort.IOBinding:
        b = self.sess.io_binding()
        advanced = set(self._advanced)
        for n in self.state_names:  # state a step does not advance (a gradients model's parameters) stays put
            b.bind_ortvalue_input(n, src[n] if n in advanced else self._cur[n])
        for n in self._advanced:  # IOBinding returns outputs in the order they were bound
            b.bind_ortvalue_output(next_name(n), dst[n])
        for o in self.reported:
            b.bind_output(o, "cpu")
        return b

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One step: `feeds` holds the batch, targets, lr, step and noise; returns loss and metrics
        (and gradients for a gradients model). The state advances to the step's `next/` outputs."""
        b = self._bindings[0]
        for name, arr in feeds.items():
            b.bind_cpu_input(name, np.ascontiguousarray(arr))
        try:
            run_bound(self.sess, b)
        except ORT_ERRORS as e:
            raise run_error(e, "the training step") from None
        outs = b.get_outputs()
        # copies: a reused binding writes its next run's outputs into the same host buffers
        result = {
            name: np.array(outs[i].numpy()) for name, i in zip(self.reported, self._reported_at, strict=True)
        }
        self._bindings.reverse()
        for n in self._advanced:
            self._cur[n], self._nxt[n] = self._nxt[n], self._cur[n]
        return result

    def state(self) -> dict[str, np.ndarray]:
        """A host copy of every parameter, buffer and optimizer slot."""
        return {n: self._cur[n].numpy().copy() for n in self.state_names}
