"""Data sets load offline-first, scaled to [0, 1] with a channel axis; bad files fail clearly."""

import gzip

import numpy as np
import pytest
from conftest import FASHION_DIR, requires_fashion

from tuner import data
from tuner.core.errors import TunerError
from tuner.data import builtin


def test_digits_is_scaled_with_a_channel_axis_and_sealed_test_split():
    digits = data.load_dataset("digits")
    assert digits.x_train.shape[1:] == (8, 8, 1) and digits.x_train.dtype == np.float32
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() <= 1.0
    before = digits.test_split_reads
    x_test, y_test = digits.test_split()
    assert digits.test_split_reads == before + 1
    assert len(x_test) + len(digits.x_train) == 1797
    # train and test are disjoint samples: no image of the test split appears in training
    train_rows = {row.tobytes() for row in digits.x_train.reshape(len(digits.x_train), -1)}
    overlap = sum(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))
    assert overlap < 5  # the digits set has a handful of exact duplicate images


@pytest.mark.slow
@requires_fashion()
def test_fashion_from_the_debian_package_and_its_subset():
    fashion = data.load_dataset("fashion", str(FASHION_DIR))
    assert fashion.x_train.shape == (60000, 28, 28, 1)
    assert fashion.class_names[0] == "T-shirt/top" and fashion.num_classes == 10
    small = data.load_dataset("fashion", str(FASHION_DIR), subset=3000, seed=1)
    assert small.x_train.shape == (3000, 28, 28, 1)
    assert np.bincount(small.y_train).tolist() == [300] * 10  # stratified


def test_an_npz_of_x_and_y_holds_out_a_fixed_test_split(digits_28_npz):
    """The layout of an MNIST subset (benchmarks/data/mnist-10k.npz is one): arrays x, y, 20% held out."""
    mnist = data.load_dataset("mnist", str(digits_28_npz))
    assert mnist.x_train.shape == (1437, 28, 28, 1) and mnist.class_names[3] == "3"
    x_test, y_test = mnist.test_split()
    again, _ = builtin.load_npz(digits_28_npz).test_split()
    assert np.array_equal(x_test, again) and len(y_test) == 360
    assert np.bincount(y_test).min() >= 35  # stratified


def test_missing_mnist_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "KERAS_CACHE", tmp_path)
    import keras.datasets.mnist as keras_mnist

    def no_internet():
        raise OSError("no network")

    monkeypatch.setattr(keras_mnist, "load_data", no_internet)
    with pytest.raises(TunerError, match="MNIST not found .*looked in"):
        builtin._load_mnist(str(tmp_path / "nowhere"))


def _fake_fashion_dir(tmp_path, truncate: bool = False, garbage: bool = False):
    for key, name in builtin.FASHION_FILES.items():
        source = FASHION_DIR / name
        raw = gzip.open(source).read() if source.exists() else b""
        if key == "x_train" and truncate:
            raw = raw[: len(raw) // 2]
        with gzip.open(tmp_path / name, "wb") as handle:
            handle.write(b"not an idx file at all" if (garbage and key == "x_train") else raw)
    return tmp_path


@pytest.mark.slow
@requires_fashion()
def test_truncated_fashion_file_is_named(tmp_path):
    with pytest.raises(TunerError, match="train-images-idx3-ubyte.gz is truncated or corrupt"):
        builtin._load_fashion(str(_fake_fashion_dir(tmp_path, truncate=True)))


@requires_fashion()
def test_garbage_fashion_file_is_named(tmp_path):
    with pytest.raises(TunerError, match="is not an IDX file"):
        builtin._load_fashion(str(_fake_fashion_dir(tmp_path, garbage=True)))


def test_corrupt_gzip_and_npz_give_clear_errors(tmp_path):
    bad_gz = tmp_path / "x.gz"
    bad_gz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(TunerError, match="cannot read .*x.gz"):
        builtin._read_idx(bad_gz, 3)
    bad_npz = tmp_path / "bad.npz"
    bad_npz.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(TunerError, match="cannot read .*bad.npz as .npz"):
        builtin.load_npz(bad_npz)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((3, 4, 4)))
    with pytest.raises(TunerError, match="expected x and y"):
        builtin.load_npz(wrong)


def test_unknown_dataset_and_tiny_subset():
    with pytest.raises(TunerError, match="unknown data set 'cifar'"):
        data.load_dataset("cifar")
    with pytest.raises(TunerError, match="too small"):
        data.load_dataset("digits", subset=5)
