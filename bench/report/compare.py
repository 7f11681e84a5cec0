"""The CI regression gate behind ``noprop-bench compare``: do a candidate's runs still match a baseline's?

Both sides are run rows (with their epochs, for the median epoch time of older rows). Only rows with status ``ok``
count. Runs are grouped and their seeds averaged exactly as in ``report`` (``bench.report.aggregate``): a group is
(dataset, method, embedding, config_hash, *SWITCH_COLUMNS), and a seed run more than once counts once. Groups are
paired on that key, less the switches named in ``across`` (so a run with ``channels_last`` off can be paired with
one with it on, on purpose). A group on one side only is listed and not judged. Then:

- accuracy: mean of ``test_acc`` (%) over seeds, and its sample sd (ddof=1). The candidate fails when
  ``baseline_mean - candidate_mean > max_accuracy_drop + SPREAD_K * pooled_se`` with
  ``pooled_se = sqrt(sd_b**2 / n_b + sd_c**2 / n_c)`` and ``SPREAD_K = 2``. A side with one seed has no sd and adds
  0 to ``pooled_se``, so with one seed on each side only ``max_accuracy_drop`` is allowed. Seeds that
  disagree with each other widen the allowance; an identical rerun never fails.
- whether the accuracy change is real (shown, never judged): candidate - baseline with its 95 % t interval, paired
  by seed where the sides share two or more seeds (else Welch's), *within noise* when the interval holds 0, and the
  seeds a t test would need to resolve it at 80 % power (``bench.report.uncertainty``, which the report uses too).
- time: each run's median epoch time (``epoch_time_median_s``; a first epoch's warm-up does not inflate it), median
  over seeds (one slow seed on a busy machine does not decide). Where either side lacks it, ``time_per_epoch_s``
  (the mean epoch) is used on both sides, and a note says so. ``slowdown = candidate / baseline`` fails when above
  ``max_slowdown``. ``samples_per_s`` (median) is shown as a ratio and not judged, because it restates the time.
- memory: ``peak_cuda_allocated_bytes`` when both sides have it, else ``peak_rss_bytes`` (median over seeds).
  ``growth = candidate / baseline`` fails when above ``max_memory_growth``. ``peak_saved_activation_bytes`` is
  judged against the same threshold when both sides have it; it does not depend on timing, so it is a tight signal.

A value missing on one side leaves that check unjudged, and a note says so (except for saved activations, which
most runs do not record). When ``device_name`` differs between the sides a note says the timings are not
comparable, and they are still compared. Pure: DataFrames in, a ``Comparison`` out; the thresholds file is the only
thing read here (sides are read by ``bench.report.load``, tables made by ``bench.report.tables``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.formatting import mb
from bench.report import uncertainty
from bench.report.aggregate import GROUP, load_text, per_seed, shared_machine, with_epoch_medians, with_keys
from bench.report.labels import config_text, setting_labels
from bench.report.load import InputError, Loaded, parse_config
from bench.results.schema import SWITCH_COLUMNS

# compare pairs a candidate with the reference of the same group, whatever version of the method's code made each:
# a change of behaviour is what the gate is there to measure.
PAIRED = [k for k in GROUP if k != "method_version"]
SPREAD_K = 2.0  # how many pooled standard errors of seed spread an accuracy drop may add to max_accuracy_drop
EPS = 1e-9  # so a value exactly at its threshold passes despite floating-point noise


class CompareError(InputError):
    """The input cannot be compared (bad thresholds, nothing in common, an ambiguous pairing); exit code 2."""


# ----------------------------------------------------------------------------------------------- thresholds


class Thresholds(BaseModel):
    """How much worse the candidate may be. Accuracy in percentage points; time and memory as ratios."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accuracy_drop: float = Field(0.5, ge=0, strict=True, allow_inf_nan=False, description="percentage points")
    max_slowdown: float = Field(1.25, gt=0, strict=True, allow_inf_nan=False,
                                description="a ratio; 1.25 allows 25% more")
    max_memory_growth: float = Field(1.25, gt=0, strict=True, allow_inf_nan=False,
                                     description="a ratio; 1.25 allows 25% more")


THRESHOLD_KEYS: tuple[str, ...] = tuple(Thresholds.model_fields)


