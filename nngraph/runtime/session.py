"""Run a compiled model with numpy in and out, on CPU or CUDA."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nngraph.errors import NNError
from nngraph.runtime.bundle import Bundle, read_bundle


def _kind_hint(model: str | bytes) -> str | None:
    """What a file that is not an ONNX model probably is."""
    if isinstance(model, bytes):
        return None
    suffix = Path(model).suffix.lower()
    if suffix == ".nn":
        return f"{model} is nngraph source: compile it first (nngraph compile {model} -o model.onnx)"
    if suffix in (".npz", ".npy"):
        return f"{model} holds arrays (a checkpoint or data), not a model; give the .onnx beside it"
    return None


class BoundRunError(Exception):
    """A failed IOBinding run: onnxruntime raises a bare RuntimeError("Error in execution: ...")."""


#: What onnxruntime raises when a run fails (its own classes, and ours for bound runs).
ORT_ERRORS = (BoundRunError,) + tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, n)
    for n in ("InvalidArgument", "Fail", "RuntimeException", "EPFail")
    if hasattr(ort.capi.onnxruntime_pybind11_state, n)
)


#: Run options that keep onnxruntime's own log line for a failed kernel off the terminal: the
#: failure is raised, and run_error reports it once, with the node and a hint.
QUIET_RUN = ort.RunOptions()
QUIET_RUN.log_severity_level = 4


def run_bound(sess: ort.InferenceSession, binding: Any) -> None:
    """sess.run_with_iobinding, its failures as BoundRunError (so ORT_ERRORS catches them)."""
    try:
        sess.run_with_iobinding(binding, QUIET_RUN)
    except RuntimeError as e:
        if not str(e).startswith("Error in execution"):
            raise
        raise BoundRunError(str(e).removeprefix("Error in execution: ")) from None


def run_error(e: Exception, what: str = "the model") -> NNError:
    """onnxruntime's failure as one clear line: the node and its status message, and what
    usually causes it (a Gather index out of range is an embedding id outside the table)."""
    text = str(e)
    node = re.search(r"running (\w+) node\. Name:'([^']*)'", text)
    msg = text.split("Status Message:", 1)[1].strip() if "Status Message:" in text else text.split(" : ")[-1]
    where = f" in its {node.group(1)} node '{node.group(2)}'" if node else ""
    hint = None
    if node and node.group(1) == "Gather" and "out of" in msg:
        hint = (
            "an id fed to an embedding lies outside its table: ids must be in 0..rows-1 "
            "(a negative id shows as idx=rows)"
        )
    return NNError(f"onnxruntime could not run {what}{where}: {msg.splitlines()[0]}", hint=hint)


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


_NOT_IMPLEMENTED = getattr(ort.capi.onnxruntime_pybind11_state, "NotImplemented", RuntimeError)


def open_session(model: Any, opts: ort.SessionOptions, providers: list, quiet: bool) -> ort.InferenceSession:
    """An InferenceSession; `quiet` (device "auto") hides onnxruntime's own log while it tries
    CUDA, because a CUDA provider that fails to load is no error there: the CPU runs instead."""
    try:
        if not quiet:
            return ort.InferenceSession(model, opts, providers=providers)
        opts.log_severity_level = 4
        ort.set_default_logger_severity(4)
        try:
            return ort.InferenceSession(model, opts, providers=providers)
        finally:
            ort.set_default_logger_severity(2)  # onnxruntime's default: warnings and above
    except _NOT_IMPLEMENTED as e:
        raise _no_kernel(e) from None


def _no_kernel(e: Exception) -> NNError | Exception:
    """A model onnxruntime has no kernel for (on CPU most often an f64 or f16 operator)."""
    found = re.search(r"implementation for (\w+)\((\d+)\) node with name '([^']*)'", str(e))
    if not found:
        return e
    op, _, node = found.groups()
    return NNError(
        f"onnxruntime has no {op} kernel for this model's node '{node}' on this device",
        expected="a dtype onnxruntime implements it for: f32 everywhere; f64, f16 and integers only for some operators",
        hint="declare the model's float inputs f32 (its parameters follow them)",
    )


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
    """An onnxruntime session with checked inputs; `device` says where it runs.

    ``model`` is an .onnx path (a plain compiled model or a bundle) or its bytes. ``threads``
    sets onnxruntime's intra-op threads (None: its default, one per core), ``inter_threads``
    its inter-op threads. ``device`` is "cpu" (default), "cuda" (an error naming the cause when
    onnxruntime cannot run CUDA here; never a silent fallback) or "auto" (CUDA when it works,
    else the CPU). ``cuda_graph=True`` (CUDA only) captures the model as a CUDA graph on the
    first run and replays it: every later run must have the same input shapes.
    ``Session.bundle`` holds the bundle metadata (labels, preprocessing), None for a plain model.
    """

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        device: str = "cpu",
        threads: int | None = None,
        *,
        inter_threads: int | None = None,
        cuda_graph: bool = False,
    ):
        opts = ort.SessionOptions()
        if not isinstance(model, (str, bytes, os.PathLike)):
            raise NNError(f"Session takes an .onnx path or the model's bytes, got {type(model).__name__}")
        if not isinstance(device, str):
            raise NNError(f"device={device!r} is not a device", expected="'cpu', 'cuda' or 'auto'")
        for what, n in (("threads", threads), ("inter_threads", inter_threads)):
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1024):
                raise NNError(
                    f"{what}={n!r} is not a thread count",
                    expected="an integer from 1 to 1024, or None (one per core)",
                )
        if threads:
            opts.intra_op_num_threads = threads
        if inter_threads:
            opts.inter_op_num_threads = inter_threads
        if not isinstance(model, bytes):
            if not Path(model).is_file():
                raise NNError(f"model file not found: {model}")
            model = str(model)
        providers: list[Any] = list(_providers(device))
        if cuda_graph:
            if device == "cpu":
                raise NNError(
                    "cuda_graph=True needs device='cuda': CUDA graphs exist only on the GPU",
                    expected="Session(model, device='cuda', cuda_graph=True), or cuda_graph=False",
                )
            if "CUDAExecutionProvider" in providers:
                providers[0] = ("CUDAExecutionProvider", {"enable_cuda_graph": "1"})
        try:
            self._sess = open_session(model, opts, providers, quiet=device == "auto")
        except NNError:
            raise
        except Exception as e:  # onnxruntime raises its own types for a corrupt or unsupported file
            raise NNError(f"onnxruntime cannot load the model: {e}", hint=_kind_hint(model)) from None
        self.device = "cuda" if self._sess.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise NNError(
                "CUDA was asked for, but onnxruntime could not start its CUDA provider "
                "(the CUDA or cuDNN libraries it needs are missing or do not match; its log above says which)",
                expected="CUDA and cuDNN versions matching this onnxruntime-gpu, or --device cpu",
            )
        if cuda_graph and self.device != "cuda":
            raise NNError(
                "cuda_graph=True, but this session runs on the CPU (device='auto' found no working CUDA)",
                expected="a working CUDA provider, or cuda_graph=False",
            )
        self.threads = threads
        self.cuda_graph = cuda_graph
        self.inputs = {i.name: (tuple(i.shape), _NP_OF_ORT.get(i.type)) for i in self._sess.get_inputs()}
        self.outputs = [o.name for o in self._sess.get_outputs()]
        self._out_shapes = {o.name: tuple(o.shape) for o in self._sess.get_outputs()}
        self.metadata: dict[str, str] = dict(self._sess.get_modelmeta().custom_metadata_map)
        self.bundle: Bundle | None = read_bundle(self.metadata)
        self._graph: tuple[Any, dict[str, Any], dict[str, Any]] | None = None  # binding, inputs, outputs

    # ---- inputs --------------------------------------------------------------------------

    def _check(self, feeds: dict[str, Any]) -> dict[str, Any]:
        return self._check_dims(feeds)[0]

    def _check_dims(self, feeds: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        if not isinstance(feeds, dict):
            raise InputError(
                f"run() takes the inputs by name, got {type(feeds).__name__}",
                expected="a dict such as {" + ", ".join(f"'{n}': array" for n in self.inputs) + "}",
            )
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
        out: dict[str, Any] = {}
        bound: dict[str, int] = {}
        for name, value in feeds.items():
            shape, dtype = self.inputs[name]
            if isinstance(value, ort.OrtValue):  # already on a device: check without copying
                arr, have_shape, have_dtype = value, tuple(value.shape()), _NP_OF_ORT.get(value.data_type())
            else:
                try:
                    arr = np.asarray(value)
                except ValueError as e:  # a ragged list
                    raise InputError(f"input '{name}' is not a rectangular array: {e}") from None
                if isinstance(value, (list, tuple)) and arr.dtype.kind in "fiub" and dtype is not None:
                    arr = (
                        arr.astype(dtype) if np.can_cast(arr.dtype, dtype, "same_kind") else arr
                    )  # plain lists
                have_shape, have_dtype = arr.shape, arr.dtype
            if dtype is not None and have_dtype != dtype:
                raise InputError(
                    f"input '{name}' has dtype {np.dtype(have_dtype) if have_dtype else value.data_type()}, "
                    f"expected {self._want(name)}",
                    hint=f"convert it with .astype(np.{np.dtype(dtype).name})",
                )
            ok = len(have_shape) == len(shape)
            for d, n in zip(shape, have_shape, strict=False) if ok else ():
                if isinstance(d, int) and d != n:
                    ok = False
                elif isinstance(d, str):
                    if bound.setdefault(d, n) != n:
                        ok = False
            if not ok:
                raise InputError(f"input '{name}' has shape {list(have_shape)}, expected {self._want(name)}")
            out[name] = arr
        return out, bound

    def _want(self, name: str) -> str:
        shape, dtype = self.inputs[name]
        return f"{_SHORT.get(dtype, dtype)}[{', '.join(str(d) for d in shape)}]"

    def prepare(self, name: str, raw: Any) -> np.ndarray:
        """A raw input as the model wants it: the bundle's preprocessing (scale, mean, std) applied
        and cast to the input's dtype; for a plain model, only the cast."""
        if self.bundle is not None:
            return self.bundle.prepare(name, raw)
        if name not in self.inputs:
            raise InputError(f"unknown input '{name}'", expected="inputs: " + ", ".join(self.inputs)).suggest(
                name, self.inputs
            )
        dtype = self.inputs[name][1] or np.float32
        return np.asarray(raw).astype(dtype, copy=False)

    def ortvalue(self, array: np.ndarray) -> ort.OrtValue:
        """A copy of ``array`` on this session's device, to feed without a host copy per run."""
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0)

    # ---- running -------------------------------------------------------------------------

    def run(self, feeds: dict[str, Any], keep_on_device: bool = False) -> dict[str, Any]:
        """Outputs by name, as numpy arrays; with ``keep_on_device`` as OrtValues left on the
        session's device (IOBinding: no copy to the host; ``.numpy()`` copies one). Inputs may
        be numpy arrays or OrtValues (e.g. from ``ortvalue`` or an earlier run's outputs)."""
        checked, dims = self._check_dims(feeds)
        try:
            return self._run(checked, dims, keep_on_device)
        except ORT_ERRORS as e:
            raise run_error(e) from None

    def _run(self, checked: dict[str, Any], dims: dict[str, int], keep_on_device: bool) -> dict[str, Any]:
        if self.cuda_graph:
            values = self._run_graph(checked, dims)
            return values if keep_on_device else {k: v.numpy() for k, v in values.items()}
        if not keep_on_device and not any(isinstance(v, ort.OrtValue) for v in checked.values()):
            results = self._sess.run(None, checked, QUIET_RUN)
            return dict(zip(self.outputs, results, strict=True))
        b = self._sess.io_binding()
        for name, value in checked.items():
            if isinstance(value, ort.OrtValue):
                b.bind_ortvalue_input(name, value)
            else:
                b.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in self.outputs:
            b.bind_output(name, self.device if keep_on_device else "cpu", 0)
        run_bound(self._sess, b)
        values = dict(zip(self.outputs, b.get_outputs(), strict=True))
        return values if keep_on_device else {k: v.numpy() for k, v in values.items()}

    def _run_graph(self, feeds: dict[str, Any], dims: dict[str, int]) -> dict[str, Any]:
        """A CUDA-graph run: inputs and outputs live at fixed device addresses, so the first run
        allocates them (and onnxruntime captures the graph) and later runs copy inputs in place."""
        if self._graph is None:
            b = self._sess.io_binding()
            ins, outs = {}, {}
            for name, value in feeds.items():
                host = value.numpy() if isinstance(value, ort.OrtValue) else np.ascontiguousarray(value)
                ins[name] = ort.OrtValue.ortvalue_from_numpy(host, "cuda", 0)
                b.bind_ortvalue_input(name, ins[name])
            for o in self._sess.get_outputs():
                shape = [d if isinstance(d, int) else dims.get(d) for d in o.shape]
                if any(not isinstance(d, int) for d in shape):
                    raise NNError(
                        f"cuda_graph=True needs every output shape fixed by the input shapes; output "
                        f"'{o.name}' has shape {list(o.shape)}",
                        expected="a model whose output dims are numbers or input dims, or cuda_graph=False",
                    )
                outs[o.name] = ort.OrtValue.ortvalue_from_shape_and_type(
                    shape, _NP_OF_ORT.get(o.type, np.float32), "cuda", 0
                )
                b.bind_ortvalue_output(o.name, outs[o.name])
            self._graph = (b, ins, outs)
        else:
            b, ins, outs = self._graph
            for name, value in feeds.items():
                have = tuple(value.shape()) if isinstance(value, ort.OrtValue) else np.shape(value)
                if have != tuple(ins[name].shape()):
                    raise InputError(
                        f"input '{name}' has shape {list(have)}, but this CUDA-graph session was captured "
                        f"with {ins[name].shape()}",
                        hint="a CUDA graph replays fixed shapes: pad the batch, or use a second Session",
                    )
                host = value.numpy() if isinstance(value, ort.OrtValue) else np.ascontiguousarray(value)
                ins[name].update_inplace(host)
        run_bound(self._sess, b)
        return dict(outs)

    def __call__(self, **feeds: Any) -> dict[str, Any]:
        return self.run(feeds)

    # ---- bundles -------------------------------------------------------------------------

    def classify(self, raw: Any, input: str | None = None) -> tuple[list[str], np.ndarray]:
        """For a bundle with labels: (predicted label per sample, class probabilities [N, classes])
        for a batch of raw inputs, preprocessed as the bundle says."""
        if self.bundle is None or not self.bundle.labels:
            raise NNError(
                "classify needs a bundle with class labels; this model has none",
                hint="make one with nngraph.runtime.bundle.write_bundle(model, out, labels=[...])",
            )
        if input is None:
            if len(self.inputs) != 1:
                raise NNError(
                    "classify feeds one input; name it", expected="input=" + " or ".join(self.inputs)
                )
            input = next(iter(self.inputs))
        out = self.run({input: self.prepare(input, raw)})[self.bundle.labels_output or self.outputs[0]]
        if out.ndim != 2:
            raise NNError(
                f"classify gives one label per sample, but the output is {list(out.shape)} "
                "(scores per position?)",
                hint="run the session and take the argmax over the last axis yourself",
            )
        probs = self.bundle.probabilities(out)
        return [self.bundle.labels[i] for i in probs.argmax(-1).reshape(-1)], probs
