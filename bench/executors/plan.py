"""What a sweep has to do: every (method, seed) of a config, minus the runs ``--resume`` finds completed.

Shared by every executor, so "the same run" means the same thing whoever dispatches it: a run is identified by
its dataset, method, config hash, execution switches and seed (``bench.run.identity.run_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.results import read_runs
from bench.run.config import RunConfig
from bench.run.identity import key_for, run_key


@dataclass(frozen=True)
class PlannedRun:
    """One unit of a sweep: config in, rows out."""

    method: str
    seed: int


def key_of(config: RunConfig, run: PlannedRun) -> str:
    """The run key of a planned run (the one its recipe will use)."""
    return key_for(config, run.method, run.seed)


def completed_keys(out: Path) -> set[str]:
    """Run keys with an ``ok`` row in ``out`` (``--resume`` skips them)."""
    runs = read_runs(out)
    ok = runs[runs["status"] == "ok"]
    return {run_key(r["dataset"], r["method"], r["config_hash"], r, int(r["seed"])) for _, r in ok.iterrows()}


def plan(config: RunConfig, resume: bool) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """(runs to do, runs skipped because ``--resume`` found them already completed)."""
    runs = [PlannedRun(m, s) for m in config.methods for s in config.seeds]
    if not resume:
        return runs, []
    done = completed_keys(Path(config.out))
    todo = [r for r in runs if key_of(config, r) not in done]
    return todo, [r for r in runs if r not in todo]
