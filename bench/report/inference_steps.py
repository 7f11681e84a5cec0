"""Inference steps against accuracy and time, for the methods whose inference integrates an ODE (NoProp-CT, -FM):
the curve a user reads to choose ``ode_steps``.

A run that measured a sweep (config ``ode_steps_sweep``) stored, per step count, the test accuracy of one seeded
inference pass (the same noise at every count) and that pass's time (``bench.results.artifacts``). Pure: frames and
arrays in, frames out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.report.labels import GROUP, LABELS

PER_RUN_COLUMNS = [*GROUP, *LABELS, "seed", "run_id", "integrator", "steps", "test_acc_pct", "infer_s",
                   "infer_ms_per_image"]
PER_GROUP_COLUMNS = [*GROUP, *LABELS, "integrator", "steps", "n_runs", "test_acc_pct_mean", "test_acc_pct_sd",
                     "infer_ms_per_image_mean"]


def swept(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose config asked for a step sweep (only their artifacts need reading)."""
    def asked(text: object) -> bool:
        try:
            return bool(json.loads(str(text)).get("ode_steps_sweep"))
        except (ValueError, AttributeError):
            return False

    return runs[runs["config_json"].map(asked).astype(bool)] if not runs.empty else runs


def per_run(runs: pd.DataFrame, found: Mapping[tuple[str, str], Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """One row per run and step count, for the runs whose artifacts (by (results_dir, run_id)) hold a sweep."""
    rows = []
    for _, run in runs.iterrows():
        arrays = found.get((str(run["results_dir"]), str(run["run_id"])))
        if arrays is None or "sweep_steps" not in arrays:
            continue
        images = len(arrays["label"])
        for steps, acc, seconds in zip(arrays["sweep_steps"], arrays["sweep_test_acc"], arrays["sweep_infer_s"],
                                       strict=True):
            rows.append([*run[[*GROUP, *LABELS, "seed", "run_id", "integrator"]], int(steps), float(acc),
                         float(seconds), 1000 * float(seconds) / images if images else np.nan])
    return pd.DataFrame(rows, columns=PER_RUN_COLUMNS)


def per_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean (and sd over runs) per group, integrator and step count."""
    if frame.empty:
        return pd.DataFrame(columns=PER_GROUP_COLUMNS)
    grouped = frame.groupby([*GROUP, *LABELS, "integrator", "steps"], sort=True, dropna=False)
    out = grouped.agg(n_runs=("run_id", "size"), test_acc_pct_mean=("test_acc_pct", "mean"),
                      test_acc_pct_sd=("test_acc_pct", "std"), infer_ms_per_image_mean=("infer_ms_per_image", "mean"))
    return out.reset_index()[PER_GROUP_COLUMNS]
