"""One run carried out by ``block_workers`` processes of a ``torch.distributed`` group, each training its own share
of the method's blocks: a method offers this through ``noprop.core.method.BlockParallel`` (NoProp-DT in the
interleaved order, ``noprop.dt.parallel``). It sits beside the recipe because it is a way of carrying out one run,
not of dispatching a sweep's runs: every executor reaches it through ``bench.executors.one_run``.

Rank 0, the leader, runs the ordinary recipe (``Run``): data, evaluation, rows, checkpoints, events. Its model is a
``Leader``, which announces each call that needs the whole group (train an epoch: ``bench.run.loop`` tells it when
one starts; gather or load training state; stop) to the other ranks before making it. The followers hold the same
data, draw the same batches and build the same model, and do exactly what is announced, so they need no recipe of
their own and write nothing.

Followers are started with ``subprocess`` (the local executor's run process is a daemon, which ``multiprocessing``
forbids to have children) and ignore Ctrl-C: the leader records the run as interrupted and then stops them. Backend:
gloo on the CPU, nccl on CUDA (rank r on GPU r).

The rendezvous: the leader serves one ``TCPStore`` on 127.0.0.1 for the whole run, and each follower holds one client
of it. (A ``FileStore`` deletes its file once ``world_size`` of its objects are gone and none is left; with two per
process, a follower that opened the file just before the leader dropped its last one was left reading a deleted
file's offsets in the new one, waiting forever for the leader's key: issue 34.) Each follower sets ``joining<rank>``
before it joins the group and ``joined<rank>`` after; the leader, once its own data is loaded, waits at most
``JOIN_LIMIT_S`` for all of them, so a worker that ends or hangs before the group forms fails the run within that
time, named, instead of leaving the others in a collective until ``TIMEOUT``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bench.run import loop, methods, stopping, switches
from bench.run.batching import ShuffledPasses
from bench.run.budget import Budget
from bench.run.config import RunConfig
from bench.run.data import Splits
from bench.run.identity import RunError, key_for, resolve_device
from bench.run.recipe import Emit, RowWriter, Run, phase, prepare_data
from noprop.core.method import ALL, BeforeStep, BlockParallel, EpochPlan, Method, Part, StepRecord

TIMEOUT = timedelta(minutes=30)  # longest a rank waits in one collective (the followers wait out each evaluation)
JOIN_LIMIT_S = 45.0  # longest the leader waits, once its data is loaded, for every follower to join the group
HANDSHAKE_S = 10.0  # the least the group's own handshake gets, however late the last follower came
HOST = "127.0.0.1"  # the group's store: one machine


class BlockWorkerError(RuntimeError):
    """A block worker did not join the group (or ended before it did): the run is recorded ``failed`` with this."""


def run_block_parallel(config: RunConfig, method: str, seed: int, *, resume: bool, emit: Emit, measured_in: str,
                       write_rows: RowWriter | None) -> dict[str, Any]:
    """Run one (method, seed) over ``config.block_workers`` processes; this process is rank 0 and returns the row."""
    world = config.block_workers
    device = _rank_device(config, 0)
    store = dist.TCPStore(HOST, 0, world, is_master=True, timeout=TIMEOUT, wait_for_workers=False)
    with tempfile.TemporaryDirectory(prefix="noprop-blocks-") as tmp:
        spec = Path(tmp) / "run.json"
        spec.write_text(json.dumps({"config": config.to_dict(), "method": method, "seed": seed}))
        followers = [_start_follower(spec, r, world, store.port) for r in range(1, world)]
        leaders: list[Leader] = []

        def build(name: str, c: RunConfig, splits: Splits, batches: int, s: int) -> Method:
            emit(phase(key_for(c, name, s), f"starting {world} block workers"))
            _form_group(store, followers, device, Path(tmp))
            leaders.append(Leader(split_over_group(methods.build(name, c, splits, batches, s), name, device),
                                  followers))
            return leaders[0]

        try:
            return Run(config, method, seed, resume=resume, emit=emit, measured_in=measured_in, build=build,
                       write_rows=write_rows).execute()
        finally:
            _stop(bool(leaders) and not leaders[0].calling, followers)


class Leader(nn.Module):
    """Rank 0's model: the method split over the group, announcing every group-wide call to the followers first."""

    def __init__(self, model: Method, followers: list[subprocess.Popen]) -> None:
        super().__init__()
        self.model = model
        self.followers = followers
        self.calling = False  # inside a group-wide call (a failure there leaves the followers mid-collective)

    @property
    def block_passes_per_sample(self) -> int:
        return self.model.block_passes_per_sample

    def recorded_settings(self) -> dict[str, str | int]:
        return self.model.recorded_settings()

    def epoch_plan(self) -> EpochPlan:
        return self.model.epoch_plan()

    def before_step(self, part: Part) -> None:
        if isinstance(self.model, BeforeStep):
            self.model.before_step(part)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: Part = ALL) -> torch.Tensor:
        return self.model.train_step(x, y, part)

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        return self.model.epoch_stats(records)

    def lead_epoch(self, batches: ShuffledPasses, budget: Budget | None  # bench.run.loop.LeadsAGroup
                   ) -> contextlib.AbstractContextManager:
        """Tell the followers to make the epoch that starts now, drawing the same batches (the same generator state)
        and stopping at the same step (the same budget, counted the same way): the epoch loop holds this around it, so
        its collectives meet theirs."""
        return self._announce("fit", batches.generator.get_state(), copy.copy(budget))

    def training_state(self) -> dict:
        with self._announce("state"):
            return self.model.training_state()

    def load_training_state(self, state: dict) -> None:
        with self._announce("load", state):
            self.model.load_training_state(state)

    def predict(self, x: torch.Tensor, generator: torch.Generator | None = None,
                deterministic: bool = False) -> torch.Tensor:
        return self.model.predict(x, generator, deterministic)

    def label_embedding(self) -> torch.Tensor:
        return self.model.label_embedding()

    @contextlib.contextmanager
    def _announce(self, *command: Any) -> Iterator[None]:
        """Tell the followers to make ``command`` too, then make it here. If it fails part way, ``calling`` stays
        True: the followers may be left inside a collective."""
        self.calling = True
        try:
            dist.broadcast_object_list([command], src=0)
            yield
        except RuntimeError as e:  # a collective failed because a follower died: say so, not in gloo's words
            ended = [(rank, p) for rank, p in enumerate(self.followers, start=1) if p.poll() not in (None, 0)]
            if ended:
                raise RuntimeError(f"block worker {ended[0][0]} ended with exit code {ended[0][1].returncode}") from e
            raise
        self.calling = False

    def __deepcopy__(self, memo: dict) -> Method:
        """A copy (for the untimed warm-up and probes) is a single-process model with the same weights (a split
        method's copy trains alone: ``noprop.dt.parallel.BlockShard.__deepcopy__``)."""
        return copy.deepcopy(self.model, memo)