def read_thresholds(path: str | Path) -> dict[str, float]:
    """The threshold keys set in a YAML file. An unknown key is an error, so a typo cannot silently loosen the gate."""
    path = Path(path)
    where = f"thresholds file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CompareError(f"{where}: cannot read it ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise CompareError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CompareError(f"{where}: expected a mapping of keys ({', '.join(THRESHOLD_KEYS)}), "
                           f"found {type(data).__name__}")
    _validated(data, where)
    return {str(key): float(value) for key, value in data.items()}


def make_thresholds(*layers: Mapping[str, float | None]) -> Thresholds:
    """Defaults, then each layer in turn (a file, then the command line); a None value leaves the key as it was."""
    thresholds, values = Thresholds(), {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if v is not None})
        thresholds = _validated(values, "command line")
    return thresholds


def _validated(values: Mapping[str, Any], where: str) -> Thresholds:
    try:
        return Thresholds.model_validate(dict(values))
    except ValidationError as e:
        error = e.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "thresholds"
        if error["type"] == "extra_forbidden":
            raise CompareError(f"{where}: unknown key '{key}'; allowed keys: {', '.join(THRESHOLD_KEYS)}") from None
        info = Thresholds.model_fields.get(key)
        hint = f" ({info.description})" if info is not None and info.description else ""
        raise CompareError(f"{where}: {key}: {error['msg'].lower()}{hint}, got {error.get('input')!r}") from None


# --------------------------------------------------------------------------------------------- aggregation

# per-seed value name -> run column (through ``aggregate.per_seed``, the report's own per-seed step)
_VALUES = {"acc": ("test_acc", 1.0), "time": ("time_per_epoch_s", 1.0), "epoch": ("epoch_time_median_s", 1.0),
           "samples": ("samples_per_s", 1.0), "cuda": ("peak_cuda_allocated_bytes", 1.0),
           "rss": ("peak_rss_bytes", 1.0), "saved": ("peak_saved_activation_bytes", 1.0)}
SIDE_COLUMNS = ["n_seeds", "n_acc", "acc_mean", "acc_sd", "time_median", "epoch_median", "samples_median",
                "cuda_median", "rss_median", "saved_median", "devices", "shared", "label"]


