import csv
import errno
import json
import multiprocessing
import os
from pathlib import Path

import pandas as pd
import pytest

from bench.results import (
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    ResultsError,
    SchemaMismatchError,
    append_rows,
    atomic,
    read_epochs,
    read_runs,
    replace_run_rows,
    write_json_atomic,
)


def run_row(run_id: str, **values) -> dict:
    return {"run_id": run_id, "dataset": "mnist", "method": "noprop-dt", "seed": 0, **values}


def epoch_row(run_id: str, epoch: int, **values) -> dict:
    return {"run_id": run_id, "dataset": "mnist", "method": "noprop-dt", "seed": 0, "epoch": epoch, **values}


def header_line() -> str:
    return ",".join(RUN_COLUMNS) + "\n"


def test_header_written_once_and_rows_kept_in_order(tmp_path: Path):
    path = tmp_path / "runs.csv"
    append_rows(path, RUN_COLUMNS, [run_row("a"), run_row("b")])
    append_rows(path, RUN_COLUMNS, [run_row("c")])
    append_rows(path, RUN_COLUMNS, [run_row("d"), run_row("e")])
    lines = path.read_text().splitlines(keepends=True)
    assert lines[0] == header_line()
    assert lines.count(header_line()) == 1
    assert len(lines) == 6
    assert list(read_runs(tmp_path)["run_id"]) == ["a", "b", "c", "d", "e"]


def test_values_round_trip_with_types(tmp_path: Path):
    config = {"lr": 0.001, "note": 'has "quotes", commas\nand a newline'}
    append_rows(
        tmp_path / "runs.csv",
        RUN_COLUMNS,
        [
            run_row("a", test_acc=0.1 + 0.2, early_stopped=True, git_dirty=False, params=123, reason="NA",
                    config_json=json.dumps(config), train_time_s=float("nan")),
            run_row("b", test_acc=None, early_stopped=None),
        ],
    )  # fmt: skip
    frame = read_runs(tmp_path)
    a, b = frame.iloc[0], frame.iloc[1]
    assert a["test_acc"] == 0.1 + 0.2  # repr precision, not rounded
    assert str(frame["early_stopped"].dtype) == "boolean" and a["early_stopped"] and not a["git_dirty"]
    assert a["params"] == 123 and str(frame["params"].dtype) == "Int64"
    assert a["reason"] == "NA"  # a string that looks like a missing marker stays a string
    assert json.loads(a["config_json"]) == config
    assert pd.isna(a["train_time_s"])
    assert pd.isna(b["test_acc"]) and pd.isna(b["early_stopped"]) and pd.isna(b["params"])
    assert (frame["schema_version"] == SCHEMA_VERSION).all()
    with open(tmp_path / "runs.csv", newline="") as f:
        raw = dict(zip(RUN_COLUMNS, list(csv.reader(f))[1], strict=True))
    assert (raw["early_stopped"], raw["git_dirty"], raw["test_acc"]) == ("true", "false", "0.30000000000000004")


def test_unknown_column_raises_and_writes_nothing(tmp_path: Path):
    path = tmp_path / "runs.csv"
    with pytest.raises(ValueError, match="not_a_column"):
        append_rows(path, RUN_COLUMNS, [run_row("a"), run_row("b", not_a_column=1)])
    assert not path.exists()


def test_wrong_type_raises(tmp_path: Path):
    with pytest.raises(ValueError, match="test_acc"):
        append_rows(tmp_path / "runs.csv", RUN_COLUMNS, [run_row("a", test_acc="0.9")])
    with pytest.raises(ValueError, match="seed"):
        append_rows(tmp_path / "runs.csv", RUN_COLUMNS, [run_row("a", seed=1.5)])


def test_schema_mismatch_names_the_file(tmp_path: Path):
    path = tmp_path / "runs.csv"
    path.write_text("schema_version,run_id,accuracy\n0,x,0.5\n")
    original = path.read_bytes()
    with pytest.raises(SchemaMismatchError, match="runs.csv") as info:
        append_rows(path, RUN_COLUMNS, [run_row("a")])
    assert str(path) in str(info.value) and "--out" in str(info.value)
    assert isinstance(info.value, ResultsError)
    assert path.read_bytes() == original
    with pytest.raises(SchemaMismatchError, match="runs.csv"):
        read_runs(tmp_path)


def test_same_header_other_schema_version_is_refused(tmp_path: Path):
    path = tmp_path / "runs.csv"
    append_rows(path, RUN_COLUMNS, [run_row("a")])
    other = SCHEMA_VERSION + 1
    path.write_text(path.read_text().replace(f"\n{SCHEMA_VERSION},", f"\n{other},"))
    with pytest.raises(SchemaMismatchError, match=f"schema_version {other}"):
        append_rows(path, RUN_COLUMNS, [run_row("b")])
    with pytest.raises(SchemaMismatchError, match=f"schema_version {other}"):
        read_runs(tmp_path)


def test_missing_files_read_as_empty_frames_with_columns(tmp_path: Path):
    runs, epochs = read_runs(tmp_path / "nowhere"), read_epochs(tmp_path)
    assert list(runs.columns) == list(RUN_COLUMNS) and runs.empty
    assert list(epochs.columns) == list(EPOCH_COLUMNS) and epochs.empty
    assert str(runs["seed"].dtype) == "Int64" and str(runs["test_acc"].dtype) == "float64"


