"""Data checked against a model's inputs and targets: names, shapes, dtypes, finite values."""

from __future__ import annotations

import numpy as np

from nngraph.dtypes import DTYPES
from nngraph.errors import NNError
from nngraph.runtime.data.dataset import Dataset, Spec, describe_array, short_dtype, spec_text


def convert_dtype(a: np.ndarray, want: np.dtype) -> np.ndarray | None:
    """``a`` as dtype ``want`` where that keeps its values, else None.

    Converted silently: floats to a wider or narrower float (rounding to nearest, as any
    f64 -> f32 does; an error if a finite value would overflow), integers (signed or
    unsigned) to i32/i64 when every value fits, integers to a float dtype when every value
    is exactly representable (e.g. u8 pixels to f32), and bool to bool. Never silently:
    floats to integers, bools to or from numbers.
    """
    have = a.dtype
    if have == want:
        return a
    if have.kind == "b" or want.kind == "b":
        return None
    if want.kind == "f" and have.kind == "f":
        with np.errstate(over="ignore"):
            out = a.astype(want)
        if np.any(np.isinf(out) & np.isfinite(a)):
            return None
        return out
    if have.kind in "iu" and want.kind == "i":
        if a.size == 0:
            return a.astype(want)
        info = np.iinfo(want)
        if int(a.min()) < info.min or int(a.max()) > info.max:
            return None
        return a.astype(want)
    if have.kind in "iu" and want.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            out = a.astype(want)
            back = out.astype(np.float64)
            if not np.all(np.isfinite(back)) or not np.array_equal(back.astype(have), a):
                return None
        return out
    return None


def need_samples_first(role: str, name: str, shape: tuple, dtype: str) -> None:
    """Training data holds its samples along the first dim, so each input and target must too."""
    if not shape or isinstance(shape[0], str):
        return
    model = f"the model's {role} '{name}' is {spec_text(shape, dtype)}"
    named = [i for i, d in enumerate(shape) if isinstance(d, str)]
    if not named:
        rest = ", ".join(["batch", *map(str, shape[1:])])
        raise NNError(
            f"{model}: its first dim counts the samples of a batch, so it cannot be {shape[0]}",
            expected=f"a dim name there, e.g. {dtype}[{rest}]",
        )
    i = named[0]
    perm = [i, *(j for j in range(len(shape)) if j != i)]
    back = [perm.index(j) for j in range(len(shape))]
    first = ", ".join(str(shape[j]) for j in perm)
    raise NNError(
        f"{model}: training data holds the samples along the first dim, and this {role} has them "
        f"along dim {i} ('{shape[i]}')",
        hint=f"declare it as {dtype}[{first}] and move the axis inside the model: "
        f"{name} | transpose({back}) is {spec_text(shape, dtype)} again",
    )


