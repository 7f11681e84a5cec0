"""The Pareto view: which groups no other beats on both accuracy and cost, its CSV, and its two-panel figure."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text

from bench.report import figures, plot, tables
from bench.report.build import build
from bench.report.load import load
from bench.report.views import VIEWS, pareto
from tests.report.helpers import MB, run_row, write_folder


@pytest.mark.parametrize(("cost", "accuracy", "expected"), [
    # (2, 55) has the cost of (2, 60) and less accuracy; (3, 60) its accuracy at more cost; the two equal (1, 50)
    # do not dominate each other
    ([1, 2, 2, 3, 1], [50, 60, 55, 60, 50], [True, True, False, False, True]),
    ([1, 2, 3], [90, 80, 70], [True, False, False]),  # the cheapest is also the best: it alone
    ([1, 2, 3], [70, 80, 90], [True, True, True]),  # each step buys accuracy
    ([math.nan, 1, 2], [99, 50, math.nan], [False, True, False]),  # a missing value: on no front, beats nothing
    ([5], [10], [True]),
    ([], [], []),
])
def test_the_front_keeps_exactly_the_points_no_other_beats(cost: list, accuracy: list, expected: list) -> None:
    assert pareto.pareto_front(cost, accuracy).tolist() == expected


def _rows() -> list[dict]:
    """Fashion-MNIST: NoProp-DT as fast as backprop but less accurate, and with a tenth of its saved activations; a
    CNN fastest and least accurate. MNIST: one faster and more accurate group, on a GPU, never weighed against them.
    Train time is twice the epoch time (two epochs)."""
    def saved(mb: float) -> dict:
        return {"peak_saved_activation_bytes": mb * MB}

    return [
        run_row("dt0", "fashion-mnist", "noprop-dt", 0, 80.0, 1.0, rss_mb=1000, **saved(5)),
        run_row("dt1", "fashion-mnist", "noprop-dt", 1, 82.0, 3.0, rss_mb=1000, **saved(5)),
        run_row("bp0", "fashion-mnist", "backprop", 0, 84.0, 2.0, rss_mb=2000, **saved(50)),
        run_row("bp1", "fashion-mnist", "backprop", 1, 86.0, 2.0, rss_mb=2000, **saved(50)),
        run_row("cn0", "fashion-mnist", "cnn", 0, 70.0, 0.5, rss_mb=500, **saved(1)),
        run_row("mn0", "mnist", "noprop-dt", 0, 99.0, 0.25, cuda_mb=256, reserved_mb=300, **saved(2)),
    ]


def _report(tmp_path: Path, rows: list[dict], **filters: list[str]):
    return build(load([write_folder(tmp_path / "hand", rows)]), **filters)


def test_each_group_has_its_spread_memory_and_fronts_within_its_dataset(tmp_path: Path) -> None:
    table = _report(tmp_path, _rows()).data["pareto"]
    assert list(table.columns) == pareto.COLUMNS
    fm = table[table["dataset"] == "fashion-mnist"].set_index("method")
    dt = fm.loc["noprop-dt"]
    assert (dt["label"], dt["n_seeds"], dt["seeds"]) == ("noprop-dt", 2, "0,1")
    assert (dt["test_acc_pct_mean"], dt["test_acc_pct_min"], dt["test_acc_pct_max"]) == (81.0, 80.0, 82.0)
    assert (dt["train_time_s_mean"], dt["train_time_s_min"], dt["train_time_s_max"]) == (4.0, 2.0, 6.0)
    assert fm["peak_memory_mb_mean"].to_dict() == {"backprop": 2000.0, "cnn": 500.0, "noprop-dt": 1000.0}
    assert set(fm["peak_memory_measure"]) == {"RSS (CPU)"}
    assert fm["peak_saved_activation_mb_mean"].to_dict() == {"backprop": 50.0, "cnn": 1.0, "noprop-dt": 5.0}
    # time: NoProp-DT takes backprop's 4 s for less accuracy; memory: each step to the right buys accuracy
    assert fm["on_time_front"].to_dict() == {"backprop": True, "cnn": True, "noprop-dt": False}
    assert fm["on_memory_front"].to_dict() == {"backprop": True, "cnn": True, "noprop-dt": True}
    mnist = table[table["dataset"] == "mnist"].iloc[0]  # faster and better than all of Fashion-MNIST: no matter
    assert (mnist["peak_memory_mb_mean"], mnist["peak_memory_measure"]) == (256.0, "CUDA allocated")
    assert bool(mnist["on_time_front"]) and bool(mnist["on_memory_front"])


def test_pareto_csv_is_written_with_the_views(tmp_path: Path) -> None:
    assert pareto.VIEW in VIEWS
    report = _report(tmp_path, _rows())
    out = tmp_path / "out"
    drawn = figures.write_figures(report, out, views=(pareto.VIEW,))
    written = tables.write_tables(report, out, drawn, views=(pareto.VIEW,))
    assert [p.name for p in drawn] == ["pareto.png"] and out / "pareto.csv" in written
    csv = pd.read_csv(out / "pareto.csv")
    assert list(csv.columns) == pareto.COLUMNS and len(csv) == 4
    assert csv.set_index("method").loc["cnn", "on_time_front"].item() is True


def _draw(report) -> Figure:
    with plot.style():
        fig = pareto.figure(report, figures.styles_for(report))
        fig.canvas.draw()
    return fig


def _markers(ax) -> dict[str, ErrorbarContainer]:
    """Each group's errorbar by its marker (one setting per method here)."""
    return {c.lines[0].get_marker(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}


def _front(ax) -> tuple[list[float], list[float]]:
    lines = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert len(lines) == 1
    return list(lines[0].get_xdata()), list(lines[0].get_ydata())


def test_the_figure_has_a_time_and_a_memory_panel_with_their_fronts(tmp_path: Path) -> None:
    report = _report(tmp_path, _rows(), datasets=["fashion-mnist"])
    styles = figures.styles_for(report)
    fig = _draw(report)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    time, memory = fig.axes
    x, y = _front(time)  # CNN then backprop, and no further: beyond its last point a front is no line
    assert x == [1.0, 4.0] and y == [70.0, 85.0]
    x, y = _front(memory)
    assert x == [1.0, 5.0, 50.0] and y == [70.0, 81.0, 85.0]
    assert (time.get_xscale(), memory.get_xscale()) == ("linear", "log")  # 1-6 s; 1-50 MB spans more than 10x
    by_marker = _markers(time)
    dt, bp, cnn = (by_marker[styles.marker(m)] for m in ("noprop-dt", "backprop", "cnn"))
    assert dt.has_xerr and dt.has_yerr and not cnn.has_xerr and not cnn.has_yerr  # bars only over several seeds
    area = {m: c.lines[0].get_markersize() ** 2 for m, c in (("dt", dt), ("bp", bp), ("cnn", cnn))}
    assert area["bp"] == pytest.approx(pareto.AREA_MAX) and area["dt"] == pytest.approx(2 * area["cnn"])
    assert {s.get_markersize() for c in _markers(memory).values() for s in c.lines[:1]} == {
        math.sqrt(pareto.AREA_FIXED)}
    assert tuple(dt.lines[0].get_color()) == tuple(styles.color("noprop-dt"))  # the colours of every figure
    for ax in (time, memory):
        assert sorted(t.get_text() for t in ax.texts) == ["backprop", "cnn", "noprop-dt"]


def test_labels_stay_inside_their_panel_and_apart_when_markers_crowd(tmp_path: Path) -> None:
    """Five settings of one method within a few percent of each other's time and accuracy."""
    rows = [run_row(f"r{i}", "fashion-mnist", "noprop-ct", 0, 70.0 + 0.3 * i, 1.0 + 0.02 * i, config_hash=f"cfg{i}",
                    embed_dim=10 + i) for i in range(5)]
    rows.append(run_row("bp", "fashion-mnist", "backprop", 0, 80.0, 3.0))
    fig = _draw(_report(tmp_path, rows))
    time = fig.axes[0]
    boxes = [Text.get_window_extent(t) for t in time.texts]  # the text alone, without its line to the marker
    assert len(boxes) == 6 and all("noprop-ct\n" in t.get_text() for t in time.texts if "ct" in t.get_text())
    inside = time.get_window_extent()
    for box in boxes:
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)


