"""Datasets for training: the bundled 8x8 digits, .npz and .csv files, and a check of data against
a model's inputs and targets. Only numpy and the standard library: part of the embeddable runtime."""

from nngraph.dtypes import DTYPES
from nngraph.runtime.data.checks import check_against, convert_dtype, need_finite, need_samples_first
from nngraph.runtime.data.dataset import Dataset
from nngraph.runtime.data.loaders import load_csv, load_digits, load_npz

__all__ = [
    "DTYPES",
    "Dataset",
    "convert_dtype",
    "check_against",
    "load_csv",
    "load_digits",
    "load_npz",
    "need_finite",
    "need_samples_first",
]
