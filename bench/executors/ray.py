"""The Ray executor (``--executor ray``, the optional ``ray`` extra): every run of a sweep is one Ray task, on a
Ray instance started here or on an existing cluster (``--ray-address``, else ``$RAY_ADDRESS``).

A task runs in a fresh worker process (``max_calls=1``: its peak RSS is its own, plus what a Ray worker holds,
hence ``measured_in = ray-task``) and is never retried (``max_retries=0``: a crashed run is recorded, not repeated
behind the sweep's back). It asks for one GPU when the run is on CUDA, else for ``threads x block_workers`` CPUs.

Tasks send their progress events to a small mailbox actor (``mailbox.py``, on the driver's node) and write only
their own checkpoints and artifacts; the driver (this process) collects the events, shows them with the same
``emit`` as the local executor, and is the only writer of runs.csv and epochs.csv, so no two nodes ever race on
the CSVs of a shared file system. A task sends without waiting for each event to arrive: a task blocked in
``ray.get`` lends its CPUs to the next task, which would put two runs on cores meant for one.

Ctrl-C, SIGTERM or SIGHUP to the driver (``bench.run.stopping``) cancels the tasks: Ray raises KeyboardInterrupt
in each running one, whose run records itself ``interrupted`` and sends that row before it exits; tasks not started
yet never start, and ``--resume`` finishes the lot. A task whose worker dies without sending its row (SIGKILL, the
OOM killer, a lost node) surfaces as a ``RayError`` from ``ray.get``; the driver records it ``failed`` (``oom``
when Ray's memory monitor killed it) and goes on.

Ray is imported inside functions only, so the package (and the local executor) work without it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from typing import Any

from bench.executors.mailbox import Mailbox
from bench.executors.one_run import execute_run
from bench.executors.plan import PlannedRun, key_of
from bench.executors.sweep import SweepInterrupted, prepare, record_crashed
from bench.results import ResultsError, replace_run_rows
from bench.run import stopping
from bench.run.config import RunConfig
from bench.run.identity import RunError, resolve_device
from bench.run.readers import DataError
from bench.run.recipe import Emit

INSTALL_HINT = "the ray executor needs Ray: pip install 'noprop-bench[ray]'"
MEASURED_IN = "ray-task"
POLL_S = 0.2  # how long the driver waits for a task to finish before showing the events that arrived meanwhile
CANCEL_WAIT_S = 60.0  # after Ctrl-C: how long cancelled runs get to record themselves as interrupted
PROBE_TIMEOUT_S = 5.0
# Ray retries a cluster address that does not answer for many minutes; these bound it to about half of one (two
# tries; setdefault: a user's own values win). The TCP probe before it answers the common case, nothing listening
# there, at once.
BOUNDED_CONNECT = {"RAY_gcs_server_port_wait_time_s": "2", "RAY_py_gcs_connect_timeout_s": "5"}


def run_sweep(config: RunConfig, *, resume: bool, emit: Emit, address: str | None = None) -> list[dict]:
    """Run every planned (method, seed) as a Ray task; returns their run rows in plan order.

    Raises RunError when a run cannot start (bad data, unwritable results) or Ray is missing or unreachable, and
    SweepInterrupted on Ctrl-C (after the running tasks recorded themselves as interrupted)."""
    remedy = "drop --ray-address" if address else "unset RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and address.startswith("ray://"):
        raise RunError(f"{address} is a Ray Client address, which the executor does not use: run the sweep on a "
                       "node of the cluster and give its HEAD:6379 address (docs/clusters.md)")
    if address is not None:
        for name, value in BOUNDED_CONNECT.items():  # before the import: Ray reads some of them only then
            os.environ.setdefault(name, value)
    ray = import_ray()
    todo = prepare(config, resume, emit)
    if not todo:
        return []
    started_here = connect(ray, address, remedy)
    try:
        resources = task_resources(config)
        if started_here:
            _check_fits(ray, resources)
        stopping.stop_on_signals()  # after ray.init, whose own SIGTERM handler aborts the driver with a core dump
        return _Driver(ray, config, resume, emit).run(todo, resources)
    finally:
        if started_here:
            ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a one-line RunError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RunError(INSTALL_HINT) from None
    return ray


def connect(ray: Any, address: str | None, remedy: str = "drop --ray-address") -> bool:
    """Join the cluster at ``address``, or start a local instance; True when this call started Ray (and the
    sweep must shut it down). An existing connection (``ray.init`` done by the caller) is used as it is.
    ``remedy`` ends the error line when the cluster cannot be reached."""
    if ray.is_initialized():
        return False
    if address is None:
        start_local(ray)
        return True
    _probe(address, remedy)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as e:  # Ray raises ConnectionError, RuntimeError or ValueError depending on what failed
        raise RunError(_unreachable(address, e, _with_auth_hint(remedy))) from None
    return False


def _with_auth_hint(remedy: str) -> str:
    """A head started by ``ray start --head`` (Ray 2.59 on) asks for a token, which a driver sends only with
    ``RAY_AUTH_MODE=token``; Ray's exception does not say so (only its log does), so the line names it."""
    if os.environ.get("RAY_AUTH_MODE", "disabled") == "token":
        return remedy
    return (f"{remedy} (if the cluster uses token authentication, set RAY_AUTH_MODE=token and the cluster's "
            "token in ~/.ray/auth_token or RAY_AUTH_TOKEN)")