def check_against(
    dataset: Dataset,
    inputs: dict[str, Spec],
    targets: dict[str, Spec],
    num_classes: dict[str, int] | None = None,
) -> Dataset:
    """Check ``dataset`` against a model's ``inputs`` and ``targets``, each a
    ``(shape, dtype)`` with int or symbolic (str) dims and a dtype name in
    f16/f32/f64/i32/i64/bool; return the dataset with exactly those arrays, in the
    model's dtypes, under the model's input/target roles.

    Checked, per array: present (looked up among the dataset's inputs and targets), a
    symbolic dim 0 in the model (batches vary in size), the rank, every static dim but dim 0
    (the samples), a symbolic dim other than dim 0 bound to the same size wherever it
    appears, and the dtype, converted silently only
    where values survive (see ``convert_dtype``: f64 -> f32 rounds, integers -> i64/i32 when
    they fit, integers -> floats when exact). With ``num_classes``, integer labels must
    lie in ``[0, classes)``. Data is never reshaped silently: a shape that would fit
    after a reshape gets a hint that says which. Every error names the data array and
    the model's input or target.
    """
    have = dataset.arrays()
    out_in: dict[str, np.ndarray] = {}
    out_tg: dict[str, np.ndarray] = {}
    bound: dict[str, tuple[int, str]] = {}
    for role, specs, out in (("input", inputs, out_in), ("target", targets, out_tg)):
        for name, (shape, dtype) in specs.items():
            shape = tuple(shape)
            model = f"the model's {role} '{name}' is {spec_text(shape, dtype)}"
            if dtype not in DTYPES:
                raise NNError(f"{model}, and '{dtype}' is not a dtype the runtime knows").suggest(
                    dtype, DTYPES
                )
            if name not in have:
                listed = ", ".join(f"'{k}' {describe_array(v)}" for k, v in have.items()) or "no arrays"
                raise NNError(
                    f"the data '{dataset.name}' has no array '{name}' for the model's {role} "
                    f"'{name}' ({spec_text(shape, dtype)})",
                    expected=f"an array named '{name}'; the data has {listed}",
                ).suggest(name, have)
            a = have[name]
            where = f"data '{name}' has shape {list(a.shape)} but {model}"
            need_samples_first(role, name, shape, dtype)
            if a.ndim != len(shape) or any(
                isinstance(d, int) and d != n for d, n in zip(shape[1:], a.shape[1:], strict=False)
            ):
                raise NNError(where, hint=_reshape_hint(a, shape, dataset.name))
            for i, (d, n) in enumerate(zip(shape[1:], a.shape[1:], strict=True), start=1):
                if isinstance(d, str):
                    prev = bound.setdefault(d, (n, f"dim {i} of '{name}'"))
                    if prev[0] != n:
                        raise NNError(
                            f"{where}: its dim {i} ('{d}') is {n}, but '{d}' is {prev[0]} at {prev[1]}",
                            expected=f"the same size for '{d}' wherever the model uses it",
                        )
            want = DTYPES[dtype]
            conv = convert_dtype(a, want)
            if conv is None:
                raise NNError(
                    f"data '{name}' is {describe_array(a)} but {model}",
                    expected=f"{dtype} data, or data that converts to {dtype} without changing its values",
                    hint=_dtype_hint(a, want),
                )
            out[name] = conv

    for name, classes in (num_classes or {}).items():
        arrays = {**out_in, **out_tg}
        if name not in arrays:
            raise NNError(f"num_classes names '{name}', which is neither an input nor a target of the model")
        a = arrays[name]
        role = "input" if name in out_in else "target"
        if a.size == 0:
            continue
        lo, hi = a.min(), a.max()
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise NNError(
                f"labels of '{name}' are not all whole numbers, but the model's {role} '{name}' "
                f"is a class number in 0..{classes - 1}"
            )
        if (lo < 0 or hi >= classes) and role == "input":  # ids into an embedding table
            raise NNError(
                f"ids of '{name}' range over {lo:g}..{hi:g} but the embedding they index has {classes} rows "
                f"(0..{classes - 1})",
                expected=f"ids in 0..{classes - 1}",
                hint=f"give the embedding {int(hi) + 1} rows (num={int(hi) + 1})" if lo >= 0 else None,
            )
        if lo < 0 or hi >= classes:
            raise NNError(
                f"labels of '{name}' range over {lo:g}..{hi:g} but the model has {classes} classes "
                f"(0..{classes - 1})",
                expected=f"labels in 0..{classes - 1}",
                hint=(
                    "the labels look 1-based: subtract 1"
                    if lo >= 1 and hi == classes
                    else f"give the model {int(hi) + 1} classes, or drop the samples out of range"
                ),
            )
    for name, a in {**out_in, **out_tg}.items():  # a NaN trains to a NaN loss, far from its cause
        need_finite(name, a, dataset.name, "training")
    return Dataset(out_in, out_tg, dataset.name)


def need_finite(name: str, a: np.ndarray, dataset_name: str, use: str) -> None:
    """A NaN or infinity in the data: an error that says where, before it turns into a NaN score."""
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise NNError(
            f"data '{name}' of '{dataset_name}' holds {a[tuple(bad)]} at sample {bad[0]} "
            f"(index {list(map(int, bad))}): {use} needs finite numbers",
            hint="drop or fill the missing values first",
        )


def _reshape_hint(a: np.ndarray, shape: tuple, dataset_name: str) -> str | None:
    rest = shape[1:]
    if not all(isinstance(d, int) for d in rest):
        return None
    want = int(np.prod(rest, dtype=np.int64))
    have = int(np.prod(a.shape[1:], dtype=np.int64))
    if want != have:
        return f"each sample has {have} values, and the model wants {want}"
    dims = "".join(f", {d}" for d in rest)
    hint = f"the values per sample agree: reshape the data with .reshape(-1{dims})"
    if dataset_name == "digits":
        hint += f" (or load_digits(flat={len(rest) == 1}))"
    return hint


def _dtype_hint(a: np.ndarray, want: np.dtype) -> str | None:
    if a.dtype.kind == "f" and want.kind in "iu":
        if a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            return f"the values are whole numbers: save them converted, as a.astype(np.{want.name})"
        return "floats are never converted to integers silently"
    if a.dtype.kind == "f" and want.kind == "f":
        return f"some values overflow {short_dtype(want)}"
    if a.dtype.kind in "iu" and want.kind == "i":
        return f"some values do not fit in {short_dtype(want)}"
    if a.dtype.kind in "iu" and want.kind == "f":
        return f"some integers are not exactly representable in {short_dtype(want)}"
    if a.dtype.kind == "b" or want.kind == "b":
        return f"convert explicitly with .astype(np.{want.name}) if that is meant"
    return None
