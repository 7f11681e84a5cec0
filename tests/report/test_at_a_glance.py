"""A report read at a glance, checked on the figures' own artists (tick labels, lines, legend handles), drawn as the
report draws and saves them: no two tick labels touch; a method keeps its colour whoever else is in a report and
sits beside its baseline; accuracy.png names the methods on its axis; the Pareto front runs through its own points
only; a cost axis of nearly equal values is sane and the size legend shows sizes points have; per-class figures
name the classes; time-to-accuracy targets come from the data; a resumed interrupted run is not "not ok"; a run on
a shared machine is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bench.report import aggregate, figures, plot, tables
from bench.report.build import build
from bench.report.load import load
from bench.report.views import accuracy, confusion, curves, inference_steps, pareto, samples
from bench.results.artifacts import artifact_path
from tests.report.helpers import MB, epoch_rows, run_row, write_folder


def _report(tmp_path: Path, runs: list[dict], epochs: list[dict] | None = None, **options) -> aggregate.Report:
    return build(load([write_folder(tmp_path / "res", runs, epochs)]), **options)


def _saved(fig: Figure, tmp_path: Path) -> Figure:
    """The figure as the report saves it (its artists are then where the file has them)."""
    fig.savefig(tmp_path / "figure.png", dpi=figures.DPI)
    return fig


def _draw(view, report: aggregate.Report, tmp_path: Path) -> Figure:
    with plot.style():
        return _saved(view.figure(report, figures.styles_for(report)), tmp_path)


def _tick_boxes(fig: Figure) -> list[tuple[str, list]]:
    """Per axis of every panel, the boxes of its visible, non-empty tick labels (major and minor)."""
    found = []
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [t for t in [*axis.get_majorticklabels(), *axis.get_minorticklabels()]
                      if t.get_visible() and t.get_text()]
            low, high = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
            shown = [t for t in labels if low <= (t.get_position()[0 if name == "x" else 1]) <= high]
            found.append((f"{ax.get_title()} {name}", [t.get_window_extent() for t in shown]))
    return found


def assert_no_tick_labels_touch(fig: Figure) -> None:
    for where, boxes in _tick_boxes(fig):
        assert not plot.overlapping(boxes), where


# ------------------------------------------------------------------------------------------------- log axes


def _wide_runs() -> tuple[list[dict], list[dict]]:
    """Two settings of each method minutes apart (0.5 s against 40 s an epoch): the time axis turns logarithmic."""
    runs, epochs = [], []
    for setting, seconds in (("fast", 0.5), ("slow", 40.0)):
        for method, acc in (("noprop-dt", 80.0), ("backprop", 84.0)):
            saved = (3 if setting == "fast" else 900) * MB
            run = run_row(f"{method[:2]}{setting}", "fashion-mnist", method, 0, acc, seconds,
                          config_hash=f"cfg-{setting}", peak_saved_activation_bytes=saved,
                          config_json=json.dumps({"epochs": 4, "embedding": "one-hot", "width": setting}))
            runs.append(run)
            epochs += epoch_rows(run, (acc - 30, acc - 10, acc - 5, acc))
    return runs, epochs


def test_log_time_axes_read_plain_numbers_and_no_labels_touch(tmp_path: Path) -> None:
    report = _report(tmp_path, *_wide_runs())
    for view in (curves, pareto):
        fig = _draw(view, report, tmp_path)
        logged = [ax for ax in fig.axes if ax.get_xscale() == "log"]
        assert logged, view.__name__
        for ax in logged:
            texts = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
            assert texts and all("\\times" not in t and "^" not in t for t in texts), texts  # 20, not 2×10¹
        assert_no_tick_labels_touch(fig)


def _steps_folder(tmp_path: Path, seconds: tuple[float, ...]) -> Path:
    config = json.dumps({"epochs": 2, "embedding": "one-hot", "ode_steps_sweep": [1, 5, 20, 100]})
    out = write_folder(tmp_path / "steps", [run_row("fm0", "fashion-mnist", "noprop-fm", 0, 80.0, 1.0, ode_steps=20,
                                                    integrator="euler", config_json=config)])
    path = artifact_path(out, "fm0")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, label=np.zeros(1000, dtype=np.int16), sweep_steps=np.array([1.0, 5.0, 20.0, 100.0]),
             sweep_test_acc=np.array([40.0, 70.0, 79.0, 80.0]), sweep_infer_s=np.array(seconds))
    return out


@pytest.mark.parametrize("seconds", [(0.55, 0.6, 0.7, 0.9), (0.0005, 0.003, 0.02, 0.09)])
def test_inference_steps_log_axes_do_not_overlap_their_labels(tmp_path: Path, seconds) -> None:
    """The time per image within one decade (0.55-0.9 ms, where 6×10⁻¹ sat on its neighbour) and over three."""
    report = build(load([_steps_folder(tmp_path, seconds)]))
    fig = _draw(inference_steps, report, tmp_path)
    time = fig.axes[1]
    assert time.get_yscale() == "log" and len([t for t in time.get_yticklabels() if t.get_text()]) >= 2
    assert_no_tick_labels_touch(fig)


# ----------------------------------------------------------------------------- methods: colour, place, names


def test_a_method_keeps_its_colour_whoever_else_is_in_the_report(tmp_path: Path) -> None:
    pair = _report(tmp_path / "a", [run_row(f"{m}", "mnist", m, 0, 80.0, 1.0) for m in ("noprop-dt", "backprop")])
    rivals = _report(tmp_path / "b", [run_row(f"{m}", "mnist", m, 0, 80.0, 1.0, baseline=b)
                                      for m, b in (("backprop", ""), ("backprop-ckpt", "backprop"), ("cnn", ""),
                                                   ("dgl", "cnn"))])
    colours = [figures.styles_for(r).color("backprop") for r in (pair, rivals)]
    assert colours[0] == colours[1]
    assert figures.styles_for(rivals).color("dgl") != colours[0]


@pytest.mark.parametrize("methods", [
    (("cnn", "", 88.0), ("backprop", "", 84.0), ("dgl", "cnn", 86.0), ("noprop-dt", "backprop", 80.0)),
    (("cnn", "", 88.0), ("backprop", "", 84.0), ("noprop-dt", "backprop", 80.0)),  # the middle on the tick
])
def test_each_method_sits_beside_its_baseline_and_is_named_on_the_accuracy_axis(tmp_path: Path, methods) -> None:
    rows = [run_row(m, "mnist", m, 0, acc, 1.0, baseline=b) for m, b, acc in methods]
    report = _report(tmp_path, rows)
    order = [m for m in ["noprop-dt", "backprop", "dgl", "cnn"] if m in {m for m, _, _ in methods}]
    assert figures.styles_for(report).order == order
    fig = _draw(accuracy, report, tmp_path)
    ax = fig.axes[0]
    named = [label for label in ax.get_xticklabels(minor=True) if label.get_visible() and label.get_text()]
    slots = sorted((label.get_position()[0], label.get_text()) for label in named)
    assert [name for _, name in slots] == order  # under each marker, in order, none hidden by the setting's tick
    markers = sorted(float(line.get_xdata()[0]) for line in ax.lines if line.get_marker() not in ("", "None", "_"))
    assert [x for x, _ in slots] == pytest.approx(sorted(set(markers)))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["one-hot"]  # the setting, below the methods
    assert_no_tick_labels_touch(fig)


# --------------------------------------------------------------------------------------------------- Pareto


def _points(ax) -> dict[tuple[float, float], str]:
    """Each marker drawn (mean of a group) by its position."""
    found = {}
    for container in ax.containers:
        line = container.lines[0]
        found[(float(line.get_xdata()[0]), float(line.get_ydata()[0]))] = line.get_marker()
    return found


def _on_segment(point: tuple[float, float], start: tuple[float, float], end: tuple[float, float]) -> bool:
    (x, y), (x0, y0), (x1, y1) = point, start, end
    if y0 == y1:
        return y == y0 and min(x0, x1) <= x <= max(x0, x1)
    return x == x0 and min(y0, y1) <= y <= max(y0, y1)


def test_the_front_runs_through_its_own_points_only(tmp_path: Path) -> None:
    """The issue's case: the most accurate group costs least, and others tie its accuracy at more cost (a
    checkpointed twin computes the same numbers): the front is that one point, no line through the others."""
    rows = [run_row("cnn", "mnist", "cnn", 0, 83.17, 12.0, peak_saved_activation_bytes=74 * MB),
            run_row("ck", "mnist", "cnn-ckpt", 0, 83.17, 16.0, peak_saved_activation_bytes=46 * MB),
            run_row("bp", "mnist", "backprop", 0, 82.98, 115.0, peak_saved_activation_bytes=750 * MB),
            run_row("bk", "mnist", "backprop-ckpt", 0, 82.98, 170.0, peak_saved_activation_bytes=75 * MB),
            run_row("dt", "mnist", "noprop-dt", 0, 78.5, 120.0, peak_saved_activation_bytes=75 * MB)]
    report = _report(tmp_path, rows)
    table = report.data["pareto"].set_index("method")
    fig = _draw(pareto, report, tmp_path)
    for ax, front, column in zip(fig.axes, ("on_time_front", "on_memory_front"),
                                 ("train_time_s_mean", "peak_saved_activation_mb_mean"), strict=True):
        on = {(row[column], row["test_acc_pct_mean"]) for _, row in table[table[front]].iterrows()}
        off = {(row[column], row["test_acc_pct_mean"]) for _, row in table[~table[front]].iterrows()}
        assert on | off == set(_points(ax))
        steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
        assert len(steps) == 1
        xs, ys = list(steps[0].get_xdata()), list(steps[0].get_ydata())
        assert set(zip(xs, ys, strict=True)) == on  # its vertices are the front's points, nothing past them
        corners = [(xs[i], ys[i]) for i in range(len(xs))] + [(xs[i + 1], ys[i]) for i in range(len(xs) - 1)]
        pieces = [((xs[i], ys[i]), (xs[i + 1], ys[i])) for i in range(len(xs) - 1)]
        pieces += [((xs[i + 1], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(len(xs) - 1)]
        assert not any(_on_segment(p, *piece) for p in off for piece in pieces), (ax.get_title(), corners)
    assert table["on_time_front"].to_dict() == {"cnn": True, "cnn-ckpt": False, "backprop": False,
                                                "backprop-ckpt": False, "noprop-dt": False}
    assert pareto.figure.__doc__ and len(fig.get_suptitle().split()) <= 12  # a title, not a paragraph


def _sweep(rss_mb: list[int]) -> list[dict]:
    """A sweep of learning rates whose saved activations agree within 0.1 % (4.787-4.793 MB)."""
    return [run_row(f"r{i}", "fashion-mnist", "noprop-dt", 0, 70.0 + i, 1.0 + 0.1 * i, config_hash=f"c{i}",
                    rss_mb=mb, peak_saved_activation_bytes=int((4.787 + 0.003 * i) * MB),
                    config_json=json.dumps({"epochs": 2, "embedding": "one-hot", "lr": 0.001 * (i + 1)}))
            for i, mb in enumerate(rss_mb)]


def _size_entries(fig: Figure) -> dict[str, float]:
    """The legend's memory sizes: text -> the area (points²) its marker is drawn with."""
    legend = fig.legends[0]
    pairs = zip(legend.legend_handles, legend.get_texts(), strict=True)
    return {text.get_text(): handle.get_markersize() ** 2 for handle, text in pairs if "MB peak" in text.get_text()}