def test_without_memory_columns_the_time_panel_is_still_drawn(tmp_path: Path) -> None:
    rows = [{**r, "peak_rss_bytes": None, "peak_saved_activation_bytes": None} for r in _rows()[:5]]
    report = _report(tmp_path, rows)
    table = report.data["pareto"]
    assert table["peak_memory_mb_mean"].isna().all() and set(table["peak_memory_measure"]) == {""}
    assert not table["on_memory_front"].any() and table["on_time_front"].sum() == 2
    fig = _draw(report)
    assert len(fig.axes) == 2
    time, memory = fig.axes
    assert len(_markers(time)) == 3 and _front(time)[0][:2] == [1.0, 4.0]
    sizes = {c.lines[0].get_markersize() for c in _markers(time).values()}
    assert sizes == {math.sqrt(pareto.AREA_FIXED)}  # nothing to size them by
    assert not _markers(memory) and [t.get_text() for t in memory.texts] == ["not measured in these runs"]
    assert not any("MB peak memory" in t.get_text() for legend in fig.legends for t in legend.get_texts())


def test_marker_areas_are_proportional_to_memory_with_a_floor() -> None:
    areas = pareto.marker_areas(pd.Series([1000.0, 500.0, 1.0, np.nan]))
    assert areas.tolist() == [pareto.AREA_MAX, pareto.AREA_MAX / 2, pareto.AREA_MIN, pareto.AREA_FIXED]
