"""``--executor slurm`` against a real SLURM: the one-node cluster ``.ci/slurm-up`` starts on this machine (CI runs
it before the suite). Skipped, saying why, where no SLURM controller answers. Synthetic MNIST-format files: code
paths only."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.executors import slurm_queue
from bench.executors.slurm import ended_as, job_stdout
from tests.conftest import TINY, cli


def _slurm_up() -> str | None:
    """Why the SLURM tests cannot run here, or None when they can."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed here (run .ci/slurm-up)"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install -e '.[slurm]')"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "the SLURM controller does not answer (run .ci/slurm-up)"
    if done.returncode != 0 or not done.stdout.strip():
        return "no SLURM controller answers here (run .ci/slurm-up)"
    return None


pytestmark = pytest.mark.skipif(_slurm_up() is not None, reason=str(_slurm_up()))
RUN = ["run", *TINY, "--seeds", "0", "--quiet"]


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ledger(out: Path) -> dict[str, str]:
    return json.loads((out / "checkpoints" / "slurm" / "jobs.json").read_text())


def wait_for(predicate, limit_s: float = 120.0, every_s: float = 0.2) -> None:
    deadline = time.time() + limit_s
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every_s)


def started(out: Path, method: str) -> bool:
    """Whether the job of ``method``'s run has sent an epoch (so it is running its run)."""
    for path in (out / "checkpoints" / "slurm").glob(f"*-{method}-*.events.jsonl"):
        if '"event": "epoch"' in path.read_text():
            return True
    return False


LONG = [*RUN, "--epochs", "30", "--methods", "noprop", "--device", "cpu"]


