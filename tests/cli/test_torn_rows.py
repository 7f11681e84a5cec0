"""A runs.csv whose last row is torn (cut part-way, as a crash or a full disk leaves it), through the real command
line: ``run --resume``, a plain ``run``, ``report`` and ``compare`` refuse it with one line naming the file and the
line and leave the file as it was; ``run --resume --set-aside-torn`` moves the torn row to runs.csv.torn, keeps every
whole row and runs the torn run again."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY, cli

SWEEP = ["run", *TINY, "--epochs", "1", "--methods", "noprop", "--seeds", "0,1", "--quiet", "--in-process"]


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def whole(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder of two ok runs (seeds 0 and 1), written by the real sweep."""
    out = tmp_path_factory.mktemp("whole")
    proc = cli(*SWEEP, "--data-dir", str(tiny_mnist), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def torn_copy(whole: Path, tmp_path: Path, where: str) -> tuple[Path, bytes, int]:
    """A copy of ``whole`` with runs.csv cut part-way through its last row (line 3); (folder, old bytes, cut)."""
    out = tmp_path / "res"
    shutil.copytree(whole, out)
    data = (out / "runs.csv").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    config = data.rindex(b'"{')
    offsets = {"60 bytes in": last + 60, "inside config_json": config + 40, "only the newline missing": len(data) - 1}
    cut = offsets[where]
    (out / "runs.csv").write_bytes(data[:cut])
    return out, data, cut


def one_line_naming(proc, path: Path, line: int) -> None:
    assert proc.returncode == 2, proc.stderr
    assert f"{path} line {line} is a torn row" in proc.stderr and "--set-aside-torn" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("where", ["60 bytes in", "inside config_json", "only the newline missing"])
def test_resume_refuses_a_torn_row_then_sets_it_aside_keeping_every_whole_row(
        tiny_mnist: Path, tmp_path: Path, whole: Path, where: str) -> None:
    out, data, cut = torn_copy(whole, tmp_path, where)
    args = [*SWEEP, "--data-dir", str(tiny_mnist), "--out", str(out), "--resume"]
    one_line_naming(cli(*args), out / "runs.csv", 3)
    assert (out / "runs.csv").read_bytes() == data[:cut]

    proc = cli(*args, "--set-aside-torn")
    assert proc.returncode == 0, proc.stderr
    assert f"set aside the torn row at {out / 'runs.csv'} line 3" in proc.stderr
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    assert (out / "runs.csv.torn").read_bytes() == data[last:cut] + b"\n"
    after = (out / "runs.csv").read_bytes()
    assert after.startswith(data[:last])  # the whole row, byte for byte
    kept, rerun = rows(out / "runs.csv")
    assert (kept["seed"], kept["status"]) == ("0", "ok")
    assert (rerun["seed"], rerun["status"]) == ("1", "ok") and rerun["run_id"] != kept["run_id"]


def test_a_plain_run_report_and_compare_refuse_a_torn_row(tiny_mnist: Path, tmp_path: Path, whole: Path) -> None:
    out, data, cut = torn_copy(whole, tmp_path, "inside config_json")
    runs = out / "runs.csv"
    one_line_naming(cli(*SWEEP, "--data-dir", str(tiny_mnist), "--out", str(out)), runs, 3)  # before any run
    assert runs.read_bytes() == data[:cut]  # not rewritten as a whole row with the cut config
    one_line_naming(cli("compare", str(whole), str(out)), runs, 3)
    report = cli("report", str(whole), str(out), "--out", str(tmp_path / "report"))  # the torn folder is skipped
    assert report.returncode == 0, report.stderr
    assert f"skipped {out}: {runs} line 3 is a torn row" in " ".join(report.stderr.split()), report.stderr
    assert runs.read_bytes() == data[:cut]