@pytest.mark.parametrize("rss_mb, shown", [([200, 500, 800], ["200", "800"]), ([780, 790, 800], ["800"])])
def test_nearly_equal_costs_get_a_sane_axis_and_the_size_legend_sizes_points_have(tmp_path: Path, rss_mb, shown):
    """The activation axis starts at 0 instead of spanning 4.787-4.793 MB; the size legend shows the smallest and
    the largest size a point has (one where they are within 10 %), each at the area those points are drawn with."""
    report = _report(tmp_path, _sweep(rss_mb))
    fig = _draw(pareto, report, tmp_path)
    memory = fig.axes[1]
    low, high = memory.get_xlim()
    assert memory.get_xscale() == "linear" and low == 0 and 4.793 < high < 6
    sizes = _size_entries(fig)
    assert list(sizes) == [f"{mb} MB peak RSS (CPU)" for mb in shown]
    drawn = {round(c.lines[0].get_markersize() ** 2, 6): x for c in fig.axes[0].containers
             for x in [c.lines[0].get_xdata()[0]]}
    by_size = dict(zip(sorted(drawn), sorted(rss_mb), strict=True))  # the areas grow with memory
    for text, area in sizes.items():
        assert by_size[round(area, 6)] == float(text.split()[0])  # a size a point has, at that point's area


