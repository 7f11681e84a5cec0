"""Accuracy at equal training cost, from hand-written runs with known FLOP counts and times: what each evaluation
cost, how a budget is read (interpolated, never extrapolated), which budgets are chosen, how the table marks a
method that did not reach one, and what the figure draws."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import plot, tables
from bench.report.build import build
from bench.report.load import load
from bench.report.views import equal_cost
from tests.report.helpers import epoch_rows, run_row, write_folder


def costed(run_id: str, method: str, seed: int, accs: tuple[float, ...], times: tuple[float, ...],
           gflop_per_image: float, **columns: object) -> tuple[dict, list[dict]]:
    """A Fashion-MNIST run on 1000 training images (train_subset) with its epochs."""
    run = run_row(run_id, "fashion-mnist", method, seed, accs[-1], times[0], epochs_done=len(accs),
                  train_gflop_per_sample=gflop_per_image, train_time_s=sum(times),
                  samples_per_s=1000 * len(accs) / sum(times),
                  config_json=json.dumps({"epochs": 40, "train_subset": 1000, "embedding": "one-hot"}), **columns)
    return run, epoch_rows(run, accs, times)


def sweep(tmp_path: Path) -> Path:
    """A GFLOP-budgeted sweep: noprop-dt (0.25 GFLOP an image: 250 an epoch) spends its 400 in 2 epochs, the last
    partial; dgl (0.05: 50 an epoch) trains 8 epochs to the same 400, and one seed stops at its epochs ceiling
    (6 epochs, 300 GFLOP)."""
    found = [costed("dt0", "noprop-dt", 0, (50.0, 70.0), (10.0, 6.0), 0.25, budget_unit="gflop", budget=400.0,
                    budget_spent=400.5),
             costed("dt1", "noprop-dt", 1, (54.0, 74.0), (11.0, 7.0), 0.25, budget_unit="gflop", budget=400.0,
                    budget_spent=400.5),
             costed("dg0", "dgl", 0, (20.0, 30.0, 40.0, 50.0, 55.0, 60.0, 62.0, 64.0), (1.0,) * 8, 0.05,
                    budget_unit="gflop", budget=400.0, budget_spent=400.0),
             costed("dg1", "dgl", 1, (22.0, 32.0, 42.0, 52.0, 57.0, 62.0), (1.0,) * 6, 0.05,
                    budget_unit="gflop", budget=400.0, budget_spent=300.0)]
    return write_folder(tmp_path / "res", [run for run, _ in found], [row for _, rows in found for row in rows])


def test_an_epoch_costs_its_images_and_a_budgets_last_epoch_what_it_spent(tmp_path: Path) -> None:
    report = build(load([sweep(tmp_path)]))
    points = report.data["equal_cost"].points.set_index(["run_id", "epoch"])
    assert points.loc[("dt0", 1), ["gflop", "seconds", "test_acc"]].tolist() == [250.0, 10.0, 50.0]
    assert points.loc[("dt0", 2), ["gflop", "seconds"]].tolist() == [400.5, 16.0]  # partial: budget_spent
    assert points.loc[("dg1", 6), ["gflop", "seconds"]].tolist() == pytest.approx([300.0, 6.0])


def test_images_per_epoch_come_from_the_config_or_the_throughput() -> None:
    subset = pd.Series({"dataset": "fashion-mnist", "config": {"train_subset": 3000, "val_size": 500}})
    carved = pd.Series({"dataset": "cifar10", "config": {"val_size": 5000}})
    unread = pd.Series({"dataset": "mnist", "config": {}, "budget_unit": "epochs", "epochs_done": 4,
                        "samples_per_s": 250.0, "train_time_s": 8.0})
    assert [equal_cost.images_per_epoch(r) for r in (subset, carved, unread)] == [3000.0, 45000.0, 500.0]
    partial = unread.copy()
    partial["budget_unit"] = "gflop"  # its last epoch may be partial: throughput cannot say an epoch's images
    assert math.isnan(equal_cost.images_per_epoch(partial))


def test_a_budget_is_interpolated_between_evaluations_and_never_extrapolated() -> None:
    costs, accs = np.array([100.0, 200.0, 400.0]), np.array([50.0, 60.0, 70.0])
    assert equal_cost.read_at(costs, accs, 150.0) == ("read", 55.0)
    assert equal_cost.read_at(costs, accs, 300.0) == ("read", 65.0)
    assert equal_cost.read_at(costs, accs, 400.0) == ("read", 70.0)
    assert equal_cost.read_at(costs, accs, 400.5)[0] == "not reached"
    assert equal_cost.read_at(costs, accs, 99.0)[0] == "no reading yet"


def test_budgets_are_the_smallest_total_every_method_reached_below_and_the_largest(tmp_path: Path) -> None:
    report = build(load([sweep(tmp_path)]))
    runs = report.data["equal_cost"].per_run
    gflop = sorted(runs.loc[runs["unit"] == "gflop", "budget"].unique())
    # dgl's group reached 300 (seed 1's ceiling); every run has a reading from 250 (noprop-dt's first epoch), so
    # 250 stays, a half (150) and a quarter (75) of 300 do not; noprop-dt's 400.5 is the largest
    assert gflop == [250.0, 300.0, 400.5]
    seconds = sorted(runs.loc[runs["unit"] == "seconds", "budget"].unique())
    assert seconds == [6.0, 16.0]  # dgl's seed 1 stopped at 6 s; noprop-dt's first reading at 11 s is above it


def test_the_table_marks_methods_that_did_not_reach_a_budget(tmp_path: Path) -> None:
    report = build(load([sweep(tmp_path)]))
    found = {title: (header, rows) for title, header, rows in equal_cost.tables(report)}
    header, rows = found["fashion-mnist: test accuracy at equal training GFLOP"]
    assert header == ["method", "setting", "at 250 GFLOP", "at 300 GFLOP", "at 400.5 GFLOP"]
    by_method = {row[0]: row[2:] for row in rows}
    # dgl at 250 GFLOP: epoch 5 of each seed (55, 57); at 300: epoch 6 (60, 62); 400.5: seed 0 read 64 at 400,
    # 400.5 is past it -> not reached by either
    assert by_method["dgl"] == ["56.00 ± 1.41", "61.00 ± 1.41", "not reached"]
    # noprop-dt at 300: between 250 (50 / 54) and 400.5 (70 / 74): 50 / 150.5 of the way
    at_300 = 52.0 + 20.0 * 50.0 / 150.5
    assert by_method["noprop-dt"] == ["52.00 ± 2.83", f"{at_300:.2f} ± 2.83", "72.00 ± 2.83"]
    header, rows = found["fashion-mnist: test accuracy at equal training seconds"]
    by_method = {row[0]: row[2:] for row in rows}
    # dt0 ended at 16 s (70 %); dt1 is 5/7 of the way from 11 s (54 %) to 18 s (74 %)
    dt1 = 54.0 + 20.0 * 5 / 7
    assert by_method["noprop-dt"] == ["no reading yet", f"{(70 + dt1) / 2:.2f} ± {(70 - dt1) / math.sqrt(2):.2f}"]
    assert by_method["dgl"] == ["61.00 ± 1.41", "not reached"]
    tables.write_tables(report, tmp_path / "out")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| dgl | one-hot | 56.00 ± 1.41 | 61.00 ± 1.41 | not reached |" in md


def test_the_figure_draws_the_tables_readings_at_the_budgets(tmp_path: Path) -> None:
    report = build(load([sweep(tmp_path)]))
    groups = equal_cost.per_group(report.data["equal_cost"].per_run)
    with plot.style():
        fig = equal_cost.figure(report, plot.Styles(["noprop-dt", "dgl"]))
    gflop_axes, seconds_axes = fig.axes[:2]
    assert "GFLOP" in gflop_axes.get_xlabel() and "seconds" in seconds_axes.get_xlabel()
    markers = [line for line in gflop_axes.get_lines() if line.get_linestyle() == "None"]
    drawn = {(float(x), float(y)) for line in markers for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)}
    read = groups[(groups["unit"] == "gflop") & (groups["n_read"] > 0)]
    assert drawn == {(float(b), float(m)) for b, m in zip(read["budget"], read["test_acc_pct_mean"], strict=True)}
    budgets = {float(line.get_xdata()[0]) for line in gflop_axes.get_lines() if line.get_linestyle() == ":"}
    assert budgets == {250.0, 300.0, 400.5}
    dgl = next(line for line in gflop_axes.get_lines() if line.get_label() == "dgl")
    assert max(dgl.get_xdata()) == 300.0  # the mean line stops where a seed stopped: never extrapolated


def test_runs_without_a_flop_count_are_left_out_of_the_gflop_reading_and_said_so(tmp_path: Path) -> None:
    run, epochs = costed("x0", "noprop-dt", 0, (50.0, 60.0), (1.0, 1.0), 0.1)
    bare = {**run, "run_id": "y0", "method": "backprop", "train_gflop_per_sample": None}
    report = build(load([write_folder(tmp_path / "res", [run, bare], epochs + epoch_rows(bare, (55.0, 65.0)))]))
    runs = report.data["equal_cost"].per_run
    assert set(runs.loc[runs["unit"] == "gflop", "run_id"]) == {"x0"}
    assert set(runs.loc[runs["unit"] == "seconds", "run_id"]) == {"x0", "y0"}
    assert any("accuracy at equal GFLOP leaves out backprop" in w for w in report.warnings)


def test_a_reading_of_only_some_seeds_is_drawn_hollow(known: Path) -> None:
    """known_runs: NoProp-DT's seeds take 1, 2 and 3 s an epoch, so at 2 s (backprop's total) seeds 0 and 1 have a
    reading (78 and 60 %) and seed 2 none yet."""
    report = build(load([known]), datasets=["cifar10"])
    with plot.style():
        fig = equal_cost.figure(report, plot.Styles(["noprop-dt", "backprop"]))
    (seconds,) = fig.axes  # no FLOP counts: a seconds panel only
    hollow = [line for line in seconds.get_lines() if line.get_linestyle() == "None" and line.get_fillstyle() == "none"]
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in hollow if len(line.get_xdata())] == [
        ([2.0], [69.0])]