def start_local(ray: Any, num_cpus: int | None = None) -> None:
    """Start a new Ray instance on this machine (``address="local"``: not one ``ray start`` left running),
    quietly (no dashboard, no worker logs on the terminal). Its workers run at the driver's priority rather than
    Ray's default niceness 15, so a run's timings compete with other processes as a local executor's would
    (``$RAY_worker_niceness`` still wins)."""
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)


def _probe(address: str, remedy: str) -> None:
    """Fail at once when nothing listens at a ``host:port`` address (Ray itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: left to Ray
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise RunError(_unreachable(address, e, remedy)) from None


def _unreachable(address: str, e: Exception, remedy: str) -> str:
    detail = (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip().splitlines()[0]
    return f"cannot reach the Ray cluster at {address}: {detail}; check the address or {remedy}"


def task_resources(config: RunConfig) -> dict[str, Any]:
    """What one run's task asks Ray for: a GPU for a CUDA run, else the CPUs its torch threads use (per block
    worker), so Ray never packs more runs onto a node than it has cores for."""
    if resolve_device(config.device).type == "cuda":
        return {"num_gpus": config.block_workers}  # block-parallel: one GPU per block worker
    return {"num_cpus": _threads(config) * config.block_workers}


def _threads(config: RunConfig) -> int:
    import torch

    return config.threads or torch.get_num_threads()


def _check_fits(ray: Any, resources: dict[str, Any]) -> None:
    """On an instance started here nothing will join later: a task asking for more than it has would wait forever."""
    have = ray.cluster_resources()
    for option, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        if resources.get(option, 0) > have.get(name, 0):
            raise RunError(f"each run asks Ray for {resources[option]} {name}s but this machine's Ray has "
                           f"{have.get(name, 0):g}; lower --threads (or --block-workers)")


def _task(config_dict: dict, method: str, seed: int, resume: bool, mailbox: Any, threads: int,
          cwd: str) -> str | None:
    """One run in its own Ray worker: send its events (``start`` also says which process and host it runs in)
    and return None, or the message of an error that stops the sweep (bad data, a run that cannot start)."""
    import ray
    import torch

    if os.path.isdir(cwd):  # relative --out and --data-dir mean what they mean to the driver
        os.chdir(cwd)
    config = RunConfig(**config_dict)
    torch.set_num_threads(threads)
    sent: list[Any] = []

    def emit(event: dict[str, Any]) -> None:
        if event["event"] == "start":
            event = {**event, "pid": os.getpid(), "host": socket.gethostname(),
                     "node": ray.get_runtime_context().get_node_id()}
        sent.append(mailbox.put.remote(event))  # not waited for here: see the module docstring

    try:
        with stopping.restored_after():  # this worker runs later tasks too: an interrupted run must not leave it deaf
            stopping.interruptible()  # so that ray.cancel reaches the run, whatever the worker inherited
            execute_run(config, method, seed, resume=resume, emit=emit, measured_in=MEASURED_IN, write_rows=None)
    except (DataError, RunError, ResultsError) as e:  # they stop the sweep (a full disk at a checkpoint too)
        return str(e)
    finally:
        ray.get(sent)  # every event has arrived before the driver sees this task end
    return None


def _on_this_node(ray: Any, actor: Any) -> Any:
    """``actor`` pinned to the driver's node: left to Ray, the mailbox may land on another node, and losing that
    node would lose every run's events, not just its own tasks'."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))


