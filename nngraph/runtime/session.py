"""Run a compiled model with numpy in and out, on CPU or CUDA."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nngraph.errors import NNError

_NP_OF_ORT = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}
_SHORT = {
    np.float32: "f32",
    np.float64: "f64",
    np.float16: "f16",
    np.int64: "i64",
    np.int32: "i32",
    np.bool_: "bool",
}


class InputError(NNError):
    """A wrong input name, shape or dtype given to a Session."""


def available_devices() -> list[str]:
    """Devices this onnxruntime build has providers for. A listed CUDA provider can still fail
    to load (missing CUDA/cuDNN libraries): `Session.device` says where a session really runs."""
    return ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in ort.get_available_providers() else [])


def _providers(device: str) -> list[str]:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device in ("cuda", "auto"):
        if "cuda" not in available_devices():
            if device == "auto":
                return ["CPUExecutionProvider"]
            raise NNError(
                "CUDA was asked for, but this onnxruntime has no CUDA provider "
                f"(it has: {', '.join(ort.get_available_providers())})",
                expected="onnxruntime-gpu with a matching CUDA and cuDNN, or --device cpu",
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise NNError(f"unknown device '{device}'", expected="cpu, cuda or auto").suggest(
        device, ["cpu", "cuda", "auto"]
    )


class Session:
    """An onnxruntime session with checked numpy inputs; `device` says where it runs."""

    def __init__(self, model: str | os.PathLike | bytes, device: str = "cpu", threads: int | None = None):
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        if not isinstance(model, bytes):
            if not Path(model).is_file():
                raise NNError(f"model file not found: {model}")
            model = str(model)
        providers = _providers(device)
        if device == "auto":
            opts.log_severity_level = 4  # a CUDA provider that fails to load is not an error here
        try:
            self._sess = ort.InferenceSession(model, opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own types for a corrupt or unsupported file
            raise NNError(f"onnxruntime cannot load the model: {e}") from None
        self.device = "cuda" if self._sess.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise NNError(
                "CUDA was asked for, but onnxruntime could not start its CUDA provider "
                "(the CUDA or cuDNN libraries it needs are missing or do not match; its log above says which)",
                expected="CUDA and cuDNN versions matching this onnxruntime-gpu, or --device cpu",
            )
        self.inputs = {i.name: (tuple(i.shape), _NP_OF_ORT.get(i.type)) for i in self._sess.get_inputs()}
        self.outputs = [o.name for o in self._sess.get_outputs()]

    def _check(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        for name in feeds:
            if name not in self.inputs:
                raise InputError(
                    f"unknown input '{name}'", expected="inputs: " + ", ".join(self.inputs)
                ).suggest(name, self.inputs)
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise InputError(
                f"missing input '{missing[0]}' {self._want(missing[0])}",
                expected="inputs: " + ", ".join(self.inputs),
            )
        out: dict[str, np.ndarray] = {}
        bound: dict[str, int] = {}
        for name, value in feeds.items():
            shape, dtype = self.inputs[name]
            arr = np.asarray(value)
            if dtype is not None and arr.dtype != dtype:
                raise InputError(
                    f"input '{name}' has dtype {arr.dtype}, expected {self._want(name)}",
                    hint=f"convert it with .astype(np.{np.dtype(dtype).name})",
                )
            ok = arr.ndim == len(shape)
            for d, n in zip(shape, arr.shape, strict=False) if ok else ():
                if isinstance(d, int) and d != n:
                    ok = False
                elif isinstance(d, str):
                    if bound.setdefault(d, n) != n:
                        ok = False
            if not ok:
                raise InputError(f"input '{name}' has shape {list(arr.shape)}, expected {self._want(name)}")
            out[name] = arr
        return out

    def _want(self, name: str) -> str:
        shape, dtype = self.inputs[name]
        return f"{_SHORT.get(dtype, dtype)}[{', '.join(str(d) for d in shape)}]"

    def run(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Outputs by name."""
        results = self._sess.run(None, self._check(feeds))
        return dict(zip(self.outputs, results, strict=True))

    def __call__(self, **feeds: Any) -> dict[str, np.ndarray]:
        return self.run(feeds)