def follow(spec_path: str, rank: int, world: int, port: int) -> None:
    """A follower's life: join the group, build the same data and model, then do what the leader announces until
    ``stop``."""
    stopping.hold_off()  # Ctrl-C, SIGTERM, SIGHUP: the leader stops us after recording an interrupted run
    spec = json.loads(Path(spec_path).read_text())
    config = RunConfig(**spec["config"])
    if config.threads:
        torch.set_num_threads(config.threads)
    device = _rank_device(config, rank)
    store = dist.TCPStore(HOST, port, world, is_master=False, timeout=timedelta(seconds=JOIN_LIMIT_S))
    store.set(f"joining{rank}", "1")
    _join_group(store, rank, world, device, TIMEOUT)  # the leader may still be loading its data
    store.set(f"joined{rank}", "1")
    store.set_timeout(TIMEOUT)  # nccl meets through the store again at the first collective
    splits, passes = prepare_data(config, device, spec["seed"])
    built = methods.build(spec["method"], config, splits, len(passes), spec["seed"])
    model = split_over_group(switches.prepare_model(built, config), spec["method"], device)
    for command, *args in _commands():
        if command == "fit":
            passes.generator.set_state(args[0])
            loop.train_epoch(model, passes, budget=args[1])
        elif command == "state":
            model.training_state()
        elif command == "load":
            model.load_training_state(args[0])
    dist.destroy_process_group()


def _commands() -> Iterator[tuple]:
    while True:
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0)
        if box[0][0] == "stop":
            return
        yield box[0]


