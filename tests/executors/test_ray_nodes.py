"""The Ray executor on a Ray cluster of two nodes on this machine (a head and a second node, each started with
``ray start`` on its own ports with one CPU): a sweep's tasks land on both nodes, ``--out`` is shared, and a
node's raylet killed mid-run gives a ``failed`` row for its task while the other finishes. Also the Ray driver
under SIGTERM. Skipped where Ray is not installed. Synthetic MNIST-format files: code paths only."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TINY, cli
from tests.executors.test_stopping import GRACE_S, _left_after

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs it)")
HEAD_PORT = 6391
RUN = ["run", *TINY, "--seeds", "0", "--threads", "1", "--device", "cpu"]


def _ray(*args: str) -> subprocess.CompletedProcess:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_worker_niceness": "0"}
    return subprocess.run([ray, *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head and a second node, one CPU each, both on this machine; yields the head's address. Token
    authentication on, as ``ray start --head`` sets it up by default since Ray 2.59, with a token of this test's
    own, which the sweeps' drivers find through the same variables as a user's would."""
    token = tmp_path_factory.mktemp("ray-auth") / "auth_token"
    token.write_text(secrets.token_hex(32))
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_AUTH_MODE", "token")
    patch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    head = _ray("start", "--head", f"--port={HEAD_PORT}", "--num-cpus=1", "--include-dashboard=false",
                "--node-manager-port=6392", "--object-manager-port=6393",
                "--resources", json.dumps({"head": 1}))
    assert head.returncode == 0, head.stderr
    second = _ray("start", f"--address=127.0.0.1:{HEAD_PORT}", "--num-cpus=1", "--node-manager-port=6394",
                  "--object-manager-port=6395", "--resources", json.dumps({"second": 1}))
    try:
        assert second.returncode == 0, second.stderr
        yield f"127.0.0.1:{HEAD_PORT}"
    finally:
        _ray("stop", "--force")
        patch.undo()


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def start_events(stdout: str) -> list[dict]:
    return [e for e in map(json.loads, stdout.splitlines()) if e["event"] == "start"]


def test_tasks_land_on_both_nodes_and_write_one_shared_out(two_nodes: str, tiny_mnist: Path, tmp_path: Path) -> None:
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--epochs", "8", "--methods", "noprop,backprop",
               "--out", str(tmp_path), "--executor", "ray", "--ray-address", two_nodes, "--jsonl", timeout=400)
    assert proc.returncode == 0, proc.stderr
    nodes = {e["node"] for e in start_events(proc.stdout)}
    assert len(nodes) == 2  # one CPU per node, one per task: the two ran at once, one on each node
    assert [r["status"] for r in rows(tmp_path / "runs.csv")] == ["ok", "ok"]
    assert len(rows(tmp_path / "epochs.csv")) == 16


def _raylet_of_second_node() -> int:
    """The pid of the raylet that listens on the second node's node-manager port (read from /proc: ``ps``
    cuts long command lines to the terminal's width)."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # not a process, or one that just ended
        if args[0].endswith(b"/raylet") and b"--node_manager_port=6394" in args:
            return int(proc.name)
    raise AssertionError("no raylet of the second node found")


def test_a_killed_node_fails_its_task_and_the_other_finishes(two_nodes: str, tiny_mnist: Path,
                                                             tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *RUN, "--data-dir", str(tiny_mnist), "--epochs",
                             "30", "--methods", "noprop,backprop", "--out", str(tmp_path), "--executor", "ray",
                             "--ray-address", two_nodes, "--jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"})
    deadline = time.time() + 180
    while len(list((tmp_path / "checkpoints").glob("*.pt"))) < 2 and time.time() < deadline:
        time.sleep(0.2)  # both runs are training, one on each node
    os.kill(_raylet_of_second_node(), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=400)
    assert proc.returncode == 1, stderr  # one run failed; the sweep went on
    assert (tmp_path / "runs.csv").exists(), stdout + stderr
    statuses = sorted(r["status"] for r in rows(tmp_path / "runs.csv"))
    assert statuses == ["failed", "ok"], statuses
    failed = next(r for r in rows(tmp_path / "runs.csv") if r["status"] == "failed")
    assert "Ray task ended before recording its result" in failed["reason"]


def test_a_ray_client_address_is_refused_in_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    proc = cli(*RUN, "--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--executor", "ray",
               "--ray-address", "ray://127.0.0.1:10001")
    assert proc.returncode == 2 and "ray://" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_sigterm_to_the_ray_driver_records_interrupted_and_resume_completes_the_same_row(
        tiny_mnist: Path, tmp_path: Path) -> None:
    args = [*RUN, "--data-dir", str(tiny_mnist), "--epochs", "40", "--methods", "noprop", "--quiet"]
    out = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", *args, "--out", str(out), "--executor", "ray"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache", "RAY_worker_niceness": "0"})
    deadline = time.time() + 240
    while not list((out / "checkpoints").glob("*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 143 and "--resume" in stderr and "core dumped" not in stderr, stderr
    assert [(r["status"], r["reason"]) for r in rows(out / "runs.csv")] == [("interrupted", "SIGTERM")]
    assert _left_after(proc.pid, GRACE_S) == []

    resumed = cli(*args, "--out", str(out), "--resume", timeout=400)  # any executor continues it; local starts fastest
    straight = cli(*args, "--out", str(tmp_path / "straight"), "--in-process")
    assert resumed.returncode == 0 and straight.returncode == 0, resumed.stderr + straight.stderr
    [final], [expected] = rows(out / "runs.csv"), rows(tmp_path / "straight" / "runs.csv")
    assert final["status"] == "ok" and len(rows(out / "epochs.csv")) == 40
    assert float(final["test_acc"]) == pytest.approx(float(expected["test_acc"]), abs=1e-9)