def test_file_without_final_newline_is_a_torn_row_never_extended(tmp_path: Path):
    """Every row is written with its newline: without one, the last row may have been cut inside a number or after
    a doubled quote and still parse, so it is refused (tests/results/test_torn.py), not glued onto."""
    path = tmp_path / "runs.csv"
    append_rows(path, RUN_COLUMNS, [run_row("a")])
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    before = path.read_bytes()
    with pytest.raises(ResultsError, match="runs.csv line 2 is a torn row"):
        append_rows(path, RUN_COLUMNS, [run_row("b")])
    assert path.read_bytes() == before


def _append_fifty(path: str, worker: str, start) -> None:
    start.wait(timeout=60)  # both processes append at the same time, not one after the other's start-up
    for i in range(50):
        append_rows(Path(path), EPOCH_COLUMNS, [epoch_row(f"{worker}-{i}", i)])


def test_concurrent_processes_never_lose_or_mix_rows(tmp_path: Path):
    path = tmp_path / "epochs.csv"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    workers = [ctx.Process(target=_append_fifty, args=(str(path), name, start)) for name in ("p", "q")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    lines = path.read_text().splitlines()
    assert lines.count(",".join(EPOCH_COLUMNS)) == 1 and lines[0] == ",".join(EPOCH_COLUMNS)
    frame = read_epochs(tmp_path)
    assert len(frame) == 100
    for name in ("p", "q"):
        own = frame[frame["run_id"].str.startswith(f"{name}-")]
        assert list(own["epoch"]) == list(range(50))  # each writer's rows in its own order
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_replace_run_rows_removes_the_runs_old_rows(tmp_path: Path):
    replace_run_rows(tmp_path, "r1", run_row("r1", status="interrupted"), [epoch_row("r1", 1), epoch_row("r1", 2)])
    replace_run_rows(tmp_path, "r2", run_row("r2", status="ok"), [epoch_row("r2", 1)])
    replace_run_rows(
        tmp_path, "r1", {"dataset": "mnist", "status": "ok", "test_acc": 0.9},
        [epoch_row("r1", e, train_loss=0.5) for e in (1, 2, 3)],
    )  # fmt: skip
    runs, epochs = read_runs(tmp_path), read_epochs(tmp_path)
    assert list(runs["run_id"]) == ["r2", "r1"]
    assert runs.set_index("run_id").loc["r1", "status"] == "ok"
    assert runs.set_index("run_id").loc["r1", "test_acc"] == 0.9
    r1 = epochs[epochs["run_id"] == "r1"]
    assert list(r1["epoch"]) == [1, 2, 3] and (r1["train_loss"] == 0.5).all()
    assert list(epochs[epochs["run_id"] == "r2"]["epoch"]) == [1]


def test_replace_run_rows_refuses_rows_of_another_run(tmp_path: Path):
    with pytest.raises(ValueError, match="r2"):
        replace_run_rows(tmp_path, "r1", run_row("r1"), [epoch_row("r2", 1)])
    assert not (tmp_path / "runs.csv").exists() and not (tmp_path / "epochs.csv").exists()


def _fail_replace(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_leaves_the_file_intact_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "runs.csv"
    append_rows(path, RUN_COLUMNS, [run_row("a"), run_row("b")])
    original = path.read_bytes()
    monkeypatch.setattr(atomic.os, "replace", _fail_replace)
    with pytest.raises(ResultsError) as info:
        append_rows(path, RUN_COLUMNS, [run_row("c")])
    message = str(info.value)
    assert str(path) in message and "No space left on device" in message and "--out" in message
    assert "\n" not in message
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv", "runs.csv.lock"]
    with pytest.raises(ResultsError, match="No space left on device"):
        replace_run_rows(tmp_path, "a", run_row("a"), [epoch_row("a", 1)])
    assert path.read_bytes() == original
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not (tmp_path / "epochs.csv").exists()


def test_failure_while_writing_a_new_file_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(atomic.os, "fsync", _fail_replace)
    with pytest.raises(ResultsError, match="free space"):
        append_rows(tmp_path / "runs.csv", RUN_COLUMNS, [run_row("a")])
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv.lock"]


def test_write_json_atomic(tmp_path: Path):
    path = tmp_path / "sub" / "config.json"
    write_json_atomic(path, {"dataset": "mnist", "out": tmp_path})
    write_json_atomic(path, {"dataset": "cifar10", "lr": 0.001})
    assert json.loads(path.read_text()) == {"dataset": "cifar10", "lr": 0.001}
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_environment_capture_fits_the_run_schema(tmp_path: Path):
    from bench.run.environment import capture

    env = capture("cpu")
    assert set(env) <= set(RUN_COLUMNS)
    assert env["device"] == "cpu" and env["device_name"] and env["threads"] >= 1
    append_rows(tmp_path / "runs.csv", RUN_COLUMNS, [run_row("a", **env)])  # every value has its column's type
    stored = read_runs(tmp_path).iloc[0]
    assert stored["python_version"] == env["python_version"] and stored["hostname"] == env["hostname"]