@pytest.fixture(scope="module")
def straight(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The row of LONG's run never stopped, run here by the local executor."""
    out = tmp_path_factory.mktemp("straight")
    proc = cli(*LONG, "--data-dir", str(tiny_mnist), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    [row] = rows(out / "runs.csv")
    return row


def test_a_sweep_through_slurm_gives_the_local_rows(tiny_mnist: Path, tmp_path: Path) -> None:
    args = [*RUN, "--data-dir", str(tiny_mnist), "--epochs", "2", "--methods", "noprop,backprop"]
    local = cli(*args, "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    out = tmp_path / "slurm"
    proc = cli(*args, "--out", str(out), "--executor", "slurm", "--slurm-partition", "debug")
    assert proc.returncode == 0, proc.stderr
    here, there = rows(tmp_path / "local" / "runs.csv"), rows(out / "runs.csv")
    assert [r["status"] for r in there] == ["ok", "ok"]
    assert {r["measured_in"] for r in there} == {"slurm-job"}
    for a, b in zip(sorted(here, key=lambda r: r["method"]), sorted(there, key=lambda r: r["method"]), strict=True):
        assert a["method"] == b["method"] and float(a["test_acc"]) == float(b["test_acc"])
    assert len(rows(out / "epochs.csv")) == 4
    jobs = ledger(out)
    assert len(jobs) == 2
    for job_id in jobs.values():  # the job's own stdout and stderr beside the run's checkpoints
        logs = job_stdout(out / "checkpoints" / "slurm", job_id)
        assert {p.suffix for p in logs} == {".out", ".err"}


def test_a_cancelled_job_is_recorded_and_the_others_finish(tiny_mnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *RUN, "--data-dir", str(tiny_mnist), "--epochs", "40",
                             "--methods", "noprop,backprop", "--out", str(out), "--executor", "slurm",
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"})
    wait_for(lambda: (out / "checkpoints" / "slurm" / "jobs.json").exists() and started(out, "noprop-dt"))
    victim = next(v for k, v in ledger(out).items() if "-noprop-dt-" in k)
    subprocess.run(["scancel", victim], check=True)
    _, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 1, stderr  # one run did not finish ok; the sweep itself went on
    by_method = {r["method"]: r for r in rows(out / "runs.csv")}
    assert by_method["backprop"]["status"] == "ok"
    assert by_method["noprop-dt"]["status"] in ("interrupted", "failed")
    assert by_method["noprop-dt"]["reason"] in ("SIGTERM",) or "CANCELLED" in by_method["noprop-dt"]["reason"]


def test_resume_after_the_driver_died_follows_the_job_instead_of_submitting_it_again(
        tiny_mnist: Path, tmp_path: Path, straight: dict) -> None:
    out = tmp_path / "res"
    args = [*LONG, "--data-dir", str(tiny_mnist), "--out", str(out), "--executor", "slurm"]
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"})
    wait_for(lambda: (out / "checkpoints" / "slurm" / "jobs.json").exists() and started(out, "noprop-dt"))
    driver.send_signal(signal.SIGKILL)  # the driver dies at once; its job goes on
    driver.wait()
    before = ledger(out)
    resumed = cli(*args, "--resume", timeout=400)
    assert resumed.returncode == 0, resumed.stderr
    assert ledger(out) == before  # followed, not submitted again
    [final] = rows(out / "runs.csv")
    assert final["status"] == "ok" and final["epochs_done"] == "30"
    assert float(final["test_acc"]) == float(straight["test_acc"])


def test_a_requeued_job_continues_its_run_to_the_uninterrupted_result(tiny_mnist: Path, tmp_path: Path,
                                                                      straight: dict) -> None:
    """The time-limit warning (SIGUSR2, sent here by ``scancel --signal``) with --slurm-requeue: the job requeues
    itself and, started again, finishes its run from the checkpoint, equal to a run never stopped."""
    out = tmp_path / "slurm"
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", *LONG, "--data-dir", str(tiny_mnist), "--out",
                               str(out), "--executor", "slurm", "--slurm-requeue"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"})
    wait_for(lambda: (out / "checkpoints" / "slurm" / "jobs.json").exists() and started(out, "noprop-dt"))
    [job_id] = ledger(out).values()
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    _, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 0, stderr
    [events] = (out / "checkpoints" / "slurm").glob("*.events.jsonl")
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds.count("requeued") == 1 and kinds.count("start") == 2 and kinds.count("end") == 1
    [there] = rows(out / "runs.csv")
    assert there["status"] == "ok" and there["epochs_done"] == "30"
    assert float(there["test_acc"]) == float(straight["test_acc"])
    assert len(rows(out / "epochs.csv")) == 30


@pytest.mark.parametrize("args, message", [
    (["--slurm-partition", "nosuchpartition"], "no partition 'nosuchpartition'"),
    (["--slurm-time", "soon"], "not a SLURM time"),
    (["--slurm-extra", "qos"], "not KEY=VALUE"),
])
def test_bad_slurm_input_is_one_line(tiny_mnist: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--executor", "slurm", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs.csv").exists()


def test_without_sbatch_it_is_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "out"), "--executor", "slurm",
               env={"PATH": str(bare)})
    assert proc.returncode == 2 and "sbatch" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_job_at_its_time_limit_records_its_run_interrupted(tiny_mnist: Path, tmp_path: Path) -> None:
    """A one-minute job gets SIGUSR2 (--signal=USR2@30) anywhere in its first 30 s: SLURM may send it up to 60 s
    before the time asked for. Whenever it comes, the run is recorded interrupted by the time limit."""
    out = tmp_path / "res"
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--epochs", "5000", "--methods", "noprop", "--out", str(out),
               "--executor", "slurm", "--slurm-partition", "short", "--slurm-time", "1", "--device", "cpu",
               timeout=300)
    assert proc.returncode == 1, proc.stderr
    [row] = rows(out / "runs.csv")
    assert row["status"] == "interrupted" and row["reason"].startswith("SLURM time limit"), row
    assert int(row["epochs_done"] or 0) < 5000


def job_python_started(out: Path, job_id: str) -> bool:
    """Whether the job's Python has started (submitit logs its start before it loads the job, which imports torch
    and the harness: seconds before the run can install any handler of its own)."""
    return any("Starting with JobEnvironment" in log.read_text()
               for log in job_stdout(out / "checkpoints" / "slurm", job_id) if log.suffix == ".out")


def test_the_warning_signal_as_the_job_starts_records_the_time_limit(tiny_mnist: Path, tmp_path: Path) -> None:
    """SLURM may send the time-limit warning up to 60 s before the time asked for (sbatch --signal): in a short
    job, while its Python is still starting. Sent here by ``scancel --signal=USR2`` the moment the job's Python has
    started, it must not kill the job unrecorded ('failed ... NonZeroExitCode'): the row says the time limit."""
    out = tmp_path / "res"
    driver = subprocess.Popen([sys.executable, "-m", "bench.cli", *RUN, "--data-dir", str(tiny_mnist), "--epochs",
                               "30", "--methods", "noprop", "--device", "cpu", "--out", str(out), "--executor",
                               "slurm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"})
    wait_for(lambda: (out / "checkpoints" / "slurm" / "jobs.json").exists())
    [job_id] = ledger(out).values()
    wait_for(lambda: job_python_started(out, job_id), limit_s=120, every_s=0.01)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    _, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 1, stderr
    [row] = rows(out / "runs.csv")
    assert row["status"] == "interrupted" and row["reason"].startswith("SLURM time limit"), row


def test_a_task_killed_by_the_warning_reads_as_the_time_limit(tmp_path: Path) -> None:
    """Where the warning comes before a job's interpreter has even started, nothing can hold it: the task dies by
    SIGUSR2 and srun exits 140. The driver reads that state from SLURM as the time limit, not as a failure."""
    log = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --output={log}\n#SBATCH --time=1\n"
                      f"srun {sys.executable} -c 'import time; print(\"up\", flush=True); time.sleep(60)'\n")
    job_id = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                            check=True).stdout.strip()
    wait_for(lambda: log.exists() and "up" in log.read_text(), limit_s=60)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    wait_for(lambda: not slurm_queue.states([job_id])[job_id].active, limit_s=60)
    state = slurm_queue.finished_state(job_id)
    assert (state.state, state.exit_code) == ("FAILED", "140:0"), state
    status, reason = ended_as(job_id, state)
    assert status == "interrupted" and reason.startswith("SLURM time limit") and "140" in reason, reason
