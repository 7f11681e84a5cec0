"""Dataset readers on files in the real on-disk formats, the search order, subsets and batching."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from bench.run import data
from bench.run.batching import ShuffledPasses, eval_batches, normalise
from bench.run.readers import DataError, read_idx
from tests.formats import IDX_NAMES, idx_bytes, write_cifar, write_idx_dataset


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep the user's cache and environment out of every test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NOPROP_BENCH_DATA", raising=False)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name,sub", [("mnist", "mnist"), ("fashion-mnist", "FashionMNIST/raw")])
def test_idx_reader_returns_exact_contents(tmp_path, gz, name, sub):
    arrays = write_idx_dataset(tmp_path / sub, n_train=30, n_test=20, gz=gz)
    splits = data.load(name, data_dir=tmp_path, allow_download=False)
    assert splits.train_x.shape == (30, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    assert splits.test_x.shape == (20, 1, 28, 28)
    assert splits.train_y.dtype == torch.int64
    assert torch.equal(splits.train_x[:, 0], torch.from_numpy(arrays[IDX_NAMES[0]]))
    assert splits.test_y.tolist() == arrays[IDX_NAMES[3]].tolist()


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar10_reader_concatenates_five_batches(tmp_path, as_tar):
    written = write_cifar(tmp_path, "cifar10", n_per_batch=7, as_tar=as_tar)
    splits = data.load("cifar10", data_dir=tmp_path, allow_download=False)
    assert splits.train_x.shape == (35, 3, 32, 32) and splits.train_x.dtype == torch.uint8
    assert splits.test_x.shape == (7, 3, 32, 32)
    images, labels = written["data_batch_2"]
    assert torch.equal(splits.train_x[7:14].reshape(7, -1), torch.from_numpy(images))
    assert splits.train_y[7:14].tolist() == labels
    # channel-major layout: the first 1024 bytes of a row are the red plane
    assert torch.equal(splits.test_x[0, 0].flatten(), torch.from_numpy(written["test_batch"][0][0, :1024]))


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar100_uses_fine_labels(tmp_path, as_tar):
    written = write_cifar(tmp_path, "cifar100", n_per_batch=40, as_tar=as_tar)
    splits = data.load("cifar100", data_dir=tmp_path, allow_download=False)
    assert splits.train_y.tolist() == written["train"][1]
    assert splits.spec.num_classes == 100 and int(splits.train_y.max()) >= 20  # fine (0..99), not coarse (0..19)


def test_truncated_idx_names_the_file(tmp_path):
    write_idx_dataset(tmp_path / "mnist", 30, 20, gz=False)
    path = tmp_path / "mnist" / IDX_NAMES[0]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=IDX_NAMES[0]):
        data.load("mnist", data_dir=tmp_path, allow_download=False)


def test_corrupt_gzip_names_the_file(tmp_path):
    write_idx_dataset(tmp_path / "mnist", 30, 20, gz=True)
    path = tmp_path / "mnist" / f"{IDX_NAMES[2]}.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=IDX_NAMES[2]):
        data.load("mnist", data_dir=tmp_path, allow_download=False)


def test_wrong_shape_and_label_mismatch(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x").write_bytes(idx_bytes(np.zeros((3, 32, 32), np.uint8)))
    with pytest.raises(DataError, match="shape"):
        read_idx(bad / "x", (28, 28))
    write_idx_dataset(tmp_path / "mnist", 30, 20, gz=False)
    (tmp_path / "mnist" / IDX_NAMES[1]).write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    with pytest.raises(DataError, match="30 images but"):
        data.load("mnist", data_dir=tmp_path, allow_download=False)


def test_cifar_missing_batch_and_foreign_pickle(tmp_path):
    write_cifar(tmp_path, "cifar10", 5)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": "not an array"}))
    with pytest.raises(DataError, match="data_batch_3"):
        data.load("cifar10", data_dir=tmp_path, allow_download=False)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DataError, match="refusing"):
        data.load("cifar10", data_dir=tmp_path, allow_download=False)


def test_truncated_cifar_archive(tmp_path):
    write_cifar(tmp_path, "cifar100", 20, as_tar=True)
    archive = tmp_path / "cifar-100-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="cifar-100-python.tar.gz"):
        data.load("cifar100", data_dir=tmp_path, allow_download=False)


def test_offline_with_nothing_found_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("cifar10", data_dir=tmp_path / "empty", allow_download=False)
    msg = str(e.value)
    assert "cifar10" in msg and str(tmp_path / "empty") in msg and "cifar-10-python.tar.gz" in msg


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(DataError, match="download failed.*Network is unreachable"):
        data.load("mnist", data_dir=tmp_path)


def test_search_order_prefers_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    spec = data.DATASETS["mnist"]
    for root in ("a", "b", "cache/noprop-bench"):
        write_idx_dataset(tmp_path / root / "mnist", 10, 10)
    monkeypatch.setenv("NOPROP_BENCH_DATA", str(tmp_path / "b"))
    assert data.locate(spec, tmp_path / "a") == tmp_path / "a" / "mnist"
    assert data.locate(spec) == tmp_path / "b" / "mnist"
    monkeypatch.delenv("NOPROP_BENCH_DATA")
    assert data.locate(spec) == tmp_path / "cache" / "noprop-bench" / "mnist"


def test_unknown_dataset():
    with pytest.raises(DataError, match="choose one of: mnist"):
        data.get_spec("imagenet")


def test_subsets_are_balanced_seeded_and_val_is_disjoint_from_train(tmp_path):
    write_idx_dataset(tmp_path / "mnist", 200, 100, gz=False)
    a = data.load("mnist", data_dir=tmp_path, train_subset=50, test_subset=30, val_size=40, seed=3,
                  allow_download=False)
    b = data.load("mnist", data_dir=tmp_path, train_subset=50, test_subset=30, val_size=40, seed=3,
                  allow_download=False)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert torch.bincount(a.train_y, minlength=10).tolist() == [5] * 10
    assert torch.bincount(a.test_y, minlength=10).tolist() == [3] * 10
    assert torch.bincount(a.val_y, minlength=10).tolist() == [4] * 10
    # every training image is byte-distinct from every validation image (the fixture's images are random)
    train_rows = {bytes(r.numpy()) for r in a.train_x.flatten(1)}
    assert not any(bytes(r.numpy()) in train_rows for r in a.val_x.flatten(1))
    full = data.load("mnist", data_dir=tmp_path, allow_download=False)
    assert torch.equal(full.test_x[:5], data.load("mnist", data_dir=tmp_path, allow_download=False).test_x[:5])
    with pytest.raises(DataError, match="holds only"):
        data.load("mnist", data_dir=tmp_path, train_subset=500, allow_download=False)


def test_batches_cover_the_split_once_and_normalise(tmp_path):
    x = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8)
    y = torch.arange(300)
    mean, std = data.channel_stats(x)
    ref = (x.double() / 255 - mean.double().view(1, 3, 1, 1)) / std.double().view(1, 3, 1, 1)
    assert torch.allclose(normalise(x, mean, std).double(), ref, atol=1e-5)
    batches = ShuffledPasses(x, y, mean, std, batch_size=128, seed=0)
    first = list(batches())
    assert [len(b[1]) for b in first] == [128, 128, 44] and len(batches) == 3
    seen = torch.cat([b[1] for b in first])
    assert sorted(seen.tolist()) == list(range(300))
    xs = torch.cat([b[0] for b in first])
    assert torch.allclose(xs.double(), ref[seen], atol=1e-5)
    second = torch.cat([b[1] for b in batches()])
    assert not torch.equal(seen, second)  # a new permutation per pass
    again = torch.cat([b[1] for b in ShuffledPasses(x, y, mean, std, 128, seed=0)()])
    assert torch.equal(seen, again)  # seeded
    assert torch.cat(list(eval_batches(x, mean, std, 100))).shape == (300, 3, 4, 4)
    # a last batch of one example would break BatchNorm: it joins the batch before
    odd = ShuffledPasses(x[:257], y[:257], mean, std, batch_size=128, seed=0)
    assert [len(b[1]) for b in odd()] == [128, 129] and len(odd) == 2


needs_fashion = pytest.mark.skipif(
    not (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)


@needs_fashion
def test_real_fashion_mnist_from_debian():
    splits = data.load("fashion-mnist", allow_download=False)
    assert splits.source == str(data.DEBIAN_FASHION_MNIST)
    assert splits.train_x.shape == (60_000, 1, 28, 28) and splits.test_x.shape == (10_000, 1, 28, 28)
    assert splits.train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert splits.test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert torch.bincount(splits.train_y).tolist() == [6000] * 10
    assert abs(float(splits.mean) - 0.2860) < 1e-3 and abs(float(splits.std) - 0.3530) < 1e-3
    with gzip.open(data.DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        assert f.read()[8:18] == bytes(splits.test_y[:10].tolist())
