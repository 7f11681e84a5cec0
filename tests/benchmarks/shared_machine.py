"""A smoke epoch on an idle and on a loaded machine, for each way of setting torch's threads: how much sharing the
cores costs beyond the cores' share (docs/performance.md, "On a shared machine").

    python -m tests.benchmarks.shared_machine [--load 0,6] [--variants default,1,passive] [--train-subset 1000]
        [--load-kind python|torch] [--before CHECKOUT] [--json]

Each variant is one ``noprop-bench run --config smoke --methods noprop --epochs 1`` in a fresh process (the CLI as a
user runs it), with the load made here for the length of the run: ``--load N`` busy processes, each a pure-Python
loop (``python``) or a torch process multiplying matrices with torch's default threads (``torch``, the other
benchmarks and test suites of a shared machine). A variant is a thread count (``1``, ``2``: ``--threads``), or
``default`` (nothing set: what a run chooses itself), or an environment for OpenMP (``passive``:
OMP_WAIT_POLICY=PASSIVE; ``spin``: OMP_WAIT_POLICY=ACTIVE), each with ``:N`` for a thread count too
(``passive:2``). ``before`` (``before:N``) runs the code of another checkout (``--before``, e.g. ``git archive`` of
the commit before a change) the same way, with its own defaults. Reported per (load, variant): the epoch's training
time (epochs.csv), the run process's CPU time and the load average over the run (runs.csv, where recorded), and the
slowdown against the same variant idle.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

BUSY = {"python": "while True: pass",
        "torch": "import torch\nx = torch.randn(256, 256)\nwhile True: x = (x @ x).tanh()"}
ENVIRONMENTS = {"passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "spin": {"OMP_WAIT_POLICY": "ACTIVE"}}


def _variant(name: str, before: str | None) -> tuple[list[str], dict[str, str]]:
    """(extra run options, environment) of a variant name such as ``1``, ``default``, ``passive:2``, ``before:1``."""
    kind, _, threads = name.partition(":")
    if kind.isdigit():
        kind, threads = "default", kind
    options = ["--threads", threads] if threads else []
    if kind == "before":
        if not before:
            raise SystemExit("variant 'before' needs --before CHECKOUT")
        return options, {"PYTHONPATH": before}
    return options, ENVIRONMENTS.get(kind, {})


def _start_load(count: int, kind: str) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "KMP_"))}
    return [subprocess.Popen([sys.executable, "-c", BUSY[kind]], env=env) for _ in range(count)]


def _stop(load: list[subprocess.Popen]) -> None:
    for proc in load:
        proc.kill()
        proc.wait()


def run_once(variant: str, load: int, kind: str, train_subset: int, before: str | None = None) -> dict:
    """One smoke epoch of NoProp-DT under ``load`` busy processes; its timings and what the row recorded."""
    options, env = _variant(variant, before)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "bench.cli", "run", "--config", "smoke", "--methods", "noprop", "--seeds", "0",
                   "--epochs", "1", "--train-subset", str(train_subset), "--out", out, "--quiet", *options]
        busy = _start_load(load, kind)
        started = time.perf_counter()
        try:
            # run from the results folder: ``-m`` puts the working directory first on sys.path, before PYTHONPATH
            subprocess.run(command, check=True, env={**os.environ, **env}, cwd=out)
        finally:
            _stop(busy)
        wall = time.perf_counter() - started
        epoch = pd.read_csv(Path(out) / "epochs.csv").iloc[0]
        row = pd.read_csv(Path(out) / "runs.csv").iloc[0]
    return {"load": load, "variant": variant, "epoch_s": float(epoch["epoch_time_s"]), "command_s": wall,
            "threads": int(row["threads"]), "cpu_time_s": row.get("cpu_time_s"), "load_avg": row.get("load_avg")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", default="0,6", help="comma list of busy process counts")
    parser.add_argument("--variants", default="default,1,passive", help="comma list of variants (see above)")
    parser.add_argument("--load-kind", choices=sorted(BUSY), default="python")
    parser.add_argument("--train-subset", type=int, default=1000)
    parser.add_argument("--before", help="a checkout whose code the 'before' variants run (PYTHONPATH)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of the table")
    args = parser.parse_args()
    results = []
    for load in (int(v) for v in args.load.split(",")):
        for variant in args.variants.split(","):
            result = run_once(variant, load, args.load_kind, args.train_subset, args.before)
            results.append(result)
            print(json.dumps(result) if args.json else result, flush=True)
    table = pd.DataFrame(results)
    idle = table[table["load"] == 0].set_index("variant")["epoch_s"]
    table["slowdown"] = table.apply(lambda r: r["epoch_s"] / idle.get(r["variant"], float("nan")), axis=1)
    if not args.json:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