def group_labels(*sides: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Each group of ok runs on either side by the label the report gives it (``labels.setting_labels``, over both
    sides): ``fashion-mnist/noprop-dt (lr=0.003)``."""
    frames = [with_keys(side) for side in sides]
    runs = pd.concat([f[f["status"] == "ok"] for f in frames], ignore_index=True)
    if runs.empty:
        return {}
    runs["config"] = runs["config_json"].map(parse_config).astype("object")
    runs["setting"] = setting_labels(runs)
    return {tuple(r[k] for k in PAIRED): f"{r['dataset']}/{r['method']} ({r['setting']})" for _, r in runs.iterrows()}


def summarize_side(runs: pd.DataFrame, labels: Mapping[tuple[str, ...], str] | None = None) -> pd.DataFrame:
    """One row per group of ok runs: its label (``labels``, else its config hash), seeds, accuracy mean and sd, and
    medians over seeds of time, median epoch time, throughput and memory (in bytes)."""
    runs = with_keys(runs)
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=[*PAIRED, *SIDE_COLUMNS])
    grouped = per_seed(ok, _VALUES, PAIRED).groupby(PAIRED, sort=True, dropna=False)
    out = grouped.agg(n_seeds=("seed", "size"), n_acc=("acc", "count"), acc_mean=("acc", "mean"),
                      acc_sd=("acc", "std"), time_median=("time", "median"), epoch_median=("epoch", "median"),
                      samples_median=("samples", "median"), cuda_median=("cuda", "median"),
                      rss_median=("rss", "median"), saved_median=("saved", "median")).reset_index()
    names = ok.groupby(PAIRED, sort=True, dropna=False)["device_name"].agg(
        lambda s: ", ".join(sorted({str(v) for v in s.dropna() if str(v)})))
    out["devices"] = out.set_index(PAIRED).index.map(names).to_numpy()
    out["shared"] = out.set_index(PAIRED).index.map(_shared_text(ok)).to_numpy()
    out["label"] = [(labels or {}).get(tuple(r[k] for k in PAIRED)) or _hash_label(r) for _, r in out.iterrows()]
    return out[[*PAIRED, *SIDE_COLUMNS]]


def _shared_text(ok: pd.DataFrame) -> pd.Series:
    """Per group, how loaded its machine was where some of its runs shared it with other work ("" otherwise)."""
    flags = shared_machine(ok)
    return ok.groupby(PAIRED, sort=True, dropna=False).apply(
        lambda rows: load_text(rows) if flags[rows.index].any() else "", include_groups=False)


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """Matched groups with every number and verdict (``table``), plus what could not be compared."""

    table: pd.DataFrame  # one row per matched group; columns COMPARISON_COLUMNS
    thresholds: Thresholds
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # ignored non-ok rows, device differences, unjudged checks
    across: tuple[str, ...] = ()

    @property
    def failures(self) -> list[str]:
        """One line per crossed threshold, naming the group, the measure and the threshold."""
        return [line for lines in self.table["failures"] for line in lines]

    @property
    def failed(self) -> bool:
        return bool(self.failures)


COMPARISON_COLUMNS = [
    "label", *PAIRED, "n_base", "n_cand", "acc_base", "acc_cand", "acc_sd_base", "acc_sd_cand", "acc_drop",
    "pooled_se", "acc_allowed", "time_measure", "time_base", "time_cand", "slowdown", "samples_base",
    "samples_cand", "samples_ratio", "memory_kind", "memory_base", "memory_cand", "memory_growth", "saved_base",
    "saved_cand", "saved_growth", "devices_base", "devices_cand", "failed_checks", "failures",
    "acc_change", "acc_change_low", "acc_change_high", "acc_pairing", "acc_within_noise", "acc_seeds_needed",
]


def compare(baseline: pd.DataFrame, candidate: pd.DataFrame, thresholds: Thresholds | None = None,
            across: Sequence[str] = ()) -> Comparison:
    """Judge every group present on both sides (see the module docstring for the rules).

    ``across``: switches (of SWITCH_COLUMNS) left out of the pairing key. Raises CompareError when no group is on
    both sides (a gate that compared nothing must not pass) or when a side holds two groups for one pairing key.
    """
    thresholds = thresholds or Thresholds()
    across = tuple(dict.fromkeys(across))
    unknown = [s for s in across if s not in SWITCH_COLUMNS]
    if unknown:
        raise CompareError(f"--across {unknown[0]}: not a switch; choose from {', '.join(SWITCH_COLUMNS)}")
    notes = [*_not_ok_notes(baseline, "baseline"), *_not_ok_notes(candidate, "candidate")]
    labels = group_labels(baseline, candidate)
    base, cand = summarize_side(baseline, labels), summarize_side(candidate, labels)
    key = [k for k in PAIRED if k not in across]
    for frame, side in ((base, "baseline"), (cand, "candidate")):
        _check_unique(frame, key, across, side)
    merged = base.merge(cand, on=key, how="outer", suffixes=("_b", "_c"), indicator=True)
    merged = _with_across_columns(merged, across)
    both = merged[merged["_merge"] == "both"]
    if both.empty:
        raise CompareError(_nothing_matched(base, cand, across))
    both = _with_seed_values(both, baseline, candidate, across)
    rows = [_judge(r, thresholds, notes) for _, r in both.iterrows()]
    return Comparison(table=pd.DataFrame(rows, columns=COMPARISON_COLUMNS), thresholds=thresholds,
                      only_baseline=_one_side(merged, "left_only", "_b"),
                      only_candidate=_one_side(merged, "right_only", "_c"), notes=notes, across=across)


def compare_sides(baseline: Loaded, candidate: Loaded, thresholds: Thresholds | None = None,
                  across: Sequence[str] = ()) -> Comparison:
    """``compare`` of two folders as ``load.read_side`` read them: older rows get their median epoch time from
    epochs.csv first, so both sides are judged on the same measure."""
    base, cand = (with_epoch_medians(side.runs, side.epochs) for side in (baseline, candidate))
    return compare(base, cand, thresholds, across=across)


def _one_side(merged: pd.DataFrame, which: str, suffix: str) -> list[str]:
    """The groups found on one side only (``which``: the merge indicator), with their number of seeds."""
    return [f"{_label(r)}, {_seeds(r['n_seeds' + suffix])}" for _, r in merged[merged["_merge"] == which].iterrows()]


def _check_unique(frame: pd.DataFrame, key: list[str], across: tuple[str, ...], side: str) -> None:
    """With ``across``, a side must hold one value of each such switch per pairing key, or pairs are ambiguous."""
    repeated = frame[frame.duplicated(key, keep=False)]
    if across and not repeated.empty:
        first = repeated.iloc[0]
        values = sorted(set(repeated[(repeated[key] == first[key]).all(axis=1)][across[0]]))
        raise CompareError(f"--across {', '.join(across)}: the {side} holds {first['dataset']}/{first['method']}/"
                           f"{first['embedding']} ({config_text(first)}) with {across[0]} "
                           f"{' and '.join(v or '?' for v in values)}; give each side one value of it")


def _with_across_columns(merged: pd.DataFrame, across: tuple[str, ...]) -> pd.DataFrame:
    """A switch paired across gets one column: its value, or ``base -> cand`` where the two sides differ."""
    for name in across:
        b, c = merged[f"{name}_b"].fillna(""), merged[f"{name}_c"].fillna("")
        merged[name] = [x if not y or x == y else (y if not x else f"{x} -> {y}") for x, y in zip(b, c, strict=True)]
    return merged


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


def crossed(value: float, limit: float) -> bool:
    """Above its limit (a missing value never is)."""
    return not pd.isna(value) and value > limit + EPS


class _Verdict:
    """What the checks of one group add up to: its table row, crossed checks and failure lines, and notes."""

    def __init__(self, label: str, notes: list[str]) -> None:
        self.label, self.notes = label, notes
        self.row: dict[str, Any] = {"label": label}
        self.checks: list[str] = []
        self.failures: list[str] = []

    def fail(self, check: str, line: str) -> None:
        self.checks.append(check)
        self.failures.append(f"{self.label}: {line}")


def _judge(r: pd.Series, t: Thresholds, notes: list[str]) -> dict:
    verdict = _Verdict(_label(r), notes)
    verdict.row.update({k: r[k] for k in PAIRED})
    verdict.row.update(n_base=int(r["n_seeds_b"]), n_cand=int(r["n_seeds_c"]), devices_base=r["devices_b"],
                       devices_cand=r["devices_c"])
    if r["devices_b"] != r["devices_c"]:
        notes.append(f"{verdict.label}: device differs (baseline: {r['devices_b'] or '?'}; candidate: "
                     f"{r['devices_c'] or '?'}), so the timings are not comparable; compared anyway")
    for side, suffix in (("baseline", "_b"), ("candidate", "_c")):
        if r[f"shared{suffix}"]:
            notes.append(f"{verdict.label}: the {side} shared its machine with other work ({r[f'shared{suffix}']}): "
                         "its times are suspect")
    _judge_accuracy(r, t, verdict)
    _judge_noise(r, verdict)
    _judge_time(r, t, verdict)
    _judge_memory(r, t, verdict)
    verdict.row.update(failed_checks=verdict.checks, failures=verdict.failures)
    return verdict.row


def _judge_accuracy(r: pd.Series, t: Thresholds, v: _Verdict) -> None:
    pooled_se, allowed = accuracy_allowance(t.max_accuracy_drop, r["acc_sd_b"], int(r["n_acc_b"]), r["acc_sd_c"],
                                            int(r["n_acc_c"]))
    drop = r["acc_mean_b"] - r["acc_mean_c"]
    v.row.update(acc_base=r["acc_mean_b"], acc_cand=r["acc_mean_c"], acc_sd_base=r["acc_sd_b"],
                 acc_sd_cand=r["acc_sd_c"], acc_drop=drop, pooled_se=pooled_se, acc_allowed=allowed)
    if pd.isna(drop):
        v.notes.append(f"{v.label}: accuracy not judged (no test_acc on one side)")
    elif crossed(drop, allowed):
        v.fail("accuracy", f"test accuracy {r['acc_mean_b']:.2f}% -> {r['acc_mean_c']:.2f}%, a drop of "
                           f"{drop:.2f} points > {allowed:.2f} allowed (max_accuracy_drop {t.max_accuracy_drop:g} + "
                           f"{SPREAD_K:g} x pooled se {pooled_se:.2f})")


def _seed_values(runs: pd.DataFrame) -> dict[tuple[str, ...], dict[float, float]]:
    """Per group of ok runs, its test accuracy by seed (averaged over a seed's runs; a missing seed left out)."""
    runs = with_keys(runs)
    seeds = per_seed(runs[runs["status"] == "ok"], {"acc": ("test_acc", 1.0)}, PAIRED).dropna(subset=["seed"])
    return {tuple(key): dict(zip(rows["seed"], rows["acc"], strict=True))
            for key, rows in seeds.groupby(PAIRED, sort=False, dropna=False)}


def _with_seed_values(both: pd.DataFrame, baseline: pd.DataFrame, candidate: pd.DataFrame,
                      across: tuple[str, ...]) -> pd.DataFrame:
    """Each matched pair with ``acc_seeds_b`` and ``acc_seeds_c``: its two groups' accuracy by seed, for the
    interval on the change (a switch paired across is looked up by each side's own value)."""
    found = {"_b": _seed_values(baseline), "_c": _seed_values(candidate)}
    both = both.copy()
    for suffix, values in found.items():
        keys = [tuple(r[f"{k}{suffix}"] if k in across else r[k] for k in PAIRED) for _, r in both.iterrows()]
        both[f"acc_seeds{suffix}"] = [values.get(key, {}) for key in keys]
    return both


def _judge_noise(r: pd.Series, v: _Verdict) -> None:
    """The change of test accuracy with its interval (``bench.report.uncertainty``: paired by seed where the sides
    share two or more), whether it is within noise, and the seeds that would resolve it; never a failure."""
    change = uncertainty.difference(r["acc_seeds_c"], r["acc_seeds_b"])
    if change is None:
        v.row.update(acc_change=r["acc_mean_c"] - r["acc_mean_b"], acc_change_low=math.nan,
                     acc_change_high=math.nan, acc_pairing="", acc_within_noise=None, acc_seeds_needed=None)
        return
    v.row.update(acc_change=change.interval.estimate, acc_change_low=change.interval.low,
                 acc_change_high=change.interval.high,
                 acc_pairing=f"paired, {len(change.seeds)} seeds" if change.paired else "Welch",
                 acc_within_noise=change.within_noise, acc_seeds_needed=change.seeds_needed)


def _judge_time(r: pd.Series, t: Thresholds, v: _Verdict) -> None:
    """On the median epoch time where both sides have it, else on time_per_epoch_s (with a note)."""
    lacking = [side for side, s in (("baseline", "_b"), ("candidate", "_c")) if pd.isna(r[f"epoch_median{s}"])]
    key, measure, what = ("time_median", "mean", "time per epoch") if lacking else \
        ("epoch_median", "median", "median epoch time")
    slowdown = ratio(r[f"{key}_b"], r[f"{key}_c"])
    v.row.update(time_measure=measure, time_base=r[f"{key}_b"], time_cand=r[f"{key}_c"], slowdown=slowdown,
                 samples_base=r["samples_median_b"], samples_cand=r["samples_median_c"],
                 samples_ratio=ratio(r["samples_median_b"], r["samples_median_c"]))
    if pd.isna(slowdown):
        v.notes.append(f"{v.label}: time not judged (no time_per_epoch_s on one side)")
        return
    if lacking:
        v.notes.append(f"{v.label}: time judged on time_per_epoch_s (the mean epoch, a first epoch's warm-up "
                       f"included): the {' and the '.join(lacking)} has no median epoch time")
    if crossed(slowdown, t.max_slowdown):
        shared = [f"the {side} ran at a {r[f'shared{s}']}" for side, s in (("baseline", "_b"), ("candidate", "_c"))
                  if r[f"shared{s}"]]
        suspect = f"; suspect: {' and '.join(shared)}, so other work shared the cores" if shared else ""
        v.fail("time", f"{what} {r[f'{key}_b']:.3g} s -> {r[f'{key}_c']:.3g} s, x{slowdown:.2f} > "
                       f"x{t.max_slowdown:g} (max_slowdown){suspect}")


def _judge_memory(r: pd.Series, t: Thresholds, v: _Verdict) -> None:
    """Peak memory (CUDA allocated when both sides measured it, else RSS), then saved activations where both
    sides have them (deterministic, so always judged then)."""
    on_cuda = not (pd.isna(r["cuda_median_b"]) or pd.isna(r["cuda_median_c"]))
    kind, key = ("CUDA allocated", "cuda_median") if on_cuda else ("RSS", "rss_median")
    growth = ratio(r[f"{key}_b"], r[f"{key}_c"])
    v.row.update(memory_kind=kind, memory_base=r[f"{key}_b"], memory_cand=r[f"{key}_c"], memory_growth=growth)
    if pd.isna(growth):
        v.notes.append(f"{v.label}: peak memory not judged (no peak_rss_bytes on one side)")
    elif crossed(growth, t.max_memory_growth):
        v.fail("memory", f"peak {kind} memory {mb(r[f'{key}_b'])} -> {mb(r[f'{key}_c'])} MB, "
                         f"x{growth:.2f} > x{t.max_memory_growth:g} (max_memory_growth)")
    saved = ratio(r["saved_median_b"], r["saved_median_c"])
    v.row.update(saved_base=r["saved_median_b"], saved_cand=r["saved_median_c"], saved_growth=saved)
    if crossed(saved, t.max_memory_growth):
        v.fail("saved activations", f"peak saved activations {mb(r['saved_median_b'])} -> "
                                    f"{mb(r['saved_median_c'])} MB, x{saved:.2f} > x{t.max_memory_growth:g} "
                                    "(max_memory_growth)")


def _hash_label(r: pd.Series | Mapping) -> str:
    """A group by its config hash, where its runs hold no readable config to label it by."""
    return f"{r['dataset']}/{r['method']}/{r['embedding']} ({config_text(r)})"


def _label(r: pd.Series | Mapping) -> str:
    """A group's label; a pair's, where its two sides differ in a switch paired --across: ``base -> cand``."""
    if "label" in r:
        return str(r["label"])
    base, cand = (r.get(f"label{s}") for s in ("_b", "_c"))
    base, cand = (v if isinstance(v, str) else "" for v in (base, cand))
    if not (base and cand) or base == cand:
        return base or cand
    (head, _, setting), (other, _, then) = base.partition(" ("), cand.partition(" (")
    return f"{head} ({setting.removesuffix(')')} -> {then}" if head == other else f"{base} -> {cand}"


def _seeds(n: object) -> str:
    return f"{int(n)} seed" + ("" if int(n) == 1 else "s")


def _not_ok_notes(runs: pd.DataFrame, side: str) -> list[str]:
    status = runs["status"].astype("object").where(runs["status"].notna(), "unknown")
    bad = status[status != "ok"]
    if bad.empty:
        return []
    counts = ", ".join(f"{s}: {n}" for s, n in bad.value_counts().sort_index().items())
    return [f"{side}: {len(bad)} run(s) not ok ignored ({counts})"]


def _nothing_matched(base: pd.DataFrame, cand: pd.DataFrame, across: tuple[str, ...]) -> str:
    if base.empty or cand.empty:
        sides = " and ".join(s for s, frame in (("baseline", base), ("candidate", cand)) if frame.empty)
        return f"nothing to compare: the {sides} hold(s) no runs with status ok"

    def listed(frame: pd.DataFrame) -> str:
        labels = [_label(r) for _, r in frame.iterrows()]
        return "; ".join(labels[:3]) + (f"; and {len(labels) - 3} more" if len(labels) > 3 else "")

    key = [k for k in PAIRED if k not in across]
    message = (f"nothing to compare: no ({', '.join(key)}) group of ok runs is on both sides "
               f"(baseline: {listed(base)}; candidate: {listed(cand)})")
    return message + _hint(base, cand, across)


def _hint(base: pd.DataFrame, cand: pd.DataFrame, across: tuple[str, ...]) -> str:
    """Why nothing paired: the same config under other switches (then --across helps), or another config."""
    config = ["dataset", "method", "embedding", "config_hash"]
    same = base[[*config, *SWITCH_COLUMNS]].merge(cand[[*config, *SWITCH_COLUMNS]], on=config, suffixes=("_b", "_c"))
    differ = [s for s in SWITCH_COLUMNS if s not in across and (same[f"{s}_b"] != same[f"{s}_c"]).any()]
    if differ:
        flags = " ".join(f"--across {s}" for s in differ)
        return (f"; the same configs exist with a different {' and '.join(differ)}: pass {flags} to pair runs "
                "that differ only in that switch on purpose")
    if not base[config[:3]].merge(cand[config[:3]]).empty:
        return ("; the same dataset, method and embedding exist with a different config_hash: the configs "
                "differ, so rerun the candidate with the baseline's config")
    return ""
