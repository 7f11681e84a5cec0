"""A torn row (a results file cut part-way through its last row, as a crash or a full disk leaves it) is never read
as data: every reader and writer of the store refuses it with one line naming the file and the line, and
``set_aside_torn`` moves it, byte for byte, to a side file, keeping every whole row. Files cut at several byte
offsets of the last row, through the real CSV reader and writers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results import (
    EPOCH_COLUMNS,
    RUN_COLUMNS,
    ResultsError,
    TornRowError,
    append_rows,
    check_whole,
    read_epochs,
    read_runs,
    replace_run_rows,
    set_aside_torn,
)

CONFIG = {"dataset": "fashion-mnist", "methods": ["noprop", "backprop"], "lr": 0.001, "note": 'a "quoted" word',
          "seeds": [0, 1], "width": 0.125}


def write_three(folder: Path) -> bytes:
    """runs.csv with three ok rows as the recipe writes them (config_json a quoted JSON cell); its bytes."""
    for i in range(3):
        row = {"run_id": f"r{i}", "status": "ok", "dataset": "fashion-mnist", "method": "noprop-dt", "seed": i,
               "config_hash": "abc", "test_acc": 80.0 + i, "config_json": json.dumps(CONFIG)}
        replace_run_rows(folder, f"r{i}", row, [{"dataset": "fashion-mnist", "method": "noprop-dt", "seed": i,
                                                 "epoch": 1, "peak_rss_bytes": 123456789}])
    return (folder / "runs.csv").read_bytes()


def cuts(data: bytes) -> dict[str, int]:
    """Byte offsets to cut the file at, each part-way through its last row (line 4)."""
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    config = data.rindex(b'"{')
    return {"one byte in": last + 1, "60 bytes in": last + 60, "after a comma": data.index(b",", last + 30) + 1,
            "inside config_json": config + 20,
            "inside a doubled quote of config_json": data.index(b'""', config + 2) + 1,
            "only the newline missing": len(data) - 1}


OFFSETS = ["one byte in", "60 bytes in", "after a comma", "inside config_json",
           "inside a doubled quote of config_json", "only the newline missing"]


@pytest.mark.parametrize("where", OFFSETS)
def test_every_reader_and_writer_refuses_a_torn_row_naming_file_and_line(tmp_path: Path, where: str) -> None:
    data = write_three(tmp_path)
    cut = data[: cuts(data)[where]]
    path = tmp_path / "runs.csv"
    path.write_bytes(cut)
    for attempt in (lambda: read_runs(tmp_path), lambda: check_whole(tmp_path),
                    lambda: replace_run_rows(tmp_path, "r0", {"status": "ok"}, []),  # keeps the others' rows
                    lambda: append_rows(path, RUN_COLUMNS, [{"run_id": "new"}])):
        with pytest.raises(TornRowError) as info:
            attempt()
        message = str(info.value)
        assert f"{path} line 4 is a torn row" in message and "--set-aside-torn" in message and "\n" not in message
        assert path.read_bytes() == cut  # no writer turned the torn row into a whole one


@pytest.mark.parametrize("where", OFFSETS)
def test_set_aside_moves_the_torn_row_and_keeps_every_whole_row(tmp_path: Path, where: str) -> None:
    data = write_three(tmp_path)
    offset = cuts(data)[where]
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    (tmp_path / "runs.csv").write_bytes(data[:offset])
    [line] = set_aside_torn(tmp_path)
    assert "runs.csv line 4" in line and "runs.csv.torn" in line
    assert (tmp_path / "runs.csv").read_bytes() == data[:last]  # the whole rows, byte for byte
    assert (tmp_path / "runs.csv.torn").read_bytes() == data[last:offset] + b"\n"
    runs = read_runs(tmp_path)
    assert list(runs["run_id"]) == ["r0", "r1"] and list(runs["test_acc"]) == [80.0, 81.0]
    assert all(json.loads(c) == CONFIG for c in runs["config_json"])
    assert set_aside_torn(tmp_path) == []  # nothing torn is left
    replace_run_rows(tmp_path, "r2", {"status": "ok", "seed": 2}, [])  # and the file is written to again
    assert list(read_runs(tmp_path)["run_id"]) == ["r0", "r1", "r2"]


def test_a_second_torn_row_is_added_to_the_side_file(tmp_path: Path) -> None:
    data = write_three(tmp_path)
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    (tmp_path / "runs.csv").write_bytes(data[: last + 10])
    set_aside_torn(tmp_path)
    (tmp_path / "runs.csv").write_bytes(data[: last + 20])
    set_aside_torn(tmp_path)
    assert (tmp_path / "runs.csv.torn").read_bytes() == data[last: last + 10] + b"\n" + data[last: last + 20] + b"\n"


def test_a_torn_epoch_row_whose_cells_all_parse_is_refused(tmp_path: Path) -> None:
    """The last cell of epochs.csv is a number: cut inside it, the row has every cell, one of them wrong."""
    write_three(tmp_path)
    path = tmp_path / "epochs.csv"
    data = path.read_bytes()
    path.write_bytes(data[:-4])  # 123456789 -> 123456
    with pytest.raises(TornRowError, match="epochs.csv line 4 is a torn row"):
        read_epochs(tmp_path)
    with pytest.raises(TornRowError, match="epochs.csv line 4"):
        append_rows(path, EPOCH_COLUMNS, [{"run_id": "x", "epoch": 1}])
    [line] = set_aside_torn(tmp_path)
    assert "epochs.csv line 4" in line
    assert list(read_epochs(tmp_path)["peak_rss_bytes"]) == [123456789, 123456789]


def test_a_short_row_before_the_last_is_malformed_and_named(tmp_path: Path) -> None:
    data = write_three(tmp_path)
    lines = data.splitlines(keepends=True)
    (tmp_path / "runs.csv").write_bytes(b"".join([lines[0], lines[1][:40] + b"\n", *lines[2:]]))
    for attempt in (lambda: read_runs(tmp_path), lambda: set_aside_torn(tmp_path),
                    lambda: replace_run_rows(tmp_path, "r9", {"status": "ok"}, [])):
        with pytest.raises(ResultsError, match="runs.csv line 2 has .* cells where its header has"):
            attempt()


def test_a_row_cut_inside_a_character_is_torn_and_other_bad_bytes_are_named(tmp_path: Path) -> None:
    row = {"run_id": "r0", "status": "ok", "hostname": "nœud-1", "config_json": json.dumps(CONFIG)}
    replace_run_rows(tmp_path, "r0", row, [])
    path = tmp_path / "runs.csv"
    data = path.read_bytes()
    path.write_bytes(data[: data.index("œ".encode()) + 1])  # the first of the character's two bytes
    with pytest.raises(TornRowError, match="runs.csv line 2 is a torn row"):
        read_runs(tmp_path)
    path.write_bytes(data.replace("œ".encode(), b"\xff"))  # a whole row that is not UTF-8: named, never rewritten
    for attempt in (lambda: read_runs(tmp_path), lambda: replace_run_rows(tmp_path, "r1", {"status": "ok"}, [])):
        with pytest.raises(ResultsError, match="runs.csv line 2 is not UTF-8"):
            attempt()
    assert path.read_bytes() == data.replace("œ".encode(), b"\xff")


def test_a_cut_line_that_holds_no_row_is_set_aside_alone(tmp_path: Path) -> None:
    data = write_three(tmp_path)
    (tmp_path / "runs.csv").write_bytes(data + b"\r")  # a line begun, cut before any cell
    with pytest.raises(TornRowError, match="runs.csv line 5 is a torn row"):
        read_runs(tmp_path)
    set_aside_torn(tmp_path)
    assert (tmp_path / "runs.csv").read_bytes() == data and (tmp_path / "runs.csv.torn").read_bytes() == b"\r\n"
