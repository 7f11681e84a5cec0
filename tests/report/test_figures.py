"""Figures and the whole ``report`` command on results made by the real ``run`` command.

A module-scoped fixture runs ``noprop-bench run`` three times on a tiny MNIST-format dataset written in the real
IDX format (so it needs no downloaded data): one-hot NoProp-DT and backprop with two seeds, learned embeddings
for both methods, a prototype NoProp-DT run and a CNN reference run (one seed each). It takes about 15 s on a
2-core CPU. Every method's runs get the per-method figures their artifacts allow (confusion and samples for all,
embeddings for trained embeddings).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from bench.cli import app
from bench.report import aggregate, figures, plot
from bench.report.artifact_groups import artifact_groups
from bench.report.build import build
from bench.report.load import load
from bench.report.views import accuracy, cost, curves, memory, pareto
from bench.results import read_runs
from tests.formats import write_idx_dataset
from tests.report.helpers import known_runs, switched_runs, write_folder

RUN = ["--config", "smoke", "--dataset", "mnist", "--download", "false", "--epochs", "2", "--train-subset", "200",
       "--test-subset", "100", "--width", "0.125", "--T", "3", "--eval-repeats", "2", "--quiet", "--in-process"]
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}
EXPECTED = [
    "accuracy", "curves", "memory", "throughput", "equal_cost", "pareto", "time_to_accuracy",
    "embeddings_mnist_backprop_learned", "embeddings_mnist_noprop-dt_learned", "embeddings_mnist_noprop-dt_prototype",
    "confusion_mnist_noprop-dt_one-hot", "confusion_mnist_noprop-dt_learned", "confusion_mnist_noprop-dt_prototype",
    "samples_mnist_noprop-dt_one-hot", "samples_mnist_noprop-dt_learned", "samples_mnist_noprop-dt_prototype",
    "confusion_mnist_backprop_one-hot", "confusion_mnist_backprop_learned", "confusion_mnist_cnn_one-hot",
    "samples_mnist_backprop_one-hot", "samples_mnist_backprop_learned", "samples_mnist_cnn_one-hot",
]
NOT_NOPROP = ("backprop", "cnn")


@pytest.fixture(scope="module")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    data_dir, out = root / "data", root / "results"
    write_idx_dataset(data_dir / "mnist", n_train=300, n_test=100)
    # One thread: on a busy 2-core machine, two spinning OpenMP threads make these tiny runs ~50x slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "bench.cli", "run", *RUN, "--data-dir", str(data_dir), "--out", str(out)]
    for extra in (["--seeds", "0,1"], ["--seeds", "0", "--embedding", "learned"],
                  ["--seeds", "0", "--embedding", "prototype", "--methods", "noprop"],
                  ["--seeds", "0", "--methods", "cnn"]):
        proc = subprocess.run([*base, *extra], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def assert_valid_image(path: Path, fmt: str) -> None:
    data = path.read_bytes()
    assert len(data) > 1000, path
    if fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg"), path
    else:
        assert data.startswith(MAGIC[fmt]), path
    if fmt == "png":
        with Image.open(path) as image:
            image.verify()
            assert image.size[0] > 100 and image.size[1] > 100


def test_report_command_on_real_runs_writes_every_file(real_results: Path, tmp_path: Path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(real_results), "--out", str(out)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Accuracy (ok runs" in result.output
    listed = result.output[result.output.index("wrote "):]
    for name in ("summary.csv", "intervals.csv", "equal_cost.csv", "pareto.csv", "time_to_accuracy.csv", "summary.md",
                 *(f"{stem}.png" for stem in EXPECTED)):
        assert str(out / name) in listed, name
    for stem in EXPECTED:
        assert_valid_image(out / f"{stem}.png", "png")
    assert sorted(p.name for p in out.iterdir()) == sorted(["summary.csv", "summary.md", "pareto.csv", "intervals.csv",
                                                           "equal_cost.csv", "time_to_accuracy.csv",
                                                           *(f"{s}.png" for s in EXPECTED)])
    md = (out / "summary.md").read_text()
    assert "All 8 matching runs finished ok." in md and "![accuracy](accuracy.png)" in md
    assert "## Time to accuracy" in md and "Time to accuracy" in result.output
    assert "| mnist | cnn | one-hot |" in md  # the CNN reference is reported like any method
    assert "## Is the difference real?" in md and "## Accuracy at equal cost" in md
    assert "not checked: no run has a validation split" in result.output


def test_summary_of_real_runs_matches_the_run_rows(real_results: Path):
    runs = read_runs(real_results)
    report = build(load([real_results]))
    assert report.warnings[0].startswith("mnist, 2 epochs: the methods make different block passes per image per "
                                         "epoch (backprop 3, cnn 1, noprop-dt 3)")
    others = [w for w in report.warnings[1:] if "shared the machine" not in w]  # as loaded as the machine is
    assert others == ["mnist noprop-dt (prototype): "  # a group is named by its label
                                   "no ok backprop run with the same dataset and embedding; ratios left empty"]
    summary = report.summary.set_index(["method", "embedding"])
    for method in ("noprop-dt", "backprop"):
        own = runs[(runs["method"] == method) & (runs["embedding"] == "one-hot")]
        row = summary.loc[(method, "one-hot")]
        accs = list(own["test_acc"])
        assert row["n_seeds"] == 2
        assert row["test_acc_pct_mean"] == pytest.approx(statistics.fmean(accs), rel=1e-12)
        assert row["test_acc_pct_sd"] == pytest.approx(statistics.stdev(accs), rel=1e-12, abs=1e-12)
        assert row["test_acc_pct_se"] == pytest.approx(statistics.stdev(accs) / 2**0.5, rel=1e-12, abs=1e-12)
        assert row["paper_test_acc_pct"] == {"noprop-dt": 99.47, "backprop": 99.46}[method]
    one_hot = runs[runs["embedding"] == "one-hot"]
    mean_time = one_hot.groupby("method")["time_per_epoch_s"].mean()
    ratio = summary.loc[("noprop-dt", "one-hot"), "time_per_epoch_ratio_to_baseline"]
    assert ratio == pytest.approx(mean_time["noprop-dt"] / mean_time["backprop"], rel=1e-12)
    assert not pd.isna(summary.loc[("noprop-dt", "learned"), "peak_rss_ratio_to_baseline"])
    assert summary.loc[("noprop-dt", "learned"), "paper_test_acc_pct"] == 99.49  # embed_dim 20 = the paper's dim 20
    assert set(report.data["curves"]["epoch"]) == {1, 2}
    points = report.data["equal_cost"].points.merge(runs[["run_id", "train_gflop_per_sample"]], on="run_id")
    assert (points["gflop"] == points["train_gflop_per_sample"] * 200 * points["epoch"]).all()  # train_subset 200


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_vector_formats(real_results: Path, tmp_path: Path, fmt: str):
    report = build(load([real_results]), methods=["noprop"], datasets=["mnist"])
    written = figures.write_figures(report, tmp_path, fmt)
    assert {p.name for p in written} == {f"{s}.{fmt}" for s in EXPECTED if not any(m in s for m in NOT_NOPROP)}
    for path in written:
        assert_valid_image(path, fmt)


def test_runs_without_artifacts_get_the_summary_figures_only(tmp_path: Path):
    runs, epochs = known_runs()
    folder = write_folder(tmp_path / "hand", runs, epochs)
    report = build(load([folder]))
    written = figures.write_figures(report, tmp_path / "out", "png")
    assert [p.name for p in written] == ["accuracy.png", "curves.png", "memory.png", "throughput.png",
                                         "equal_cost.png", "pareto.png", "time_to_accuracy.png"]
    for path in written:
        assert_valid_image(path, "png")
    assert not any("drawn" in w for w in report.warnings)


def test_each_variant_has_its_own_marker_linestyle_and_hatch():
    variants = [f"v{i}" for i in range(4)]
    styles = plot.Styles(variants)
    for attribute in ("marker", "linestyle", "hatch"):
        assert len({getattr(styles, attribute)(v) for v in variants}) == 4, attribute


# ------------------------------------------------------------------------------- figures as a reader sees them


def hand_report(tmp_path: Path, rows: list[dict]) -> aggregate.Report:
    return build(load([write_folder(tmp_path / "hand", rows)]))


VIEW_FIGURES = {"accuracy": accuracy.figure, "curves": curves.figure, "memory": memory.figure,
                "throughput": cost.figure, "pareto": pareto.figure}


def draw(name: str, report: aggregate.Report):
    with plot.style():
        fig = VIEW_FIGURES[name](report, figures.styles_for(report))
        fig.canvas.draw()
    return fig


def texts(fig) -> list[str]:
    return [fig.get_suptitle()] + [t.get_text() for legend in fig.legends for t in legend.get_texts()]


@pytest.mark.parametrize("name", ["accuracy", "curves", "memory", "throughput", "pareto"])
def test_titles_and_legends_lie_inside_the_figure(tmp_path: Path, name: str):
    runs, epochs = known_runs()
    report = build(load([write_folder(tmp_path / "k", runs, epochs)]), datasets=["mnist"])  # narrowest
    fig = draw(name, report)
    width, height = fig.bbox.width, fig.bbox.height
    for artist in [fig._suptitle, *fig.legends]:
        box = artist.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0 and box.y1 <= height, (name, artist)


def test_the_paper_line_is_promised_only_where_drawn(tmp_path: Path):
    with_paper = draw("accuracy", build(load([write_folder(tmp_path / "k", *known_runs())])))
    assert any("paper" in t for t in texts(with_paper))
    fashion = draw("accuracy", hand_report(tmp_path, switched_runs()))  # the paper has no Fashion-MNIST numbers
    assert not any("paper" in t for t in texts(fashion))


def test_settings_are_labelled_by_what_differs_with_the_methods_side_by_side(tmp_path: Path):
    fig = draw("accuracy", hand_report(tmp_path, switched_runs()))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["channels_last=false", "channels_last=true"]
    means = sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines
                   if line.get_marker() in ("o", "s"))  # the mean markers (not the error bars' caps)
    assert [x for x, _ in means] == [-0.2, 0.2, 0.8, 1.2]  # NoProp-DT left of backprop within each setting
    assert [y for _, y in means] == [80.5, 70.5, 80.5, 70.5]


def test_memory_is_coloured_by_method_with_a_saved_activation_panel(tmp_path: Path):
    rows = [{**r, "peak_saved_activation_bytes": (5 if r["method"] == "noprop-dt" else 50) * 2**20}
            for r in switched_runs()]
    report = hand_report(tmp_path, rows)
    fig = draw("memory", report)
    styles = figures.styles_for(report)
    peak, saved = fig.axes[:2]
    assert saved.get_title() == "fashion-mnist: saved activations"
    for ax in (peak, saved):
        colours = {tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in ax.patches}
        assert colours == {tuple(round(c, 3) for c in styles.color(m)) for m in ("noprop-dt", "backprop")}
    assert {bar.get_hatch() for bar in peak.patches} == {memory.MEASURE_HATCHES["RSS (CPU)"]}
    assert sorted(bar.get_height() for bar in saved.patches) == [5.0, 5.0, 50.0, 50.0]
    assert "peak RSS (CPU)" in texts(fig)


def test_artifact_file_names_are_the_groups_labels(tmp_path: Path):
    """Groups that share a config but differ in a switch: their files are named by the label tables and figures
    show, not by a hash."""
    report = hand_report(tmp_path, switched_runs())
    arrays = {"label": [0, 1], "pred": [0, 1]}
    report.artifacts = {(str(r.results_dir), str(r.run_id)): arrays for r in report.runs.itertuples()}
    names = sorted(g.file("confusion") for g in artifact_groups(report, ["label", "pred"]))
    assert names == [f"confusion_fashion-mnist_{method}_channels_last-{value}"
                     for method in ("backprop", "noprop-dt") for value in ("false", "true")]