# ----------------------------------------------------------------------------------------- per-class figures


def test_per_class_figures_name_fashion_mnists_classes(tmp_path: Path) -> None:
    labels, preds = np.arange(10, dtype=np.int16), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0], dtype=np.int16)
    arrays = {"label": labels, "pred": preds, "sample_images": np.zeros((10, 1, 28, 28), dtype=np.uint8),
              "sample_label": labels, "sample_pred": preds}
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    from bench.report.artifact_groups import class_names

    assert class_names("fashion-mnist") == names
    with plot.style():
        matrix = _saved(confusion.figure([arrays], "fashion-mnist", class_names("fashion-mnist")), tmp_path)
        grid = _saved(samples.figure(arrays, "fashion-mnist", class_names("fashion-mnist")), tmp_path)
    ax = matrix.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(names)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(names)
    assert_no_tick_labels_touch(matrix)
    titles = [ax.get_title() for ax in grid.axes if ax.get_title()]
    assert titles[0] == "true T-shirt/top\npred T-shirt/top" and titles[9] == "true Ankle boot\npred T-shirt/top ✗"


# ---------------------------------------------------------------------------------------- time to accuracy


def test_targets_are_chosen_from_the_data_and_a_figure_no_run_reaches_is_dropped(tmp_path: Path) -> None:
    runs = [run_row("dt", "fashion-mnist", "noprop-dt", 0, 66.2, 1.0), run_row("bp", "fashion-mnist", "backprop",
                                                                                0, 76.6, 1.0)]
    epochs = epoch_rows(runs[0], (40.0, 58.0, 66.2)) + epoch_rows(runs[1], (60.0, 71.0, 76.6))
    chosen = _report(tmp_path / "a", runs, epochs)
    per_run = chosen.data["time_to_accuracy"].per_run
    assert sorted(per_run["target_pct"].unique()) == [55.0, 60.0, 65.0]  # 65: the highest 5 % both reached
    assert per_run["reached"].all()
    assert [name for name, _ in chosen_jobs(chosen)] == ["time_to_accuracy"]
    given = _report(tmp_path / "b", runs, epochs, targets=[80.0, 85.0, 90.0])  # none reached: dropped, said why
    assert chosen_jobs(given) == []
    assert any(w.startswith("time_to_accuracy.png not drawn: no run reached any of the targets 80, 85, 90 %")
               for w in given.warnings)


