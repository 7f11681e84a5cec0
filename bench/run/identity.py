"""Who a run is, in one place: its key (what makes two attempts 'the same run', and names its checkpoint), the
device it resolves to, its run id, and the identity columns of its row.

The recipe and every executor read these from here, so a run planned, skipped by ``--resume``, measured or
recorded as crashed is identified the same way whoever dispatches it, and an executor needs nothing of the
recipe to record a run whose process died before writing its own row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import torch

from bench.contract import ledger
from bench.run import environment
from bench.run.config import REGISTRY, SWITCH_KEYS, RunConfig


class RunError(Exception):
    """A run cannot start (bad device, unreadable results folder): one line for the user."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, then Apple's MPS, else the CPU; an unusable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device '{name}' asked for but CUDA is not available here; use --device cpu or auto")
    return device


def run_key(dataset: str, method: str, config_hash: str, switch_values: Mapping[str, Any], seed: int) -> str:
    """Identifies 'the same run' across an interruption (and names its checkpoint)."""
    tag = "-".join(str(switch_values[k]).lower() for k in SWITCH_KEYS)
    return f"{dataset}-{method}-{config_hash}-{tag}-seed{seed}"


def key_for(config: RunConfig, method: str, seed: int) -> str:
    """The run key of (``method``, ``seed``) under ``config``."""
    return run_key(config.dataset, method, config.model_hash(method), config.switches(), seed)


def new_run_id() -> str:
    """A fresh run id: the UTC start time and a random suffix."""
    return _stamp(datetime.now(timezone.utc)) + "-" + uuid.uuid4().hex[:6]


def identity_columns(config: RunConfig, method: str, seed: int, *, run_id: str, measured_in: str) -> dict[str, Any]:
    """The columns that say which run a row is: every row of (``method``, ``seed``) has them, crashed ones too."""
    return {
        "run_id": run_id, "dataset": config.dataset, "method": method, **method_identity(method),
        "embedding": config.embedding, **config.switches(), "seed": seed,
        "epochs_planned": config.epochs_for(method), "config_hash": config.model_hash(method),
        "measured_in": measured_in,
    }


def method_identity(method: str) -> dict[str, Any]:
    """Which method's code a row comes from: its declared version and baseline, where it came from (built in, or a
    plug-in's distribution and version), and whether that code passed ``noprop-bench check`` here (the contract
    ledger)."""
    entry = REGISTRY.find(method)
    if entry is None:  # not a registered method (a test's stand-in): nothing to say
        return {}
    return {"method_version": entry.spec.version, "method_origin": entry.origin,
            "method_origin_version": entry.origin_version, "baseline": entry.spec.baseline or "",
            "contract": ledger.status(entry.spec, entry.origin, entry.origin_version)}


def measured_row(config: RunConfig, method: str, seed: int, *, run_id: str, measured_in: str,
                 device: torch.device) -> dict[str, Any]:
    """The start of the row of a run measured in this process: its identity, the full config (to repeat it) and
    the environment it runs in (``environment.capture``)."""
    return {
        **identity_columns(config, method, seed, run_id=run_id, measured_in=measured_in),
        "config_json": json.dumps(config.to_dict(), sort_keys=True), **environment.capture(device),
    }


def crashed_row(config: RunConfig, method: str, seed: int, *, status: str, reason: str,
                measured_in: str) -> dict[str, Any]:
    """The row of a run whose process vanished without writing its own (killed by the OOM killer, a segfault, a
    lost node), so the sweep's record says what happened instead of leaving a gap. Built where the run was
    dispatched, which knows neither the run's environment nor its measurements: identity, status and reason only."""
    now = datetime.now(timezone.utc)
    return {
        **identity_columns(config, method, seed, run_id=_stamp(now) + f"-crash{seed}", measured_in=measured_in),
        "timestamp": now.isoformat(timespec="seconds"), "status": status, "reason": reason,
    }


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S")
