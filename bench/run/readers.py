"""Readers for the real on-disk dataset formats, straight into uint8 tensors.

MNIST and Fashion-MNIST ship as IDX files (optionally gzipped); CIFAR-10/100 as
Python pickle batches, loose or inside the original ``.tar.gz``. Every reader checks
sizes against the header so that a truncated or corrupt file fails loudly, naming
the file, instead of yielding a silently partial dataset.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch


class DataError(Exception):
    """A dataset file is missing, corrupt or of the wrong shape."""


_IDX_UINT8 = 0x08


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e}); the file is corrupt or truncated, replace it") from e


def read_idx(path: Path, expected_dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """Read a uint8 IDX file (header: 0, 0, dtype 0x08, ndim, then ndim big-endian uint32 sizes).

    ``expected_dims`` gives the trailing dimensions (e.g. ``(28, 28)`` for images,
    ``()`` for labels); the leading count comes from the header.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UINT8:
        raise DataError(f"{path}: not a uint8 IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if expected_dims is not None and dims[1:] != expected_dims:
        raise DataError(f"{path}: expected items of shape {expected_dims}, file holds {dims[1:]}")
    size = int(np.prod(dims)) if dims else 0
    if len(raw) != header + size:
        raise DataError(
            f"{path}: header promises {size} bytes of data for shape {dims}, file holds {len(raw) - header}; "
            "the file is truncated or corrupt, replace it"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches only hold numpy arrays, lists and bytes: refuse anything else a file asks to build."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how a protocol-2 pickle written by Python 3 stores bytes
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle API
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means a bad file
        raise DataError(f"{where}: not a readable CIFAR pickle batch ({e}); replace the file") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict in the CIFAR batch, found {type(obj).__name__}")
    return obj


def parse_cifar_batch(data: bytes, label_key: bytes, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one pickled CIFAR batch into images [N, 3, 32, 32] uint8 and labels [N] int64."""
    batch = _unpickle(data, where)
    if b"data" not in batch or label_key not in batch:
        raise DataError(f"{where}: CIFAR batch lacks the keys 'data' and '{label_key.decode()}'")
    images = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where}: expected uint8 data of shape [N, 3072], found {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise DataError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    return torch.from_numpy(images.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def read_cifar_batches(
    source: Path, members: list[str], label_key: bytes
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read and concatenate CIFAR batches from a folder or from the original ``.tar.gz``.

    In a tarball, member names are matched by their last path component.
    """
    blobs: list[tuple[bytes, str]] = []
    if source.is_dir():
        for name in members:
            path = source / name
            if not path.is_file():
                raise DataError(f"{path}: missing; the CIFAR folder must hold {', '.join(members)}")
            blobs.append((_read_bytes(path), str(path)))
    else:
        try:
            with tarfile.open(source, "r:gz") as tar:
                by_name = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                for name in members:
                    if name not in by_name:
                        raise DataError(f"{source}: archive lacks '{name}'; it is incomplete, replace it")
                    handle = tar.extractfile(by_name[name])
                    assert handle is not None
                    blobs.append((handle.read(), f"{source}:{name}"))
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{source}: cannot read the archive ({e}); it is corrupt or truncated, replace it") from e
    parts = [parse_cifar_batch(data, label_key, where) for data, where in blobs]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