class _Driver:
    """Submits the tasks, shows their events, writes their rows, and records tasks that died without one."""

    def __init__(self, ray: Any, config: RunConfig, resume: bool, emit: Emit) -> None:
        self.ray, self.config, self.resume, self.emit = ray, config, resume, emit
        self.mailbox = _on_this_node(ray, ray.remote(num_cpus=0)(Mailbox)).remote()
        self.backlog: deque[dict] = deque()  # events taken from the mailbox, not yet handled
        self.pending: dict[Any, PlannedRun] = {}  # object ref of an unfinished task -> its run
        self.rows: dict[str, dict] = {}  # run key -> its run row, once written
        self.error: str | None = None
        self.stopped_by: str | None = None  # why the driver stopped the sweep, once it has

    def run(self, todo: list[PlannedRun], resources: dict[str, Any]) -> list[dict]:
        """Submit every run, then follow them to the end; returns the run rows in plan order."""
        task = self.ray.remote(max_retries=0, max_calls=1)(_task).options(**resources)
        config_dict, threads, cwd = self.config.to_dict(), _threads(self.config), os.getcwd()
        try:
            for run in todo:
                ref = task.remote(config_dict, run.method, run.seed, self.resume, self.mailbox, threads, cwd)
                self.pending[ref] = run
            self._follow()
        except KeyboardInterrupt:
            stopping.hold_off()  # the cancelled runs are recording themselves: a second signal must not cut that
            self.stopped_by = stopping.reason()
            self._stop()
            raise SweepInterrupted(stopping.exit_code()) from None
        except BaseException:
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
            raise
        finally:
            self.ray.kill(self.mailbox)
        return [self.rows[k] for k in (key_of(self.config, run) for run in todo) if k in self.rows]

    def _follow(self) -> None:
        while self.pending:
            self._poll()
            if self.error is not None:
                self._stop()
                raise RunError(self.error)

    def _poll(self) -> None:
        """Wait a little for a task to finish; handle the events that arrived, then the finished tasks (whose
        events have all arrived by then: a task ends only once its events are in the mailbox)."""
        done, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
        self._drain()
        for ref in done:
            self._finish(ref)

    def _drain(self) -> None:
        """Handle queued events one at a time, so a Ctrl-C while handling one leaves the rest for the next drain."""
        self.backlog.extend(self.ray.get(self.mailbox.take.remote()))
        while self.backlog:
            self._handle(self.backlog.popleft())

    def _handle(self, event: dict[str, Any]) -> None:
        if event["event"] == "end":
            row = event["row"]
            if self.stopped_by and row.get("status") == "interrupted":  # a cancelled task knows no signal
                row = event["row"] = {**row, "reason": self.stopped_by}
            replace_run_rows(self.config.out, row["run_id"], row, event.get("epoch_rows", []))
            self.rows[event["key"]] = row
        self.emit(event)

    def _finish(self, ref: Any) -> None:
        """A task ended: note an error that stops the sweep, or record a run that died without its row."""
        run = self.pending.pop(ref)
        try:
            error = self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError:
            return  # cancelled by _stop: a started run has sent its interrupted row, a queued one never started
        except self.ray.exceptions.RayError as e:
            self._record_lost(run, e)
            return
        if error is not None:
            self.error = self.error or error

    def _record_lost(self, run: PlannedRun, e: Exception) -> None:
        """The task's worker died (killed, out of memory, node lost) or the task failed outside the run."""
        key = key_of(self.config, run)
        if key in self.rows:  # it had recorded its run before dying
            return
        cause = getattr(e, "cause", None) or e  # a RayTaskError wraps the task's own exception
        text = str(cause).strip().splitlines()
        oom = isinstance(e, self.ray.exceptions.OutOfMemoryError)
        reason = f"Ray task ended before recording its result: {type(cause).__name__}: {text[0] if text else ''}"
        row = record_crashed(self.config, run, status="oom" if oom else "failed", reason=reason[:200],
                             measured_in=MEASURED_IN)
        self.rows[key] = row
        self.emit({"event": "end", "key": key, "row": row, "epoch_rows": []})

    def _stop(self) -> None:
        """Cancel every unfinished task (Ray raises KeyboardInterrupt in a running one, which records its run as
        interrupted; a queued one never starts) and give them CANCEL_WAIT_S to send their rows."""
        for ref in self.pending:
            self.ray.cancel(ref)
        deadline = time.monotonic() + CANCEL_WAIT_S
        while self.pending and time.monotonic() < deadline:
            self._poll()
        self._drain()
        for ref in self.pending:  # still running after the wait: stop them for good (--resume continues them)
            self.ray.cancel(ref, force=True)