def chosen_jobs(report: aggregate.Report) -> list:
    from bench.report.views import time_to_accuracy

    return time_to_accuracy.figures(report, figures.styles_for(report))


# --------------------------------------------------------------------------------- resumed runs, shared machines


def test_an_interrupted_attempt_a_resume_finished_is_not_counted_as_not_ok(tmp_path: Path) -> None:
    stopped = run_row("a1", "mnist", "noprop-dt", 0, 0.0, 1.0, status="interrupted", reason="SIGINT",
                      timestamp="2025-01-01T00:00:00+00:00")
    finished = run_row("a2", "mnist", "noprop-dt", 0, 80.0, 1.0, timestamp="2025-01-01T00:05:00+00:00")
    failed = run_row("b1", "mnist", "noprop-dt", 1, 0.0, 1.0, status="interrupted", reason="SIGINT")  # seed 1: none
    report = _report(tmp_path, [stopped, finished, failed])
    assert report.superseded == 1 and list(report.not_ok["run_id"]) == ["b1"]
    assert tables.not_ok_line(report).startswith("1 of 2 matching runs did not finish ok (interrupted: 1) (1 "
                                                 "interrupted attempt finished by a later --resume not counted)")


def test_runs_on_a_shared_machine_are_flagged_and_rss_reads_above_the_start(tmp_path: Path) -> None:
    loaded = {"load_avg": 7.9, "load_avg_max": 11.2, "cpus": 2, "rss_at_start_bytes": 770 * MB}
    idle = {"load_avg": 2.1, "load_avg_max": 2.3, "cpus": 2, "rss_at_start_bytes": 770 * MB}
    rows = [run_row("dt", "mnist", "noprop-dt", 0, 80.0, 37.0, rss_mb=848, **loaded),
            run_row("bp", "mnist", "backprop", 0, 84.0, 1.0, rss_mb=800, **idle)]
    report = _report(tmp_path, rows)
    flagged = [w for w in report.warnings if "shared the machine" in w]
    assert flagged == ["mnist noprop-dt (one-hot): 1 of 1 runs shared the machine with other work (load average "
                       "7.9 (up to 11.2) on 2 CPUs): their times, throughput and time ratios are suspect; rerun on "
                       "an idle machine before trusting them"]
    summary = report.summary.set_index("method")
    assert summary.loc["noprop-dt", "rss_above_start_mb_mean"] == 78.0 and summary.loc["noprop-dt",
                                                                                         "peak_rss_mb_mean"] == 848.0
    assert summary.loc["noprop-dt", "rss_above_start_ratio_to_baseline"] == pytest.approx(78 / 30)
    from bench.report import cells

    header, shown = cells.display_rows(report.summary)
    cell = {row[1]: dict(zip(header, row, strict=True)) for row in shown}["noprop-dt"]
    assert (cell["peak MB"], cell["mem / base"]) == ("78 + 770 RSS", "2.60")


