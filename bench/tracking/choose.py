"""``--track`` names to trackers: each opened (and its extra checked) before any run starts."""

from __future__ import annotations

from pathlib import Path

from bench.tracking.base import Tracker, TrackingError, root_cause

KINDS = ("tensorboard", "mlflow")


def open_trackers(kinds: list[str], out: str | Path, mlflow_uri: str | None = None,
                  mlflow_experiment: str | None = None) -> list[Tracker]:
    """The trackers named in ``kinds``; a TrackingError (one line) for an unknown name, a missing extra or a
    store that cannot be opened."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise TrackingError(f"unknown tracker {unknown[0]!r}; --track takes {', '.join(KINDS)}")
    if (mlflow_uri or mlflow_experiment) and "mlflow" not in kinds:
        raise TrackingError("--mlflow-uri and --mlflow-experiment apply to --track mlflow; add that or drop them")
    trackers: list[Tracker] = []
    for kind in dict.fromkeys(kinds):
        trackers.append(_open(kind, out, mlflow_uri, mlflow_experiment))
    return trackers


def _open(kind: str, out: str | Path, uri: str | None, experiment: str | None) -> Tracker:
    if kind == "tensorboard":
        from bench.tracking.tensorboard import TensorBoardTracker

        return TensorBoardTracker(out)
    from bench.tracking.mlflow import MlflowTracker

    try:
        return MlflowTracker(out, uri, experiment)
    except TrackingError:
        raise
    except Exception as e:  # the store or server refused: what MLflow raises depends on the store
        raise TrackingError(f"cannot open the MLflow store {uri or 'beside the results'}: {root_cause(e)}; "
                            "check --mlflow-uri") from None
