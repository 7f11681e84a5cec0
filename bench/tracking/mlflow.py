"""``--track mlflow``: one MLflow run per (method, seed), in a local store (``sqlite:///OUT/mlflow.db`` unless
``--mlflow-uri`` names another store or a tracking server), experiment ``--mlflow-experiment`` (default: the
results folder's name), through MLflow's own client (the ``mlflow`` extra).

At the start, the resolved config, switches, method and seed as parameters; per epoch, the epoch row's figures as
metrics at step = epoch; at the end, the final figures as metrics, the identifying columns (hash, git commit,
device, ...) as tags, and the run ended FINISHED, FAILED or KILLED (interrupted). A resumed run reopens the MLflow
run of its run key (tag ``noprop_bench.key``) rather than starting another. Requests to a server are tried twice
with a short timeout: a server gone costs the tracking after seconds, not the run after minutes."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from bench.tracking.base import (
    EpochLedger,
    Tracker,
    TrackingError,
    epoch_metrics,
    final_metrics,
    run_name,
    tags,
)

INSTALL_HINT = "--track mlflow needs MLflow: pip install 'noprop-bench[mlflow]'"
KEY_TAG = "noprop_bench.key"
OUT_TAG = "noprop_bench.out"
BATCH = 100  # MLflow takes at most 100 params or tags per log_batch
BOUNDED = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
ENDED_AS = {"ok": "FINISHED", "interrupted": "KILLED"}  # every other status: FAILED
DESTINATION = "mlflow.json"  # beside the CSVs: where their runs were tracked, so `report` can attach its figures
REPORT_TAG = "noprop_bench.report"


def import_mlflow() -> Any:
    """The ``mlflow`` module, or a TrackingError saying how to install it."""
    for name, value in BOUNDED.items():  # read when MLflow first makes a request
        os.environ.setdefault(name, value)
    try:
        import mlflow
    except ImportError:
        raise TrackingError(INSTALL_HINT) from None
    for name in ("mlflow", "alembic"):  # their lines (creating tables, an error's traceback) are not ours to
        logging.getLogger(name).setLevel(logging.CRITICAL)  # show: a failure is tracked_emit's one warning
    return mlflow


def default_uri(out: str | Path) -> str:
    """The local store beside the results: ``sqlite:///OUT/mlflow.db``."""
    return f"sqlite:///{Path(out).resolve() / 'mlflow.db'}"


class MlflowTracker(Tracker):
    """MLflow runs of one experiment, looked up by run key."""

    name = "mlflow"

    def __init__(self, out: str | Path, uri: str | None = None, experiment: str | None = None) -> None:
        import_mlflow()
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag
        self.out = str(Path(out).resolve())
        self.uri = uri or default_uri(out)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment = experiment or Path(self.out).name
        self.experiment_id = experiment_id(self.client, self.experiment)
        self.runs: dict[str, str] = {}  # run key -> MLflow run id
        self.ledger = EpochLedger()
        Path(self.out).mkdir(parents=True, exist_ok=True)
        (Path(self.out) / DESTINATION).write_text(json.dumps({"uri": self.uri, "experiment": self.experiment}))

    def start(self, key: str, event: dict[str, Any], params: dict[str, str]) -> None:
        run_id = self._find(key) if int(event["epoch"]) > 0 else None
        if run_id is None:
            name = event.get("name") or run_name(event)
            run_id = self.client.create_run(self.experiment_id, run_name=name,
                                            tags={KEY_TAG: key, OUT_TAG: self.out}).info.run_id
            items = [self.Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), BATCH):
                self.client.log_batch(run_id, params=items[i:i + BATCH])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.runs[key] = run_id
        self.ledger.started(key, int(event["epoch"]))

    def epoch(self, key: str, row: dict[str, Any]) -> None:
        if key in self.runs:
            self._metrics(self.runs[key], epoch_metrics(row), int(row["epoch"]))
            self.ledger.note(key, int(row["epoch"]))

    def end(self, key: str, row: dict[str, Any], epoch_rows: list[dict[str, Any]]) -> None:
        if key not in self.runs:
            return
        for missed in self.ledger.missing(key, epoch_rows):
            self.epoch(key, missed)
        run_id = self.runs.pop(key)
        self._metrics(run_id, {f"final.{k}": v for k, v in final_metrics(row).items()}, int(row["epochs_done"] or 0))
        found = [self.RunTag(k, v[:5000]) for k, v in tags(row).items()]
        for i in range(0, len(found), BATCH):
            self.client.log_batch(run_id, tags=found[i:i + BATCH])
        self.client.set_terminated(run_id, status=ENDED_AS.get(row.get("status", ""), "FAILED"))

    def _metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[self.Metric(k, v, now, step) for k, v in values.items()])

    def _find(self, key: str) -> str | None:
        """The MLflow run an earlier attempt of ``key`` (into the same results folder) opened."""
        found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'",
                                        max_results=50)
        mine = [r for r in found if r.data.tags.get(OUT_TAG) == self.out]
        return mine[0].info.run_id if mine else None


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``mlartifacts/`` beside an SQLite store (MLflow's own default
    would be ``./mlruns`` in whatever folder the command runs from); a file store or a server decides for itself."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created when it does not exist yet."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri))


def attach_report(results_dirs: list[Path], report_dir: Path) -> list[str]:
    """Log the report in ``report_dir`` as the artifacts of one MLflow run named ``report`` in the experiment of
    each results folder that was tracked with MLflow (the same run again on a later report); returns the
    experiments it went to. Nothing is done for folders that were not tracked. Errors are MLflow's own."""
    attached = []
    for folder in results_dirs:
        destination = folder / DESTINATION
        if not destination.is_file():
            continue
        where = json.loads(destination.read_text())
        import_mlflow()
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=where["uri"])
        exp = experiment_id(client, where["experiment"])
        found = client.search_runs([exp], filter_string=f"tags.`{REPORT_TAG}` = '1'", max_results=1)
        run_id = found[0].info.run_id if found else client.create_run(exp, run_name="report",
                                                                      tags={REPORT_TAG: "1"}).info.run_id
        client.log_artifacts(run_id, str(report_dir), artifact_path="report")
        client.set_terminated(run_id, "FINISHED")
        attached.append(where["experiment"])
    return attached
