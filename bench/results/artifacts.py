"""Per-run artifacts the report needs without loading a model: final test predictions, class embeddings,
and a few test images, in one small compressed ``.npz`` per run (``OUT/artifacts/<run_id>.npz``).

Keys: ``pred`` and ``label`` (int16, every test image, first inference repeat), ``embedding`` (float32
[classes, d], the final label embedding W), ``embedding_kind`` (str), ``image_shape`` (int [C, H, W]),
``sample_images`` (uint8 [n, C, H, W], the first test images) with ``sample_pred`` / ``sample_label``; for a run
that measured its ODE step sweep (NoProp-CT, -FM with ``ode_steps_sweep``), ``sweep_steps``, ``sweep_test_acc`` and
``sweep_infer_s`` (one value per step count).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.results.atomic import atomic_write

if TYPE_CHECKING:  # the report reads artifacts without paying torch's import
    import torch

ARTIFACT_DIR = "artifacts"
SAMPLE_IMAGES = 32


def artifact_path(out: Path, run_id: str) -> Path:
    return Path(out) / ARTIFACT_DIR / f"{run_id}.npz"


def save(out: Path, run_id: str, test_pred: torch.Tensor, splits, model: torch.nn.Module, embedding_kind: str,
         steps_sweep: dict[str, list[float]] | None = None) -> Path:
    """Write one run's artifacts atomically (``atomic_write``)."""
    path = artifact_path(out, run_id)
    n = min(SAMPLE_IMAGES, splits.test_y.numel())
    arrays = {
        "pred": test_pred.cpu().numpy().astype(np.int16),
        "label": splits.test_y.cpu().numpy().astype(np.int16),
        "embedding": model.label_embedding().float().cpu().numpy(),
        "embedding_kind": np.array(embedding_kind),
        "image_shape": np.array(splits.spec.image_shape),
        "sample_images": splits.test_x[:n].cpu().numpy(),
        "sample_pred": test_pred[:n].cpu().numpy().astype(np.int16),
        "sample_label": splits.test_y[:n].cpu().numpy().astype(np.int16),
    }
    for name, values in (steps_sweep or {}).items():
        arrays[f"sweep_{name}"] = np.asarray(values, dtype=np.float64)
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return path


def load(out: Path, run_id: str) -> dict[str, np.ndarray] | None:
    """A run's artifacts, or None when the run saved none (not ok, or an older version)."""
    path = artifact_path(out, run_id)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
