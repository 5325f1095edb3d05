"""Datasets: the bundled digits, splits and batches, .npz loading, checks against a model (CSV
files: test_csv_data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nngraph.errors import NNError
from nngraph.runtime.data import Dataset, check_against, load_digits, load_npz

IMAGE = {"image": (("batch", 1, 8, 8), "f32")}
LABEL = {"label": (("batch",), "i64")}


def toy(n: int = 23) -> Dataset:
    ids = np.arange(n, dtype=np.int64)
    return Dataset({"x": ids.astype(np.float32)[:, None] * np.ones((1, 3), np.float32)}, {"id": ids}, "toy")


# ---- digits --------------------------------------------------------------------------


def test_digits_shapes_dtypes_ranges():
    ds = load_digits()
    assert len(ds) == 1797 and ds.name == "digits"
    x, y = ds.inputs["image"], ds.targets["label"]
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    assert np.all(np.bincount(y) > 170)  # roughly balanced, ~180 each
    # raw pixel counts 0..16 scaled by 1/16, exactly
    assert np.array_equal(x * 16, np.round(x * 16))


def test_digits_flat_names_scale():
    ds = load_digits("x", "y", flat=True, scale=1.0)
    assert ds.inputs["x"].shape == (1797, 64) and ds.inputs["x"].dtype == np.float32
    assert ds.inputs["x"].max() == 16.0
    assert np.array_equal(ds.inputs["x"].reshape(-1, 1, 8, 8) / 16, load_digits().inputs["image"])
    # callers get their own arrays: writing to one does not change the next load
    ds.inputs["x"][0, 0] = 99
    ds.targets["y"][0] = 99
    again = load_digits("x", "y", flat=True, scale=1.0)
    assert again.inputs["x"][0, 0] != 99 and again.targets["y"][0] != 99


def test_digits_equal_scikit_learns_copy():
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    ds = load_digits(scale=1.0)
    assert np.array_equal(ds.inputs["image"].reshape(-1, 8, 8), ref.images.astype(np.float32))
    assert np.array_equal(ds.inputs["image"].reshape(-1, 8, 8).astype(np.float64), ref.images)
    assert np.array_equal(ds.targets["label"], ref.target)


# ---- Dataset ---------------------------------------------------------------------------


def test_dataset_lengths_must_agree():
    with pytest.raises(NNError, match=r"differ in length: 'a' 3, 'b' 4"):
        Dataset({"a": np.zeros(3)}, {"b": np.zeros(4)}, "bad")
    with pytest.raises(NNError, match="scalar"):
        Dataset({"a": np.float32(1)}, {}, "bad")


def test_split_reproducible_disjoint_complete():
    ds = toy(100)
    tr, ho = ds.split(0.2, seed=3)
    assert (len(tr), len(ho)) == (80, 20)
    a, b = tr.targets["id"], ho.targets["id"]
    assert not set(a) & set(b) and sorted(set(a) | set(b)) == list(range(100))
    assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)  # original order kept
    assert np.array_equal(tr.inputs["x"][:, 0], a.astype(np.float32))  # rows stay aligned
    tr2, ho2 = ds.split(0.2, seed=3)
    assert np.array_equal(ho2.targets["id"], b) and np.array_equal(tr2.targets["id"], a)
    _, ho3 = ds.split(0.2, seed=4)
    assert not np.array_equal(ho3.targets["id"], b)
    # tiny sets keep one sample on each side; fraction 0 holds nothing out
    t, h = toy(3).split(0.01, 0)
    assert (len(t), len(h)) == (2, 1)
    t, h = toy(3).split(0.0, 0)
    assert (len(t), len(h)) == (3, 0)
    with pytest.raises(NNError, match="fraction"):
        ds.split(1.0, 0)
    with pytest.raises(NNError, match="seed"):
        ds.split(0.5, -1)


def test_batches_cover_every_sample_once_per_epoch():
    ds = toy(23)
    for epoch in range(3):
        seen = []
        sizes = []
        for b in ds.batches(5, seed=1, epoch=epoch):
            assert set(b) == {"x", "id"}
            assert np.array_equal(b["x"][:, 0], b["id"].astype(np.float32))
            assert all(v.flags.c_contiguous for v in b.values())
            seen.extend(b["id"].tolist())
            sizes.append(len(b["id"]))
        assert sorted(seen) == list(range(23))
        assert sizes == [5, 5, 5, 5, 3]
    assert ds.num_batches(5) == 5 and ds.num_batches(5, drop_last=True) == 4


def test_batches_reproducible_and_a_function_of_seed_and_epoch():
    ds = toy(50)

    def order(seed, epoch, **kw):
        return np.concatenate([b["id"] for b in ds.batches(8, seed, epoch=epoch, **kw)])

    assert np.array_equal(order(0, 0), order(0, 0))
    assert np.array_equal(order(7, 5), order(7, 5))  # a resumed run at epoch 5 sees the same
    assert not np.array_equal(order(0, 0), order(0, 1))
    assert not np.array_equal(order(0, 1), order(1, 1))
    assert np.array_equal(order(0, 2), np.random.default_rng([0, 2]).permutation(50))
    assert np.array_equal(order(0, 2, shuffle=False), np.arange(50))
    dropped = order(0, 2, drop_last=True)
    assert len(dropped) == 48 and np.array_equal(dropped, order(0, 2)[:48])
    with pytest.raises(NNError, match="batch size"):
        next(ds.batches(0, 0))


# ---- files ------------------------------------------------------------------------------


def test_load_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, pixels=np.ones((4, 2), np.float32), target=np.arange(4))
    ds = load_npz(p, ["pixels"], "target")
    assert ds.inputs["pixels"].shape == (4, 2) and np.array_equal(ds.targets["target"], np.arange(4))
    assert ds.name == "d.npz"


def test_load_npz_wrong_names(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, pixels=np.ones((4, 2), np.float32), target=np.arange(4))
    with pytest.raises(NNError) as e:
        load_npz(p, ["pixel"], ["target"])
    text = str(e.value)
    assert "has no array 'pixel'" in text and "model's input 'pixel'" in text
    assert "'pixels', 'target'" in text and "did you mean 'pixels'?" in text
    with pytest.raises(NNError, match="model's target 'label'"):
        load_npz(p, ["pixels"], ["label"])
    with pytest.raises(NNError, match="no .npz file at"):
        load_npz(tmp_path / "nope.npz", ["pixels"], ["target"])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(NNError, match="cannot read"):
        load_npz(bad, ["pixels"], ["target"])
    obj = tmp_path / "obj.npz"
    np.savez(obj, pixels=np.array([{"a": 1}], dtype=object), target=np.arange(1))
    with pytest.raises(NNError, match="cannot read"):
        load_npz(obj, ["pixels"], ["target"])


# ---- checking against a model ----------------------------------------------------------------


def test_check_against_passes_and_converts():
    ds = load_digits()
    out = check_against(ds, IMAGE, LABEL, {"label": 10})
    assert np.array_equal(out.inputs["image"], ds.inputs["image"])
    assert list(out.inputs) == ["image"] and list(out.targets) == ["label"]

    raw = Dataset(
        {"image": ds.inputs["image"].astype(np.float64), "extra": np.zeros(1797)},
        {"label": ds.targets["label"].astype(np.uint8)},
        "raw",
    )
    out = check_against(raw, IMAGE, LABEL, {"label": 10})
    assert out.inputs["image"].dtype == np.float32 and out.targets["label"].dtype == np.int64
    assert "extra" not in out.arrays()  # only what the model takes
    # u8 pixels into an f32 model: exact, so silent
    px = Dataset({"image": (ds.inputs["image"] * 16).astype(np.uint8)}, {"label": ds.targets["label"]})
    assert check_against(px, IMAGE, LABEL).inputs["image"].dtype == np.float32


def test_check_against_shape_names_both_sides():
    flat = load_digits(flat=True)
    with pytest.raises(NNError) as e:
        check_against(flat, IMAGE, LABEL)
    text = str(e.value)
    assert "data 'image' has shape [1797, 64] but the model's input 'image' is f32[batch, 1, 8, 8]" in text
    assert ".reshape(-1, 1, 8, 8)" in text and "load_digits(flat=False)" in text
    with pytest.raises(NNError) as e:
        check_against(load_digits(), {"image": (("batch", 64), "f32")}, LABEL)
    assert "data 'image' has shape [1797, 1, 8, 8] but the model's input 'image' is f32[batch, 64]" in str(
        e.value
    )
    assert ".reshape(-1, 64)" in str(e.value)
    with pytest.raises(NNError) as e:
        check_against(load_digits(), {"image": (("batch", 1, 7, 7), "f32")}, LABEL)
    assert "is f32[batch, 1, 7, 7]" in str(e.value) and "64 values, and the model wants 49" in str(e.value)
    with pytest.raises(
        NNError, match=r"data 'label' has shape \[1797\] but the model's target 'label' is i64\[batch, 1\]"
    ):
        check_against(load_digits(), IMAGE, {"label": (("batch", 1), "i64")})


def test_check_against_symbolic_dims_must_agree():
    ds = Dataset({"a": np.zeros((4, 5), np.float32), "b": np.zeros((4, 6), np.float32)}, {}, "seqs")
    ok = check_against(ds, {"a": (("batch", "seq"), "f32")}, {})
    assert ok.inputs["a"].shape == (4, 5)
    with pytest.raises(NNError, match=r"dim 1 \('seq'\) is 6, but 'seq' is 5 at dim 1 of 'a'"):
        check_against(ds, {"a": (("batch", "seq"), "f32"), "b": (("batch", "seq"), "f32")}, {})


def test_check_against_dtype_names_both_sides():
    ds = load_digits()
    floaty = Dataset(ds.inputs, {"label": ds.targets["label"].astype(np.float32)}, "floaty")
    with pytest.raises(NNError) as e:
        check_against(floaty, IMAGE, LABEL)
    text = str(e.value)
    assert "data 'label' is f32[1797] but the model's target 'label' is i64[batch]" in text
    assert ".astype(np.int64)" in text
    boolean = Dataset({"image": ds.inputs["image"] > 0.5}, ds.targets, "bool")
    with pytest.raises(
        NNError, match=r"data 'image' is bool\[1797, 1, 8, 8\] but the model's input 'image' is f32"
    ):
        check_against(boolean, IMAGE, LABEL)
    huge = Dataset({"image": np.full((2, 1, 8, 8), 1e300)}, {"label": np.zeros(2, np.int64)}, "huge")
    with pytest.raises(NNError, match=r"(?s)data 'image' is f64\[2, 1, 8, 8\] but .*overflow f32"):
        check_against(huge, IMAGE, LABEL)
    wide = Dataset({"image": np.zeros((2, 1, 8, 8), np.float32)}, {"label": np.array([0, 2**40])}, "wide")
    with pytest.raises(
        NNError, match=r"data 'label' is i64\[2\] but the model's target 'label' is i32\[batch\]"
    ):
        check_against(wide, IMAGE, {"label": (("batch",), "i32")})
    with pytest.raises(
        NNError, match=r"data 'label' is i64\[2\] but the model's target 'label' is f16\[batch\]"
    ):
        check_against(wide, IMAGE, {"label": (("batch",), "f16")})


def test_check_against_label_range_names_both_sides():
    ds = load_digits()
    with pytest.raises(NNError) as e:
        check_against(ds, IMAGE, LABEL, {"label": 9})
    assert "labels of 'label' range over 0..9 but the model has 9 classes (0..8)" in str(e.value)
    one_based = Dataset(ds.inputs, {"label": ds.targets["label"] + 1}, "one")
    with pytest.raises(NNError) as e:
        check_against(one_based, IMAGE, LABEL, {"label": 10})
    assert "range over 1..10 but the model has 10 classes (0..9)" in str(e.value)
    assert "1-based" in str(e.value)
    negative = Dataset(ds.inputs, {"label": ds.targets["label"] - 1}, "neg")
    with pytest.raises(NNError, match=r"range over -1..8 but the model has 10 classes \(0..9\)"):
        check_against(negative, IMAGE, LABEL, {"label": 10})


def test_check_against_missing_name():
    with pytest.raises(NNError) as e:
        check_against(load_digits(), {"images": (("batch", 1, 8, 8), "f32")}, LABEL)
    text = str(e.value)
    assert "no array 'images' for the model's input 'images' (f32[batch, 1, 8, 8])" in text
    assert "'image' f32[1797, 1, 8, 8]" in text and "did you mean 'image'?" in text
