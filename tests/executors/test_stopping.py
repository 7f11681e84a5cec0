"""Ctrl-C, SIGTERM and SIGHUP stop a sweep the same way: the running run records itself ``interrupted`` (with the
signal as its reason), no process of the sweep is left, the CSVs stay whole, the exit code is 128 + the signal, and
``--resume`` finishes with the rows an uninterrupted sweep gives.

Synthetic MNIST-format files: code paths only.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, cli, two_gpus_on_cuda

ARGS = ["run", *TINY, "--epochs", "12", "--seeds", "0", "--quiet"]
GRACE_S = 5.0  # "every process the sweep started ends within a few seconds" of the sweep's own end


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def straight(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The rows of the same sweep run without a break."""
    out = tmp_path_factory.mktemp("straight")
    proc = cli(*ARGS, "--data-dir", str(tiny_mnist), "--out", str(out), "--in-process")
    assert proc.returncode == 0, proc.stderr
    return rows(out / "runs.csv")


def start_and_stop(tiny_mnist: Path, out: Path, signum: int, whole_group: bool,
                   args: list[str] = ARGS) -> tuple[int, str]:
    """Start the sweep in a session of its own, send ``signum`` once the first run has checkpointed (to the whole
    process group, as a terminal or SLURM does, or to the command alone, as ``kill`` or ``timeout`` does), and
    return its exit code and stderr after checking that no process of its session is left."""
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"}
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args, "--data-dir", str(tiny_mnist), "--out",
                             str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 180
    while not list((out / "checkpoints").glob("*-noprop-dt-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)
    if whole_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=150)
    left = _left_after(proc.pid, GRACE_S)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes of the sweep left running: {left}"
    return proc.returncode, stderr


def _left_after(sid: int, grace_s: float) -> list[int]:
    """The processes of session ``sid`` still alive ``grace_s`` after its leader ended (one that is exiting, such
    as multiprocessing's resource tracker once its pipe closed, is given that long)."""
    deadline = time.time() + grace_s
    while (left := _session_processes(sid)) and time.time() < deadline:
        time.sleep(0.1)
    return left


def _session_processes(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (zombies excluded), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("signum, whole_group", [
    (signal.SIGINT, True),  # Ctrl-C in a terminal
    (signal.SIGTERM, False),  # kill, timeout, systemd: the command alone
    (signal.SIGTERM, True),  # a SLURM time limit or scancel: every process of the job
    (signal.SIGHUP, True),  # the terminal or ssh session closed
], ids=["ctrl-c", "sigterm", "sigterm-group", "sighup"])
def test_a_stop_signal_records_interrupted_and_resume_completes_the_same_rows(
        tiny_mnist: Path, tmp_path: Path, straight: list[dict], signum: int, whole_group: bool) -> None:
    out = tmp_path / "cut"
    code, stderr = start_and_stop(tiny_mnist, out, signum, whole_group)
    name = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}[signum]
    assert code == 128 + signum and "--resume" in stderr and name in stderr and "Traceback" not in stderr
    cut = rows(out / "runs.csv")
    assert [(r["status"], r["reason"]) for r in cut] == [("interrupted", name)]
    assert 1 <= int(cut[0]["epochs_done"]) < 12
    assert len(rows(out / "epochs.csv")) == int(cut[0]["epochs_done"])  # whole CSVs: one row per finished epoch

    resumed = cli(*ARGS, "--data-dir", str(tiny_mnist), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    final = rows(out / "runs.csv")
    assert len(final) == len(straight) == 2 and all(r["status"] == "ok" for r in final)
    assert cut[0]["run_id"] in {r["run_id"] for r in final}  # the interrupted row was completed, not duplicated
    epochs = rows(out / "epochs.csv")
    assert len(epochs) == 24 and len({(r["run_id"], r["epoch"]) for r in epochs}) == 24
    by_method = {r["method"]: r for r in straight}  # weights, optimiser state and random streams restored
    for r in final:
        assert float(r["test_acc"]) == pytest.approx(float(by_method[r["method"]]["test_acc"]), abs=1e-9)
    if signum == signal.SIGINT:  # once is enough: resuming a finished sweep runs nothing
        again = cli(*ARGS, "--data-dir", str(tiny_mnist), "--out", str(out), "--resume")
        assert again.returncode == 0 and len(rows(out / "runs.csv")) == 2


BLOCK_PARALLEL = [*ARGS, "--methods", "noprop", "--block-workers", "2", "--order", "interleaved",
                  "--threads", "1"]


@two_gpus_on_cuda()
def test_sigterm_stops_block_parallel_workers_and_resume_completes_the_same_row(tiny_mnist: Path,
                                                                               tmp_path: Path) -> None:
    """Block-parallel NoProp-DT (two gloo processes besides the run's own), SIGTERM to every process at once as
    SLURM sends it: the leader records the run, the followers end with it, and resuming gives the row of a run never
    stopped. (SIGTERM to the command alone reaches the workers through the same path as without block workers.)"""
    out = tmp_path / "cut"
    code, stderr = start_and_stop(tiny_mnist, out, signal.SIGTERM, True, BLOCK_PARALLEL)
    assert code == 143 and "--resume" in stderr and "Traceback" not in stderr, stderr
    [cut] = rows(out / "runs.csv")
    assert (cut["status"], cut["reason"]) == ("interrupted", "SIGTERM") and 1 <= int(cut["epochs_done"]) < 12
    resumed = cli(*BLOCK_PARALLEL, "--data-dir", str(tiny_mnist), "--out", str(out), "--resume")
    straight = cli(*BLOCK_PARALLEL, "--data-dir", str(tiny_mnist), "--out", str(tmp_path / "straight"),
                   "--in-process")
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr + straight.stderr
    [final], [expected] = rows(out / "runs.csv"), rows(tmp_path / "straight" / "runs.csv")
    assert final["status"] == "ok" and len(rows(out / "epochs.csv")) == 12
    assert float(final["test_acc"]) == pytest.approx(float(expected["test_acc"]), abs=1e-9)
