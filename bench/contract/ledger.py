"""Which methods kept the contract here: ``noprop-bench check`` writes each outcome down, and every run row says what
the ledger knows of its method (column ``contract``), so a plug-in that never passed the checks cannot pass for one
that did.

An outcome belongs to one version of a method's code: its name, declared version, origin (built in, or a plug-in's
distribution and version) and the SHA-256 of the module that defines its factory, so an edited plug-in is unchecked
again until it is checked again. The ledger is one JSON file per user, ``$XDG_CACHE_HOME/noprop-bench/contract.json``
(``NOPROP_BENCH_CONTRACT_LEDGER`` to put it elsewhere), written atomically under a file lock.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock

from bench.results.atomic import ResultsError, write_json_atomic
from bench.run.data import cache_dir
from noprop.core.spec import MethodSpec

BUILT_IN = "built-in"  # no outcome recorded here, and the method ships with noprop-bench (whose CI checks it)
UNCHECKED = "unchecked"


def ledger_path() -> Path:
    return Path(os.environ.get("NOPROP_BENCH_CONTRACT_LEDGER") or cache_dir() / "contract.json")


def code_identity(spec: MethodSpec, origin: str, origin_version: str) -> str:
    """One version of a method's code, as a key: name, declared version, origin and its factory module's hash."""
    try:
        source = Path(inspect.getsourcefile(spec.factory) or "").read_bytes()
    except (OSError, TypeError):
        source = b""
    digest = hashlib.sha256(source).hexdigest()[:16]
    return f"{spec.name} v{spec.version} {origin} {origin_version} {digest}"


def record(spec: MethodSpec, origin: str, origin_version: str, device: str, outcomes: dict[str, str],
           breaches: list[str]) -> None:
    """Write down one ``check``'s outcome for this version of the method's code (the latest replaces any earlier)."""
    path = ledger_path()
    entry = {"method": spec.name, "passed": not breaches, "breaches": breaches, "outcomes": outcomes,
             "device": device, "checked": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(path) + ".lock", timeout=30):
            known = _read(path)
            known[code_identity(spec, origin, origin_version)] = entry
            write_json_atomic(path, known)
    except (OSError, filelock.Timeout) as e:
        raise ResultsError(f"could not record the contract's outcome in {path}: {e}; set "
                           "NOPROP_BENCH_CONTRACT_LEDGER to a writable file") from e


def status(spec: MethodSpec, origin: str, origin_version: str) -> str:
    """What a run row says of its method's contract: "passed" or "failed: CHECKS" (checked here, this version of its
    code), else "built-in" or "unchecked"."""
    entry = _read(ledger_path()).get(code_identity(spec, origin, origin_version))
    if entry is None:
        return BUILT_IN if origin == BUILT_IN else UNCHECKED
    return "passed" if entry.get("passed") else f"failed: {', '.join(entry.get('breaches', [])) or 'a check'}"


def _read(path: Path) -> dict[str, Any]:
    """The ledger's entries; a missing, unreadable or damaged ledger knows nothing (runs then say unchecked)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
