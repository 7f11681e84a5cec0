"""The inference-steps view from hand-written sweeps in run artifacts: which runs are read, per-image times, group
means, and what ``report`` writes (table, CSV, figure) for them, and leaves out without them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.report import aggregate
from bench.report.build import build
from bench.report.load import load
from bench.report.views import inference_steps
from bench.results.artifacts import artifact_path
from tests.report.helpers import invoke_report, run_row, write_folder

SWEEP_CONFIG = json.dumps({"epochs": 2, "embedding": "one-hot", "ode_steps_sweep": [1, 10]})


def _artifact(folder: Path, run_id: str, accs: tuple[float, float], seconds: tuple[float, float]) -> None:
    path = artifact_path(folder, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, label=np.zeros(500, dtype=np.int16), sweep_steps=np.array([1.0, 10.0]),
             sweep_test_acc=np.array(accs), sweep_infer_s=np.array(seconds))


def folder(tmp_path: Path) -> Path:
    """NoProp-FM seeds 0 and 1 with a sweep over 1 and 10 steps on 500 test images; NoProp-DT without one."""
    fm = [run_row(f"fm{s}", "fashion-mnist", "noprop-fm", s, 80.0, 1.0, ode_steps=10, integrator="euler",
                  config_json=SWEEP_CONFIG) for s in (0, 1)]
    dt = run_row("dt0", "fashion-mnist", "noprop-dt", 0, 82.0, 5.0)
    out = write_folder(tmp_path / "res", [*fm, dt])
    _artifact(out, "fm0", (40.0, 80.0), (0.05, 0.5))
    _artifact(out, "fm1", (50.0, 84.0), (0.15, 0.7))
    return out


def _steps(out: Path) -> aggregate.Report:
    report = build(load([out]))
    assert sorted(set(report.data["inference_steps"]["run_id"])) == ["fm0", "fm1"]  # dt0 swept nothing
    return report


def test_per_run_and_group_means_with_time_per_image(tmp_path: Path) -> None:
    report = _steps(folder(tmp_path))
    steps = report.data["inference_steps"]
    rows = steps.set_index(["run_id", "steps"])
    assert rows.loc[("fm0", 10), "test_acc_pct"] == 80.0
    assert rows.loc[("fm1", 1), "infer_ms_per_image"] == pytest.approx(1000 * 0.15 / 500)
    groups = inference_steps.per_group(steps).set_index("steps")
    assert groups.loc[1, "test_acc_pct_mean"] == 45.0 and groups.loc[10, "n_runs"] == 2
    assert groups.loc[10, "infer_ms_per_image_mean"] == pytest.approx(1000 * 0.6 / 500)
    assert groups.loc[1, "test_acc_pct_sd"] == pytest.approx(np.std([40.0, 50.0], ddof=1))


def test_report_writes_the_table_csv_and_figure_only_where_runs_swept(tmp_path: Path) -> None:
    out = folder(tmp_path)
    result = invoke_report(str(out))
    assert result.exit_code == 0, result.output
    assert "Inference steps" in result.output
    written = out / "report"
    assert {"inference_steps.csv", "inference_steps.png"} <= {p.name for p in written.iterdir()}
    assert "## Inference steps" in (written / "summary.md").read_text()
    plain = write_folder(tmp_path / "plain", [run_row("dt0", "fashion-mnist", "noprop-dt", 0, 82.0, 5.0)])
    assert invoke_report(str(plain)).exit_code == 0
    assert not {"inference_steps.csv", "inference_steps.png"} & {p.name for p in (plain / "report").iterdir()}