def test_compare_says_which_side_ran_on_a_shared_machine(tmp_path: Path) -> None:
    from bench.report import compare as gate
    from bench.results import read_runs

    base = [run_row(f"b{s}", "mnist", "noprop-dt", s, 80.0, 6.4, epoch_time_median_s=6.4, load_avg=2.0,
                    load_avg_max=2.2, cpus=2) for s in (0, 1)]
    cand = [run_row(f"c{s}", "mnist", "noprop-dt", s, 80.0, 236.0, epoch_time_median_s=236.0, load_avg=9.8,
                    load_avg_max=14.0, cpus=2) for s in (0, 1)]
    sides = [read_runs(write_folder(tmp_path / name, rows)) for name, rows in (("b", base), ("c", cand))]
    result = gate.compare(*sides)
    assert result.failed and result.failures == [
        "mnist/noprop-dt (one-hot): median epoch time 6.4 s -> 236 s, x36.88 > x1.25 (max_slowdown); suspect: the "
        "candidate ran at a load average 9.8 (up to 14.0) on 2 CPUs, so other work shared the cores"]
    assert any("the candidate shared its machine with other work" in note for note in result.notes)
    assert not any("the baseline shared" in note for note in result.notes)


def test_old_rows_without_the_load_are_never_flagged() -> None:
    runs = pd.DataFrame({"load_avg": [None, 3.0], "cpus": [None, 2]})
    assert aggregate.shared_machine(runs).tolist() == [False, True]
    assert not aggregate.shared_machine(pd.DataFrame({"x": [1]})).any()
