"""``bench.report.views``: the one list of views drives the report's data, terminal tables, summary.md, CSVs and
figures; and the per-method figures are drawn for any method whose artifacts hold what they need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.report import figures, tables
from bench.report.build import build
from bench.report.cells import rich_table
from bench.report.load import load
from bench.report.views import VIEWS
from bench.report.views.base import View
from bench.results.artifacts import artifact_path
from tests.report.helpers import run_row, write_folder


def _count_figure() -> Figure:
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [0, 1])
    return fig


COUNT = View(  # a view of its own, known only to this list
    "count",
    data=lambda report: len(report.runs),
    terminal=lambda report: [rich_table(f"Count: {report.data['count']} runs")],
    markdown=lambda report: ["## Count", f"{report.data['count']} runs."],
    files=lambda report: {"count.csv": pd.DataFrame({"runs": [report.data["count"]]})},
    figures=lambda report, styles: [("count", _count_figure)],
)


def test_a_view_in_the_list_adds_its_data_table_section_csv_and_figure(known: Path, tmp_path: Path) -> None:
    report = build(load([known]), views=(COUNT,))
    assert report.data == {"count": 7}
    titles = [t.title for t in tables.terminal_tables(report, views=(COUNT,))]
    assert titles[0] == "Count: 7 runs" and "did not finish ok" in titles[1]  # then what every report has
    out = tmp_path / "out"
    drawn = figures.write_figures(report, out, views=(COUNT,))
    written = tables.write_tables(report, out, drawn, views=(COUNT,))
    assert [p.name for p in drawn] == ["count.png"]
    assert [p.name for p in written] == ["summary.csv", "count.csv", "summary.md"]
    md = (out / "summary.md").read_text()
    assert "## Count\n\n7 runs." in md and "![count](count.png)" in md
    assert md.index("## Count") < md.index("## Runs not ok")


def test_without_views_only_what_every_report_has_is_written(known: Path, tmp_path: Path) -> None:
    report = build(load([known]), views=())
    assert report.data == {}
    assert figures.write_figures(report, tmp_path / "out", views=()) == []
    assert [p.name for p in tables.write_tables(report, tmp_path / "out", views=())] == ["summary.csv", "summary.md"]
    assert len(tables.terminal_tables(report, views=())) == 1  # the runs that did not finish ok


def test_leaving_a_view_out_of_the_list_leaves_out_all_it_shows(known: Path, tmp_path: Path) -> None:
    assert len({view.name for view in VIEWS}) == len(VIEWS)
    fewer = tuple(view for view in VIEWS if view.name != "time_to_accuracy")
    report = build(load([known]), views=fewer)
    assert "time_to_accuracy" not in report.data and "curves" in report.data
    out = tmp_path / "out"
    drawn = figures.write_figures(report, out, views=fewer)
    written = tables.write_tables(report, out, drawn, views=fewer)
    assert [p.name for p in drawn] == ["accuracy.png", "curves.png", "memory.png", "throughput.png", "equal_cost.png",
                                       "pareto.png"]
    assert [p.name for p in written] == ["summary.csv", "intervals.csv", "equal_cost.csv", "pareto.csv", "summary.md"]
    assert "Time to accuracy" not in (out / "summary.md").read_text()
    assert [t.title for t in tables.terminal_tables(report, views=fewer)][:2] == [
        "Accuracy (ok runs; mean ± sd over seeds)", "Cost"]


# ------------------------------------------------------------------------------------- per-method figures


def _artifact(folder: Path, run_id: str, embedding_kind: str) -> None:
    rng = np.random.default_rng(0)
    label = np.arange(40, dtype=np.int16) % 4
    path = artifact_path(folder, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, label=label, pred=np.roll(label, 1), embedding=rng.normal(size=(4, 3)).astype(np.float32),
             embedding_kind=np.array(embedding_kind), image_shape=np.array([1, 8, 8]),
             sample_images=rng.integers(0, 255, size=(6, 1, 8, 8), dtype=np.uint8),
             sample_label=label[:6], sample_pred=np.roll(label, 1)[:6])


def test_per_method_figures_are_drawn_for_methods_other_than_noprop(tmp_path: Path) -> None:
    runs = [run_row("bp0", "mnist", "backprop", 0, 90.0, 1.0, embedding="learned", embed_dim=3),
            run_row("cn0", "mnist", "cnn", 0, 91.0, 1.0)]
    folder = write_folder(tmp_path / "res", runs)
    _artifact(folder, "bp0", "learned")
    _artifact(folder, "cn0", "one-hot")
    report = build(load([folder]))
    drawn = {p.name for p in figures.write_figures(report, tmp_path / "out")}
    # named by their labels ("learned, embed_dim=3" and "one-hot, embed_dim=20": the settings differ in both)
    assert {"confusion_mnist_backprop_learned-embed_dim-3.png", "samples_mnist_backprop_learned-embed_dim-3.png",
            "embeddings_mnist_backprop_learned-embed_dim-3.png", "confusion_mnist_cnn_one-hot-embed_dim-20.png",
            "samples_mnist_cnn_one-hot-embed_dim-20.png"} <= drawn
    assert not any(name.startswith("embeddings_mnist_cnn") for name in drawn)  # one-hot is not trained: nothing
    assert not any("could not be drawn" in w for w in report.warnings), report.warnings
