"""The CI regression gate behind ``noprop-bench compare``: do a candidate's runs still match a baseline's?

Both sides are ``runs.csv`` rows. Only rows with status ``ok`` count. Runs are grouped as in ``report``, by
(dataset, method, embedding, config_hash), so only runs of the same settings are compared. A group on one side
only is listed and not judged. Per group and side, a seed run more than once is averaged first, so each seed
counts once. Then:

- accuracy: mean of ``test_acc`` (%) over seeds, and its sample sd (ddof=1). The candidate fails when
  ``baseline_mean - candidate_mean > max_accuracy_drop + SPREAD_K * pooled_se`` with
  ``pooled_se = sqrt(sd_b**2 / n_b + sd_c**2 / n_c)`` and ``SPREAD_K = 2``. A side with one seed has no sd and adds
  0 to ``pooled_se``, so with one seed on each side only ``max_accuracy_drop`` is allowed. Seeds that
  disagree with each other widen the allowance; an identical rerun never fails.
- time: ``time_per_epoch_s`` median over seeds (one slow seed on a busy machine does not decide).
  ``slowdown = candidate / baseline`` fails when above ``max_slowdown``. ``samples_per_s`` (median) is shown as
  a ratio and not judged, because it restates the time.
- memory: ``peak_cuda_allocated_bytes`` when both sides have it, else ``peak_rss_bytes`` (median over seeds).
  ``growth = candidate / baseline`` fails when above ``max_memory_growth``. ``peak_saved_activation_bytes`` is
  judged against the same threshold when both sides have it; it does not depend on timing, so it is a tight signal.

A value missing on one side leaves that check unjudged, and a note says so (except for saved activations, which
most runs do not record). When ``device_name`` differs between
the sides a note says the timings are not comparable, and they are still compared. The functions are pure
(DataFrames in, a ``Comparison`` out); ``load_runs`` and ``read_thresholds`` are the only ones that read files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from bench.results import RUNS_FILE, read_runs

if TYPE_CHECKING:
    from rich.table import Table

GROUP = ["dataset", "method", "embedding", "config_hash"]
SPREAD_K = 2.0  # how many pooled standard errors of seed spread an accuracy drop may add to max_accuracy_drop
BYTES_PER_MB = 2**20
_EPS = 1e-9  # so a value exactly at its threshold passes despite floating-point noise


class CompareError(Exception):
    """The input cannot be compared (missing folder, bad thresholds, nothing in common); exit code 2."""


# ----------------------------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """How much worse the candidate may be. Accuracy in percentage points; time and memory as ratios."""

    max_accuracy_drop: float = 0.5
    max_slowdown: float = 1.25
    max_memory_growth: float = 1.25


THRESHOLD_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Thresholds))


def read_thresholds(path: str | Path) -> dict[str, float]:
    """The threshold keys set in a YAML file. An unknown key is an error, so a typo cannot silently loosen the gate."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CompareError(f"thresholds file {path}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise CompareError(f"thresholds file {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CompareError(f"thresholds file {path}: expected a mapping of keys ({', '.join(THRESHOLD_KEYS)}), "
                           f"found {type(data).__name__}")
    unknown = [str(k) for k in data if k not in THRESHOLD_KEYS]
    if unknown:
        raise CompareError(f"thresholds file {path}: unknown key '{unknown[0]}'; allowed keys: "
                           f"{', '.join(THRESHOLD_KEYS)}")
    return {key: _check_threshold(key, value, str(path)) for key, value in data.items()}


def make_thresholds(*layers: Mapping[str, float | None]) -> Thresholds:
    """Defaults, then each layer in turn (a file, then the command line); a None value leaves the key as it was."""
    thresholds = Thresholds()
    for layer in layers:
        unknown = [k for k in layer if k not in THRESHOLD_KEYS]
        if unknown:
            raise CompareError(f"unknown threshold '{unknown[0]}'; allowed: {', '.join(THRESHOLD_KEYS)}")
        given = {k: _check_threshold(k, v, "command line") for k, v in layer.items() if v is not None}
        thresholds = replace(thresholds, **given)
    return thresholds


