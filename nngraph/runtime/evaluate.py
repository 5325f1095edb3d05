"""`nngraph eval`: a compiled inference model scored on a data set (numpy + onnxruntime only).

A model written by `nngraph train` records its data split, so by default the
score is on the same held-out samples that training never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nngraph.errors import NNError
from nngraph.runtime import data as datasets
from nngraph.runtime.session import Session


def _load(
    data: str, input_name: str, target_name: str, input_rank: int, float_target: bool | None
) -> datasets.Dataset:
    if data == "digits":
        return datasets.load_digits(input_name, target_name, flat=input_rank == 2)
    path = Path(data)
    if path.suffix == ".npz":
        return datasets.load_npz(path, [input_name], [target_name])
    if path.suffix == ".csv":  # labels as training read them: numbers for a float target
        if float_target is None:  # a model without training metadata: classes where they are whole
            try:
                return datasets.load_csv(path, [input_name], [target_name])
            except NNError:
                float_target = True
        return datasets.load_csv(path, [input_name], [target_name], float_labels=float_target)
    raise NNError(f"unknown data '{data}'", expected="digits, a .npz file or a .csv file").suggest(
        data, ["digits"]
    )


def evaluate_file(
    model: str | Path, data: str = "digits", device: str = "cpu", everything: bool = False, batch: int = 512
) -> dict[str, Any]:
    sess = Session(model, device=device)
    meta = sess._sess.get_modelmeta().custom_metadata_map
    train = json.loads(meta["nngraph_train"]) if "nngraph_train" in meta else None
    if "nngraph_training" in meta:
        raise NNError(
            f"{model} is a training model (step or gradients), not an inference model",
            expected="the model.onnx that nngraph train writes, or one from nngraph compile without --train",
        )
    if len(sess.inputs) != 1:
        raise NNError("eval scores models with one input", expected="a model with one input")
    ((name, (shape, dtype)),) = sess.inputs.items()
    target = train["targets"][0] if train else "label"
    target_dtype = (train or {}).get("target_dtypes", {}).get(target)
    ds = _load(data, name, target, len(shape), None if target_dtype is None else target_dtype.startswith("f"))
    a = ds.inputs[name]
    if a.ndim != len(shape) or any(
        isinstance(d, int) and d != k for d, k in zip(shape[1:], a.shape[1:], strict=False)
    ):
        want = "[" + ", ".join(["N", *(str(d) for d in shape[1:])]) + "]"
        raise NNError(
            f"the data '{data}' gives '{name}' as {len(a)} samples of shape {list(a.shape[1:])}, "
            f"but {Path(model).name} takes {want}",
            expected="the data the model was trained on, or data of its input's shape",
        )
    if dtype is not None and a.dtype != dtype:  # as training converts: where values survive
        conv = datasets.convert_dtype(a, np.dtype(dtype))
        if conv is not None:
            ds.inputs[name] = conv
    for k, v in {name: ds.inputs[name], target: ds.targets[target]}.items():
        datasets.need_finite(k, v, data, "evaluation")
    split = "all"
    if train and not everything and train["validation"] > 0 and _same_data(data, train):
        _, ds = ds.split(train["validation"], train["seed"])
        split = f"held-out {train['validation']:g}"
    if len(ds) == 0:
        raise NNError(
            f"no samples to score in the {split} split of '{data}'",
            hint="--all scores every sample" if split != "all" else None,
        )
    n, positions, correct, nll, sq, elems = 0, 0, 0.0, 0.0, 0.0, 0
    out_name = sess.outputs[0]
    for feeds in ds.batches(batch, 0, epoch=0, shuffle=False):
        y = feeds.pop(target)
        pred = sess.run(feeds)[out_name].astype(np.float64)
        n += len(y)
        if pred.ndim == y.ndim + 1 and pred.ndim >= 3 and pred.shape[:-1] != y.shape:
            if pred.shape[:1] + pred.shape[2:] == y.shape:  # classes on axis 1, as the losses find them
                pred = np.moveaxis(pred, 1, -1)
        if pred.ndim == y.ndim + 1:  # class scores: the labels must be class numbers
            classes = pred.shape[-1]
            if not np.issubdtype(y.dtype, np.integer):
                raise NNError(
                    f"'{target}' holds {y.dtype} values, but the model outputs scores for {classes} classes",
                    expected=f"integer labels in 0..{classes - 1}",
                )
            if y.size and (y.min() < 0 or y.max() >= classes):
                raise NNError(
                    f"labels of '{target}' range over {y.min()}..{y.max()}, but the model has {classes} classes",
                    expected=f"labels in 0..{classes - 1}",
                )
        elif pred.shape != y.shape:  # values to match one for one (mae)
            raise NNError(
                f"'{target}' has shape {list(y.shape[1:])} per sample, but the model outputs "
                f"{list(pred.shape[1:])} per sample",
                expected=f"targets of the output's shape, or class labels [N] for {list(pred.shape[1:])} class scores",
            )
        if np.issubdtype(y.dtype, np.integer) and pred.ndim == y.ndim + 1:
            positions += y.size  # a sequence or segmentation model scores every position
            correct += float((pred.argmax(-1) == y).sum())
            z = pred - pred.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            nll -= float(np.take_along_axis(logp, y[..., None], -1).sum())
        else:
            err = np.abs(pred - y)
            sq += float(err.sum())
            elems += err.size
    if correct or nll:
        return {"samples": n, "split": split, "accuracy": correct / positions, "loss": nll / positions}
    return {"samples": n, "split": split, "mae": sq / max(elems, 1)}  # per element, as training's mae


def _same_data(data: str, train: dict) -> bool:
    """Whether `data` is what training split: the bundled digits, or a file with the same bytes."""
    if data == "digits" or train["data"] == "digits":
        return data == train["data"]
    return Path(data).is_file() and train.get("sha256") == file_sha256(Path(data))


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