def split_over_group(model: Method, method: str, device: torch.device) -> Method:
    """``model`` (of ``method``, on ``device``) told to train only this process's share of its blocks in the group
    joined already; a method that cannot (no ``BlockParallel``) is a one-line RunError. Collectives run on the
    rank's GPU for nccl, on the CPU for gloo."""
    if not isinstance(model, BlockParallel):
        raise RunError(f"block_workers splits a method's blocks over processes, but {method} cannot train a share "
                       "of its blocks; it trains in one process (drop --block-workers)")
    model.split_blocks_over_group(device if device.type == "cuda" else torch.device("cpu"))
    return model


def _rank_device(config: RunConfig, rank: int) -> torch.device:
    """CPU ranks share the CPU; CUDA rank r trains on GPU r (so the group needs block_workers GPUs)."""
    device = resolve_device(config.device)
    if device.type != "cuda":
        return device
    if config.block_workers > torch.cuda.device_count():
        raise RunError(f"block_workers {config.block_workers} needs as many GPUs, but {torch.cuda.device_count()} "
                       "are visible; lower --block-workers")
    torch.cuda.set_device(rank)
    return torch.device("cuda", rank)


def _start_follower(spec: Path, rank: int, world: int, port: int) -> subprocess.Popen:
    log = open(spec.parent / f"rank{rank}.log", "w")  # noqa: SIM115 (the child writes it; closed with the folder)
    return subprocess.Popen([sys.executable, "-m", "bench.run.block_parallel", str(spec), str(rank),
                             str(world), str(port)], stdout=log, stderr=subprocess.STDOUT)


def _form_group(store: dist.Store, followers: list[subprocess.Popen], device: torch.device, logs: Path) -> None:
    """Join the group as rank 0 once every follower is joining, all within ``JOIN_LIMIT_S`` (the handshake itself
    gets at least ``HANDSHAKE_S``); else a BlockWorkerError naming the worker that did not join (a follower that ends
    is named at once). Collectives then wait up to ``TIMEOUT``."""
    deadline = time.monotonic() + JOIN_LIMIT_S
    _await_key(store, "joining", followers, deadline, logs)
    deadline = max(deadline, time.monotonic() + HANDSHAKE_S)
    try:
        _join_group(store, 0, len(followers) + 1, device, timedelta(seconds=deadline - time.monotonic()))
    except RuntimeError as e:  # gloo gave up waiting for a follower's address: say which one, not in gloo's words
        _await_key(store, "joined", followers, time.monotonic(), logs)
        raise BlockWorkerError(f"the block workers did not form a group within {JOIN_LIMIT_S:.0f} s: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
    _await_key(store, "joined", followers, deadline, logs)
    dist.set_timeout(TIMEOUT)


def _await_key(store: dist.Store, key: str, followers: list[subprocess.Popen], deadline: float, logs: Path) -> None:
    """Wait until every follower r has set ``key<r>``: a follower that ends first, or those still missing at
    ``deadline``, are a BlockWorkerError naming them (with the last line the first of them wrote, if any)."""
    missing = list(range(1, len(followers) + 1))
    while True:
        missing = [r for r in missing if not store.check([f"{key}{r}"])]
        for r in missing:
            if (code := followers[r - 1].poll()) is not None:
                raise BlockWorkerError(f"block worker {r} ended ({_exit(code)}) before joining the group"
                                       + _last_output(logs, r))
        if not missing:
            return
        if time.monotonic() >= deadline:
            names = " and ".join(str(r) for r in missing)
            raise BlockWorkerError(f"block worker{'s' if len(missing) > 1 else ''} {names} did not join the group "
                                   f"within {JOIN_LIMIT_S:.0f} s" + _last_output(logs, missing[0]))
        time.sleep(0.05)


def _exit(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _last_output(folder: Path, rank: int) -> str:
    lines = (folder / f"rank{rank}.log").read_text(errors="replace").strip().splitlines()
    return f"; its last output: {lines[-1].strip()[:200]}" if lines else ""


def _join_group(store: dist.Store, rank: int, world: int, device: torch.device, timeout: timedelta) -> None:
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)


def _stop(listening: bool, followers: list[subprocess.Popen]) -> None:
    """Tell the followers to stop if they listen for commands; else (the group never formed, or a group-wide call
    failed part way, leaving them inside a collective) end them at once: nothing of theirs is left to save."""
    if not listening:
        for proc in followers:
            proc.kill()
    if dist.is_initialized():
        if listening:
            with contextlib.suppress(RuntimeError):  # a follower died after the last call: it needs no stop
                dist.broadcast_object_list([("stop",)], src=0)
        dist.destroy_process_group()
    for proc in followers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    follow(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    os._exit(0)