def _check_threshold(key: str, value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CompareError(f"{where}: {key} must be a number, got {value!r}")
    if key == "max_accuracy_drop" and value < 0:
        raise CompareError(f"{where}: max_accuracy_drop must be >= 0 (percentage points), got {value!r}")
    if key != "max_accuracy_drop" and value <= 0:
        raise CompareError(f"{where}: {key} must be a ratio > 0 (1.25 allows 25% more), got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------- reading


def load_runs(folder: str | Path, side: str) -> pd.DataFrame:
    """The runs.csv rows of one side; a missing folder or file is a CompareError naming it.

    ``ResultsError`` (including ``SchemaMismatchError``) from ``read_runs`` passes through. Both mean bad input.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"{side} folder {folder} does not exist (or is not a folder)")
    if not (folder / RUNS_FILE).is_file():
        raise CompareError(f"{side} folder {folder} holds no {RUNS_FILE} (give the folder that `run --out` wrote)")
    return read_runs(folder)


# --------------------------------------------------------------------------------------------- aggregation

_SIDE_COLUMNS = ["n_seeds", "n_acc", "acc_mean", "acc_sd", "time_median", "samples_median", "cuda_median",
                 "rss_median", "saved_median", "devices"]


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per group of ok runs: seeds, accuracy mean and sd, and medians of time, throughput and memory."""
    ok = runs[runs["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=[*GROUP, *_SIDE_COLUMNS])
    for column in GROUP:
        ok[column] = ok[column].astype("object").where(ok[column].notna(), "").astype(str)
    values = ok[GROUP].copy()
    values["seed"] = ok["seed"].astype("float64")  # a missing seed is a seed of its own, not dropped
    sources = {"acc": "test_acc", "time": "time_per_epoch_s", "samples": "samples_per_s",
               "cuda": "peak_cuda_allocated_bytes", "rss": "peak_rss_bytes", "saved": "peak_saved_activation_bytes"}
    for name, column in sources.items():
        values[name] = ok[column].astype("float64")
    per_seed = values.groupby([*GROUP, "seed"], dropna=False, sort=True).mean().reset_index()
    grouped = per_seed.groupby(GROUP, sort=True, dropna=False)
    out = grouped.agg(n_seeds=("seed", "size"), n_acc=("acc", "count"), acc_mean=("acc", "mean"),
                      acc_sd=("acc", "std"), time_median=("time", "median"), samples_median=("samples", "median"),
                      cuda_median=("cuda", "median"), rss_median=("rss", "median"),
                      saved_median=("saved", "median")).reset_index()
    names = ok.groupby(GROUP, sort=True, dropna=False)["device_name"].agg(
        lambda s: ", ".join(sorted({str(v) for v in s.dropna() if str(v)})))
    out["devices"] = out.set_index(GROUP).index.map(names).to_numpy()
    return out[[*GROUP, *_SIDE_COLUMNS]]


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """Matched groups with every number and verdict (``table``), plus what could not be compared."""

    table: pd.DataFrame  # one row per matched group; columns COMPARISON_COLUMNS
    thresholds: Thresholds
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # ignored non-ok rows, device differences, unjudged checks

    @property
    def failures(self) -> list[str]:
        """One line per crossed threshold, naming the group, the measure and the threshold."""
        return [line for lines in self.table["failures"] for line in lines]

    @property
    def failed(self) -> bool:
        return bool(self.failures)


COMPARISON_COLUMNS = [
    *GROUP, "n_base", "n_cand", "acc_base", "acc_cand", "acc_sd_base", "acc_sd_cand", "acc_drop", "pooled_se",
    "acc_allowed", "time_base", "time_cand", "slowdown", "samples_base", "samples_cand", "samples_ratio",
    "memory_kind", "memory_base", "memory_cand", "memory_growth", "saved_base", "saved_cand", "saved_growth",
    "devices_base", "devices_cand", "failed_checks", "failures",
]


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, thresholds: Thresholds | None = None) -> Comparison:
    """Judge every group present on both sides (see the module docstring for the rules).

    Raises CompareError when no group is on both sides: a gate that compared nothing must not pass.
    """
    thresholds = thresholds or Thresholds()
    notes = [*_not_ok_notes(baseline, "baseline"), *_not_ok_notes(candidate, "candidate")]
    base, cand = aggregate(baseline), aggregate(candidate)
    merged = base.merge(cand, on=GROUP, how="outer", suffixes=("_b", "_c"), indicator=True)
    only_baseline = [f"{_label(r)}, {_seeds(r['n_seeds_b'])}" for _, r in merged.iterrows()
                     if r["_merge"] == "left_only"]
    only_candidate = [f"{_label(r)}, {_seeds(r['n_seeds_c'])}" for _, r in merged.iterrows()
                      if r["_merge"] == "right_only"]
    both = merged[merged["_merge"] == "both"]
    if both.empty:
        raise CompareError(_nothing_matched(base, cand))
    rows = [_judge(r, thresholds, notes) for _, r in both.iterrows()]
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    return Comparison(table=table, thresholds=thresholds, only_baseline=only_baseline,
                      only_candidate=only_candidate, notes=notes)


def accuracy_allowance(max_drop: float, sd_b: float, n_b: int, sd_c: float, n_c: int) -> tuple[float, float]:
    """(pooled_se, allowed drop): ``max_drop + SPREAD_K * sqrt(sd_b²/n_b + sd_c²/n_c)``; a one-seed side adds 0."""
    def term(sd: float, n: int) -> float:
        return 0.0 if n < 2 or pd.isna(sd) else float(sd) ** 2 / n

    pooled_se = math.sqrt(term(sd_b, n_b) + term(sd_c, n_c))
    return pooled_se, max_drop + SPREAD_K * pooled_se


def ratio(base: float, cand: float) -> float:
    """cand / base; NaN when either is missing; growth from 0 is infinite (so it fails), 0 -> 0 is 1."""
    if pd.isna(base) or pd.isna(cand):
        return math.nan
    if base > 0:
        return float(cand) / float(base)
    return 1.0 if cand == 0 else math.inf


def _judge(r: pd.Series, t: Thresholds, notes: list[str]) -> dict:
    label = _label(r)
    checks: list[str] = []
    failures: list[str] = []
    row: dict = {k: r[k] for k in GROUP}
    row.update(n_base=int(r["n_seeds_b"]), n_cand=int(r["n_seeds_c"]), devices_base=r["devices_b"],
               devices_cand=r["devices_c"])
    if r["devices_b"] != r["devices_c"]:
        notes.append(f"{label}: device differs (baseline: {r['devices_b'] or '?'}; candidate: "
                     f"{r['devices_c'] or '?'}), so the timings are not comparable; compared anyway")

    # accuracy
    pooled_se, allowed = accuracy_allowance(t.max_accuracy_drop, r["acc_sd_b"], int(r["n_acc_b"]), r["acc_sd_c"],
                                            int(r["n_acc_c"]))
    drop = r["acc_mean_b"] - r["acc_mean_c"]
    row.update(acc_base=r["acc_mean_b"], acc_cand=r["acc_mean_c"], acc_sd_base=r["acc_sd_b"],
               acc_sd_cand=r["acc_sd_c"], acc_drop=drop, pooled_se=pooled_se, acc_allowed=allowed)
    if pd.isna(drop):
        notes.append(f"{label}: accuracy not judged (no test_acc on one side)")
    elif drop > allowed + _EPS:
        checks.append("accuracy")
        failures.append(f"{label}: test accuracy {r['acc_mean_b']:.2f}% -> {r['acc_mean_c']:.2f}%, a drop of "
                        f"{drop:.2f} points > {allowed:.2f} allowed (max_accuracy_drop {t.max_accuracy_drop:g} + "
                        f"{SPREAD_K:g} x pooled se {pooled_se:.2f})")

    # time
    slowdown = ratio(r["time_median_b"], r["time_median_c"])
    row.update(time_base=r["time_median_b"], time_cand=r["time_median_c"], slowdown=slowdown,
               samples_base=r["samples_median_b"], samples_cand=r["samples_median_c"],
               samples_ratio=ratio(r["samples_median_b"], r["samples_median_c"]))
    if pd.isna(slowdown):
        notes.append(f"{label}: time not judged (no time_per_epoch_s on one side)")
    elif slowdown > t.max_slowdown + _EPS:
        checks.append("time")
        failures.append(f"{label}: time per epoch {r['time_median_b']:.3g} s -> {r['time_median_c']:.3g} s, "
                        f"x{slowdown:.2f} > x{t.max_slowdown:g} (max_slowdown)")

    # peak memory: CUDA allocated when both sides measured it, else RSS
    on_cuda = not (pd.isna(r["cuda_median_b"]) or pd.isna(r["cuda_median_c"]))
    kind, key = ("CUDA allocated", "cuda_median") if on_cuda else ("RSS", "rss_median")
    growth = ratio(r[f"{key}_b"], r[f"{key}_c"])
    row.update(memory_kind=kind, memory_base=r[f"{key}_b"], memory_cand=r[f"{key}_c"], memory_growth=growth)
    if pd.isna(growth):
        notes.append(f"{label}: peak memory not judged (no peak_rss_bytes on one side)")
    elif growth > t.max_memory_growth + _EPS:
        checks.append("memory")
        failures.append(f"{label}: peak {kind} memory {_mb(r[f'{key}_b'])} -> {_mb(r[f'{key}_c'])} MB, "
                        f"x{growth:.2f} > x{t.max_memory_growth:g} (max_memory_growth)")

    # saved activations: deterministic, so judged whenever both sides have them
    saved = ratio(r["saved_median_b"], r["saved_median_c"])
    row.update(saved_base=r["saved_median_b"], saved_cand=r["saved_median_c"], saved_growth=saved)
    if not pd.isna(saved) and saved > t.max_memory_growth + _EPS:
        checks.append("saved activations")
        failures.append(f"{label}: peak saved activations {_mb(r['saved_median_b'])} -> "
                        f"{_mb(r['saved_median_c'])} MB, x{saved:.2f} > x{t.max_memory_growth:g} (max_memory_growth)")
    row.update(failed_checks=checks, failures=failures)
    return row


def _label(r: pd.Series | Mapping) -> str:
    return f"{r['dataset']}/{r['method']}/{r['embedding']} (config {r['config_hash'] or '?'})"


def _seeds(n: object) -> str:
    return f"{int(n)} seed" + ("" if int(n) == 1 else "s")


def _not_ok_notes(runs: pd.DataFrame, side: str) -> list[str]:
    status = runs["status"].astype("object").where(runs["status"].notna(), "unknown")
    bad = status[status != "ok"]
    if bad.empty:
        return []
    counts = ", ".join(f"{s}: {n}" for s, n in bad.value_counts().sort_index().items())
    return [f"{side}: {len(bad)} run(s) not ok ignored ({counts})"]


def _nothing_matched(base: pd.DataFrame, cand: pd.DataFrame) -> str:
    if base.empty or cand.empty:
        sides = " and ".join(s for s, frame in (("baseline", base), ("candidate", cand)) if frame.empty)
        return f"nothing to compare: the {sides} hold(s) no runs with status ok"

    def listed(frame: pd.DataFrame) -> str:
        labels = [_label(r) for _, r in frame.iterrows()]
        return "; ".join(labels[:3]) + (f"; and {len(labels) - 3} more" if len(labels) > 3 else "")

    message = (f"nothing to compare: no (dataset, method, embedding, config_hash) group of ok runs is on both sides "
               f"(baseline: {listed(base)}; candidate: {listed(cand)})")
    same = base[["dataset", "method", "embedding"]].merge(cand[["dataset", "method", "embedding"]])
    if not same.empty:
        message += ("; the same dataset, method and embedding exist with a different config_hash: the configs "
                    "differ, so rerun the candidate with the baseline's config")
    return message


# ------------------------------------------------------------------------------------------ presentation

MEASURE_HEADER = ["measure", "baseline", "candidate", "change", "limit", "verdict"]


def _num(value: float, spec: str) -> str:
    return "-" if pd.isna(value) else format(value, spec)


def _mb(value: float) -> str:
    return _num(value / BYTES_PER_MB if not pd.isna(value) else value, ".1f")


def _times(value: float) -> str:
    return "-" if pd.isna(value) else f"x{value:.2f}"


def _mean_sd(mean: float, sd: float) -> str:
    return _num(mean, ".2f") if pd.isna(sd) else f"{mean:.2f} ± {sd:.2f}"


def _judged(value: float, limit: float) -> str:
    if pd.isna(value):
        return "n/a"
    return "FAIL" if value > limit + _EPS else "ok"


def group_label(r: pd.Series | Mapping) -> str:
    """The heading of one group: what was compared, and over how many seeds on each side."""
    return f"{_label(r)}, seeds {r['n_base']} vs {r['n_cand']}"


def display_rows(comparison: Comparison) -> list[tuple[str, list[list[str]]]]:
    """Per matched group, its label and one row per measure (MEASURE_HEADER): shared by terminal and markdown.

    Long format (a row per measure, not a column) so the terminal table stays legible in an 80-column CI log.
    """
    t = comparison.thresholds
    groups = []
    for _, r in comparison.table.iterrows():
        acc_change = r["acc_cand"] - r["acc_base"]
        rows = [[
            "test acc %", _mean_sd(r["acc_base"], r["acc_sd_base"]), _mean_sd(r["acc_cand"], r["acc_sd_cand"]),
            _num(acc_change, "+.2f"),
            f">= {-r['acc_allowed']:.2f}", _judged(r["acc_drop"], r["acc_allowed"]),
        ], [
            "s/epoch", _num(r["time_base"], ".4g"), _num(r["time_cand"], ".4g"), _times(r["slowdown"]),
            f"<= x{t.max_slowdown:g}", _judged(r["slowdown"], t.max_slowdown),
        ], [
            "samples/s", _num(r["samples_base"], ".1f"), _num(r["samples_cand"], ".1f"),
            _times(r["samples_ratio"]), "-", "-",
        ], [
            f"peak {'CUDA' if r['memory_kind'] == 'CUDA allocated' else 'RSS'} MB", _mb(r["memory_base"]),
            _mb(r["memory_cand"]), _times(r["memory_growth"]), f"<= x{t.max_memory_growth:g}",
            _judged(r["memory_growth"], t.max_memory_growth),
        ]]
        if not (pd.isna(r["saved_base"]) and pd.isna(r["saved_cand"])):
            rows.append(["saved act. MB", _mb(r["saved_base"]), _mb(r["saved_cand"]), _times(r["saved_growth"]),
                         f"<= x{t.max_memory_growth:g}", _judged(r["saved_growth"], t.max_memory_growth)])
        groups.append((group_label(r), rows))
    return groups


def legend(t: Thresholds) -> str:
    """What the tables show and the rules they were judged by, in one paragraph."""
    return (f"Ok runs only. Test accuracy: mean ± sd over seeds; change = candidate - baseline in points; fails "
            f"below -(max_accuracy_drop {t.max_accuracy_drop:g} + {SPREAD_K:g} x pooled se of the seeds), the se "
            f"term being 0 for a side with one seed. s/epoch, samples/s, memory: medians over seeds; change = "
            f"candidate / baseline. Peak memory is CUDA allocated when both sides have it, else RSS; "
            f"MB = 2^20 bytes.")


def verdict_lines(comparison: Comparison) -> list[str]:
    """The closing lines: PASS with how much was compared, or FAIL and one line per crossed threshold."""
    n = len(comparison.table)
    if not comparison.failed:
        return [f"PASS: {n} group(s) compared, no threshold crossed"]
    groups = sum(1 for checks in comparison.table["failed_checks"] if checks)
    return [f"FAIL: {groups} of {n} group(s) crossed a threshold", *comparison.failures]


def other_lines(comparison: Comparison) -> list[str]:
    """Groups on one side only (listed, not judged) and notes, one line each."""
    return ([f"only in baseline (not compared): {g}" for g in comparison.only_baseline]
            + [f"only in candidate (not compared): {g}" for g in comparison.only_candidate] + comparison.notes)


def rich_tables(comparison: Comparison) -> list[Table]:
    """One small table per matched group (fits an 80-column log); FAIL cells in red, the legend under the last."""
    from rich.markup import escape
    from rich.table import Table

    groups = display_rows(comparison)
    tables = []
    for index, (label, rows) in enumerate(groups):
        caption = legend(comparison.thresholds) if index == len(groups) - 1 else None
        table = Table(title=escape(label), caption=caption, title_justify="left", caption_justify="left")
        for name in MEASURE_HEADER:
            table.add_column(name, justify="left" if name in ("measure", "limit", "verdict") else "right")
        for row in rows:
            cells = [escape(c) for c in row]
            cells[-1] = {"FAIL": "[bold red]FAIL[/]", "ok": "[green]ok[/]"}.get(row[-1], cells[-1])
            table.add_row(*cells)
        tables.append(table)
    return tables


def markdown(comparison: Comparison, baseline: str = "baseline", candidate: str = "candidate") -> str:
    """The whole result as markdown for a CI log or a pull-request comment: verdict, table, notes."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    header = ["group", *MEASURE_HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, rows in display_rows(comparison):
        for i, row in enumerate(rows):
            verdict = "**FAIL**" if row[-1] == "FAIL" else row[-1]
            lines.append("| " + " | ".join(map(cell, [label if i == 0 else "", *row[:-1], verdict])) + " |")
    verdict = verdict_lines(comparison)
    parts = ["## noprop-bench compare", f"Baseline `{baseline}` vs candidate `{candidate}`: **{verdict[0]}**",
             "\n".join(lines), legend(comparison.thresholds)]
    if verdict[1:]:
        parts.append("\n".join(f"- {line}" for line in verdict[1:]))
    others = other_lines(comparison)
    if others:
        parts.append("Notes:\n\n" + "\n".join(f"- {line}" for line in others))
    return "\n\n".join(parts) + "\n"
