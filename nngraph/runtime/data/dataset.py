"""A data set of named input and target arrays: the held-out split and the batches of an epoch.

Reproducibility: ``Dataset.split(fraction, seed)`` and ``Dataset.batches(size, seed,
epoch)`` draw from numpy Generators seeded with ``seed`` and, for batches, the epoch
number (``np.random.default_rng([seed, epoch])``). An epoch's order is therefore a
function of ``(seed, epoch)`` alone: a run resumed at epoch ``e`` sees exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nngraph.errors import NNError

# The split draws from a stream of its own, never equal to an epoch's [seed, epoch].
_SPLIT_STREAM = (0x73706C74, 1)

Spec = tuple[tuple, str]  # (shape with int or symbolic str dims, dtype name)


def short_dtype(dt: np.dtype) -> str:
    """numpy dtype -> a short name in the .nn style: f32, i64, u8, bool, ..."""
    dt = np.dtype(dt)
    if dt == np.bool_:
        return "bool"
    if dt.kind in "fiu":
        return f"{dt.kind}{dt.itemsize * 8}"
    return str(dt)


def describe_array(a: np.ndarray) -> str:
    return f"{short_dtype(a.dtype)}{list(a.shape)}"


def spec_text(shape: Sequence, dtype: str) -> str:
    return f"{dtype}[{', '.join(str(d) for d in shape)}]"


def _check_seed(seed: int, what: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise NNError(f"{what}: the seed must be a non-negative integer, not {seed!r}")
    return int(seed)


@dataclass
class Dataset:
    """Named arrays, one row per sample along dim 0: the model's inputs and its targets.

    Every array has the same length; ``len(dataset)`` is that length.
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    name: str = "data"

    def __post_init__(self) -> None:
        self.inputs = {k: np.asarray(v) for k, v in self.inputs.items()}
        self.targets = {k: np.asarray(v) for k, v in self.targets.items()}
        both = set(self.inputs) & set(self.targets)
        if both:
            raise NNError(f"dataset '{self.name}' names {sorted(both)} both as inputs and as targets")
        lengths = {}
        for k, v in self.arrays().items():
            if v.ndim == 0:
                raise NNError(
                    f"data '{k}' of '{self.name}' is a scalar; a dataset holds one row per sample along dim 0"
                )
            lengths[k] = v.shape[0]
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"'{k}' {n}" for k, n in lengths.items())
            raise NNError(
                f"the arrays of dataset '{self.name}' differ in length: {listing}",
                expected="the same number of samples (dim 0) in every array",
            )

    def arrays(self) -> dict[str, np.ndarray]:
        """Inputs and targets in one dict (names are unique across the two)."""
        return {**self.inputs, **self.targets}

    def __len__(self) -> int:
        for v in self.arrays().values():
            return int(v.shape[0])
        return 0

    def subset(self, index: np.ndarray, name: str | None = None) -> Dataset:
        """The samples at ``index`` (an integer array), in that order."""
        return Dataset(
            {k: v[index] for k, v in self.inputs.items()},
            {k: v[index] for k, v in self.targets.items()},
            self.name if name is None else name,
        )

    def split(self, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """``(train, held_out)``: a seeded random ``fraction`` of the samples is held out.

        The held-out count is ``round(fraction * len)``, kept to at least one sample for
        each part when ``0 < fraction < 1`` and there are two or more samples. Both parts
        keep the original order of their samples. Not stratified.
        """
        if not 0.0 <= fraction < 1.0:
            raise NNError(f"the held-out fraction must lie in [0, 1), not {fraction!r}")
        seed = _check_seed(seed, "split")
        n = len(self)
        k = int(round(fraction * n))
        if fraction > 0 and n >= 2:
            k = min(max(k, 1), n - 1)
        order = np.random.default_rng([seed, *_SPLIT_STREAM]).permutation(n)
        held, train = np.sort(order[:k]), np.sort(order[k:])
        return self.subset(train, f"{self.name}[train]"), self.subset(held, f"{self.name}[held-out]")

    def batches(
        self,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        epoch: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Mini-batches for one epoch: dicts of every input and target array, each batch
        C-contiguous. With ``shuffle`` the order is ``default_rng([seed, epoch]).permutation``,
        a function of ``(seed, epoch)`` only, so a resumed run sees the same batches; every
        sample appears once per epoch (the last batch is smaller unless ``drop_last``).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise NNError(f"the batch size must be a positive integer, not {batch_size!r}")
        seed = _check_seed(seed, "batches")
        epoch = _check_seed(epoch, "batches (epoch)")
        n = len(self)
        arrays = self.arrays()
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else None
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                yield {k: np.ascontiguousarray(v[start:end]) for k, v in arrays.items()}
            else:
                idx = order[start:end]
                yield {k: v[idx] for k, v in arrays.items()}

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        n = len(self)
        return n // batch_size if drop_last else -(-n // batch_size)

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}: {describe_array(v)}" for k, v in self.inputs.items())
        tgs = ", ".join(f"{k}: {describe_array(v)}" for k, v in self.targets.items())
        return f"Dataset({self.name!r}, {len(self)} samples, inputs {{{ins}}}, targets {{{tgs}}})"
