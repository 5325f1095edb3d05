"""A bundle: a compiled model that carries what an application needs to use it.

A bundle is one plain ONNX file whose ``metadata_props`` hold, under the key
``nngraph_bundle``, a JSON object::

    {"format": 1,
     "inputs":  {"image":  {"shape": ["batch", 1, 8, 8], "dtype": "f32"}},
     "outputs": {"logits": {"shape": ["batch", 10], "dtype": "f32"}},
     "preprocess": {"image": {"scale": 0.0625, "mean": null, "std": null}},
     "labels": ["0", "1", ...], "labels_output": "logits", "outputs_are": "logits",
     "description": "..."}

Preprocessing maps a raw input ``x`` to ``(x * scale - mean) / std`` (each part
optional; ``mean`` and ``std`` a number or one value per channel, axis 1).
Any onnxruntime loads a bundle as an ordinary model; ``nngraph.runtime.Session``
reads the metadata into ``Session.bundle``. Reading needs only numpy and
onnxruntime; ``write_bundle`` (a build step) imports onnx when called.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nngraph.errors import NNError

KEY = "nngraph_bundle"
FORMAT = 1
_DTYPES = {
    "f32": np.float32,
    "f64": np.float64,
    "f16": np.float16,
    "i64": np.int64,
    "i32": np.int32,
    "bool": np.bool_,
}
# onnx TensorProto element types, by number, so that reading never imports onnx
_ONNX_ELEM = {1: "f32", 11: "f64", 10: "f16", 7: "i64", 6: "i32", 9: "bool"}


def as_numbers(raw: Any, dtype: Any, copy: bool = False) -> np.ndarray:
    """A raw input as an array of dtype; text or objects that are no numbers are an NNError."""
    try:
        return np.asarray(raw).astype(dtype, copy=copy)
    except (ValueError, TypeError) as e:
        raise NNError(f"the input is not numbers of type {np.dtype(dtype).name}: {e}") from None


@dataclass
class TensorSpec:
    shape: list[int | str]
    dtype: str  # f32, i64, ...

    @property
    def np_dtype(self) -> Any:
        return _DTYPES.get(self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass
class Preprocess:
    scale: float | None = None
    mean: float | list[float] | None = None
    std: float | list[float] | None = None

    def apply(self, x: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """``(x * scale - mean) / std`` in ``dtype``; mean/std lists broadcast over axis 1."""
        out = as_numbers(x, dtype, copy=True)
        if self.scale is not None:
            out *= dtype(self.scale)
        for value, op in ((self.mean, np.subtract), (self.std, np.divide)):
            if value is None:
                continue
            v = np.asarray(value, dtype)
            if v.ndim == 1:
                if out.ndim < 2 or out.shape[1] != len(v):
                    raise NNError(
                        f"per-channel preprocessing has {len(v)} values, the input has shape {list(out.shape)}",
                        expected="an input whose axis 1 holds that many channels",
                    )
                v = v.reshape((1, len(v)) + (1,) * (out.ndim - 2))
            op(out, v, out=out)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"scale": self.scale, "mean": self.mean, "std": self.std}


@dataclass
class Bundle:
    """The metadata of a bundle (see the module docstring)."""

    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    preprocess: dict[str, Preprocess] = field(default_factory=dict)
    labels: list[str] | None = None
    labels_output: str | None = None
    outputs_are: str = "logits"  # or "probabilities", "values"
    description: str | None = None

    def prepare(self, name: str, raw: Any) -> np.ndarray:
        """A raw input (e.g. pixel counts) as the model wants it: preprocessed, in its dtype."""
        if name not in self.inputs:
            raise NNError(
                f"the bundle has no input '{name}'", expected="inputs: " + ", ".join(self.inputs)
            ).suggest(name, self.inputs)
        dtype = self.inputs[name].np_dtype or np.float32
        pre = self.preprocess.get(name)
        return pre.apply(raw, dtype) if pre else as_numbers(raw, dtype)

    def probabilities(self, values: np.ndarray) -> np.ndarray:
        """Class probabilities from the labelled output (softmax over the last axis of logits)."""
        v = np.asarray(values, np.float64)
        if self.outputs_are != "logits":
            return v
        z = v - v.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "inputs": {k: {"shape": v.shape, "dtype": v.dtype} for k, v in self.inputs.items()},
                "outputs": {k: {"shape": v.shape, "dtype": v.dtype} for k, v in self.outputs.items()},
                "preprocess": {k: v.to_json() for k, v in self.preprocess.items()},
                "labels": self.labels,
                "labels_output": self.labels_output,
                "outputs_are": self.outputs_are,
                "description": self.description,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Bundle:
        try:
            d = json.loads(text)
            if d.get("format", FORMAT) > FORMAT:
                raise NNError(
                    f"this bundle has format {d['format']}; this nngraph reads format {FORMAT}",
                    expected="a newer nngraph",
                )
            return cls(
                inputs={k: TensorSpec(list(v["shape"]), v["dtype"]) for k, v in d["inputs"].items()},
                outputs={k: TensorSpec(list(v["shape"]), v["dtype"]) for k, v in d["outputs"].items()},
                preprocess={k: Preprocess(**v) for k, v in (d.get("preprocess") or {}).items()},
                labels=d.get("labels"),
                labels_output=d.get("labels_output"),
                outputs_are=d.get("outputs_are", "logits"),
                description=d.get("description"),
            )
        except NNError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise NNError(f"the model's '{KEY}' metadata is not a valid bundle: {e}") from None


def read_bundle(metadata: dict[str, str]) -> Bundle | None:
    """The bundle in a model's custom metadata (onnxruntime's ``custom_metadata_map``), or None."""
    return Bundle.from_json(metadata[KEY]) if KEY in metadata else None


def _spec(value_info) -> TensorSpec:
    t = value_info.type.tensor_type
    shape: list[int | str] = [
        d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
        for d in t.shape.dim
    ]
    return TensorSpec(shape, _ONNX_ELEM.get(t.elem_type, str(t.elem_type)))


def _number(v: Any, what: str, positive: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise NNError(f"{what}={v!r} is not a number") from None
    if not np.isfinite(f) or (positive and f <= 0):
        raise NNError(f"{what}={v!r} must be a finite number" + (" > 0" if positive else ""))
    return f


def _values(v: Any, what: str, channels: int | None, positive: bool = False) -> float | list[float]:
    """One number, or one per channel (axis 1 of the input)."""
    if np.ndim(v) == 0:
        return _number(v, what, positive)
    if np.ndim(v) != 1:
        raise NNError(f"{what} must be a number or a list with one number per channel, got {v!r}")
    vals = [_number(x, what, positive) for x in v]
    if channels is not None and len(vals) != channels:
        raise NNError(f"{what} has {len(vals)} values, but the input has {channels} channels (axis 1)")
    return vals


def write_bundle(
    model: str | os.PathLike | bytes,
    out: str | os.PathLike | None = None,
    *,
    labels: list[Any] | None = None,
    scale: float | None = None,
    mean: float | list[float] | None = None,
    std: float | list[float] | None = None,
    input: str | None = None,
    output: str | None = None,
    outputs_are: str | None = None,
    description: str | None = None,
) -> Path:
    """Write ``model`` (an .onnx path or its bytes) as a bundle at ``out`` (default: in place).

    The input/output names, shapes and dtypes are read from the model; ``scale``, ``mean`` and
    ``std`` preprocess ``input`` (default: the first input), ``labels`` name the classes along the
    last axis of ``output`` (default: the first output), whose values are ``outputs_are``
    ("logits", "probabilities" or "values"; default "logits"). When the model is a bundle already,
    what is not given again is kept: relabelling keeps its preprocessing, and rescaling its
    labels. Other metadata (e.g. ``nngraph_train``) is kept. Imports onnx (a build step, not
    something an application embedding the runtime runs).
    """
    import onnx  # noqa: PLC0415 - only the writer needs it; reading a bundle never imports onnx

    from nngraph.fileio import atomic_write_bytes  # noqa: PLC0415

    if isinstance(model, bytes):
        if out is None:
            raise NNError("write_bundle needs an output path when the model is given as bytes")
        try:
            proto = onnx.load_from_string(model)
        except Exception as e:  # DecodeError: not an ONNX model
            raise NNError(f"the bytes given are not an ONNX model ({type(e).__name__})") from None
    else:
        if not Path(model).is_file():
            raise NNError(f"model file not found: {model}")
        try:
            proto = onnx.load(str(model))
        except Exception as e:  # DecodeError: not an ONNX file
            raise NNError(f"{model} is not an ONNX model ({type(e).__name__})") from None
    initializers = {i.name for i in proto.graph.initializer}
    inputs = {i.name: _spec(i) for i in proto.graph.input if i.name not in initializers}
    outputs = {o.name: _spec(o) for o in proto.graph.output}
    old = read_bundle({p.key: p.value for p in proto.metadata_props})
    outputs_are = outputs_are or (old.outputs_are if old else "logits")
    if outputs_are not in ("logits", "probabilities", "values"):
        raise NNError(f"unknown outputs_are '{outputs_are}'", expected="logits, probabilities or values")
    for name, have, what in ((input, inputs, "input"), (output, outputs, "output")):
        if name is not None and name not in have:
            raise NNError(
                f"the model has no {what} '{name}'", expected=f"{what}s: " + ", ".join(have)
            ).suggest(name, have)
    pre: dict[str, Preprocess] = {}
    if scale is not None or mean is not None or std is not None:
        name = input or next(iter(inputs))
        spec = inputs[name]
        if not str(spec.dtype).startswith("f"):
            raise NNError(
                f"preprocessing (scale, mean, std) needs a float input; '{name}' is {spec.dtype}",
                hint="integer inputs such as token ids are fed as they are",
            )
        channels = spec.shape[1] if len(spec.shape) > 1 and isinstance(spec.shape[1], int) else None
        pre[name] = Preprocess(
            None if scale is None else _number(scale, "scale"),
            None if mean is None else _values(mean, "mean", channels),
            None if std is None else _values(std, "std", channels, positive=True),
        )
    labels_output = None
    if labels is not None:
        labels_output = output or next(iter(outputs))
        last = outputs[labels_output].shape[-1] if outputs[labels_output].shape else None
        if isinstance(last, int) and last != len(labels):
            raise NNError(
                f"{len(labels)} labels for output '{labels_output}', whose last axis has {last} classes",
                expected=f"{last} labels",
            )
        labels = [str(v) for v in labels]
    if old is not None:  # what is not given again stays, where the model still has its tensors
        if not pre:
            pre = {k: v for k, v in old.preprocess.items() if k in inputs}
        if labels is None and old.labels_output in outputs:
            labels, labels_output = old.labels, old.labels_output
        description = old.description if description is None else description
    bundle = Bundle(inputs, outputs, pre, labels, labels_output, outputs_are, description)
    props = [p for p in proto.metadata_props if p.key != KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    entry = proto.metadata_props.add()
    entry.key, entry.value = KEY, bundle.to_json()
    target = Path(out if out is not None else model)
    atomic_write_bytes(target, proto.SerializeToString())
    return target
