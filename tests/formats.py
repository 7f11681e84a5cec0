"""Writers for tiny dataset files in the exact real on-disk formats, so readers are tested on real layouts."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: two zero bytes, dtype 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(folder: Path, n_train: int, n_test: int, gz: bool = True, seed: int = 0) -> dict:
    """Write MNIST-style IDX files; returns the arrays written so tests can compare."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        IDX_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX_NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        IDX_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX_NAMES[3]: (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)
    return arrays


def cifar_batch_bytes(n: int, label_key: bytes, num_classes: int, seed: int) -> tuple[bytes, np.ndarray, list]:
    """One pickled CIFAR batch as the originals are: a dict with bytes keys, uint8 data [n, 3072], int labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, num_classes, n)]
    batch = {b"batch_label": b"testing batch", label_key: labels, b"data": images, b"filenames": [b"x.png"] * n}
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [v // 5 for v in labels]
    return pickle.dumps(batch, protocol=2), images, labels


def write_cifar(root: Path, which: str, n_per_batch: int, as_tar: bool = False) -> dict[str, tuple]:
    """Write cifar-10-batches-py/ or cifar-100-python/ (or the .tar.gz holding it) under ``root``."""
    if which == "cifar10":
        folder, members, key, classes = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + [
            "test_batch"], b"labels", 10
    else:
        folder, members, key, classes = "cifar-100-python", ["train", "test"], b"fine_labels", 100
    written = {}
    blobs = {}
    for i, name in enumerate(members):
        blob, images, labels = cifar_batch_bytes(n_per_batch, key, classes, seed=i)
        blobs[name], written[name] = blob, (images, labels)
    root.mkdir(parents=True, exist_ok=True)
    if as_tar:
        archive = root / f"{'cifar-10-python' if which == 'cifar10' else 'cifar-100-python'}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name, blob in blobs.items():
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / folder).mkdir(exist_ok=True)
        for name, blob in blobs.items():
            (root / folder / name).write_bytes(blob)
    return written
