"""Names a reader can tell apart: what distinguishes a group's setting from the other settings of its dataset.

A config hash such as ``1f72be`` says that two groups differ, not how. The label of a setting is made of the config
keys (from the runs' parsed ``config``) and execution switches (their own columns) whose values differ between the
settings of one dataset, e.g. ``train_subset=3000, width=0.25`` against ``train_subset=none, width=0.5``; a dataset
with one setting is labelled by its embedding. Pure: DataFrames in, strings out.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from bench.formatting import setting_part, value_text
from bench.results.schema import SWITCH_COLUMNS
from bench.run.config import BOOKKEEPING_KEYS

MAX_KEYS = 3  # keys shown in a label; the rest are counted ("+2 more") and listed in summary.md's config table
# Config keys that say where or what was swept, never how a run trained: never part of a label.
_BOOKKEEPING = BOOKKEEPING_KEYS | {"dataset"}
# Keys a reader looks for first; other differing config keys follow alphabetically, then the switches.
_FIRST = ("embedding", "epochs", "train_subset", "width", "T", "batch_size", "lr", "embed_dim", "order",
          "test_subset", "eval_repeats")
SETTING = ["embedding", "config_hash", *SWITCH_COLUMNS]  # a group without its dataset and method
# What the report averages over seeds: runs of the same dataset, method (and version of its code) and setting (never
# across configs or switches).
GROUP = ["dataset", "method", "method_version", *SETTING]
LABELS = ["variant", "setting"]  # functions of the group key, carried along for legends and tables


def switch_text(row: Mapping[str, object], names: tuple[str, ...] = SWITCH_COLUMNS) -> str:
    """The recorded switches of a group, ``precision=fp32, channels_last=true``; "" when none was recorded."""
    return ", ".join(f"{name}={row[name]}" for name in names if str(row.get(name, "") or ""))


def config_text(key: Mapping[str, object]) -> str:
    """A group's config and recorded switches: ``config 1f72bee20605, precision=fp32, channels_last=true``."""
    switches = switch_text(key)
    return f"config {key['config_hash'] or '?'}" + (f", {switches}" if switches else "")


def describe(key: Mapping[str, object]) -> str:
    """A group in a warning: by its label where it has one (``cifar10 noprop-dt (lr=0.003)``), else
    ``cifar10 noprop-dt one-hot (config 1f72bee20605, precision=fp32)``."""
    if key.get("variant"):
        return f"{key['dataset']} {key['variant']}"
    return f"{key['dataset']} {key['method']} {key['embedding']} ({config_text(key)})"


def whole_text(value: object) -> str:
    """A seed or a count as a whole number; ``?`` when missing."""
    return "?" if pd.isna(value) else str(int(value))


def setting_labels(runs: pd.DataFrame) -> pd.Series:
    """Per run (same index), the label of its setting among the settings of its dataset.

    ``runs`` has the group key columns as text (missing = ""), as ``aggregate.with_keys`` makes them, and the
    parsed ``config`` that ``bench.report.load`` adds.
    """
    labels = pd.Series("", index=runs.index, dtype=str)  # text in every pandas: 3.x + pyarrow cannot add object to str
    for _, rows in runs.groupby("dataset", sort=False):
        settings = rows.drop_duplicates(SETTING)
        values = {_key(r): _setting(r) for _, r in settings.iterrows()}
        named = _label_settings(values, {_key(r): r["embedding"] for _, r in settings.iterrows()})
        labels.loc[rows.index] = [named[_key(r)] for _, r in rows.iterrows()]
    return labels


def _key(row: pd.Series) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in SETTING)


def _setting(row: pd.Series) -> dict[str, str]:
    """Everything that defines how a run trained: its config (less bookkeeping) and its switches."""
    config = row.get("config")
    config = config if isinstance(config, dict) else {}
    values = {k: value_text(v) for k, v in config.items() if k not in _BOOKKEEPING and k not in SWITCH_COLUMNS}
    if not config:  # unreadable: its hash is all that tells it apart
        values["config_hash"] = str(row["config_hash"])
    values["embedding"] = str(row["embedding"]) or "none"
    values.update({name: str(row[name]) or "none" for name in SWITCH_COLUMNS})
    return values


def differing_keys(settings: list[dict[str, str]]) -> list[str]:
    """The keys whose values are not the same in all settings, in reading order."""
    keys = {k for s in settings for k in s}
    differ = {k for k in keys if len({s.get(k, "none") for s in settings}) > 1}
    first = [k for k in _FIRST if k in differ]
    switches = [k for k in SWITCH_COLUMNS if k in differ]
    rest = sorted(differ - set(first) - set(switches))
    return [*first, *rest, *switches]


def _label_settings(values: dict[tuple[str, ...], dict[str, str]], embeddings: dict[tuple[str, ...], str]
                    ) -> dict[tuple[str, ...], str]:
    """One label per distinct setting: groups whose configs hash apart but hold the same values (each method hashes
    only the keys it reads) share theirs."""
    frozen = {key: tuple(sorted(setting.items())) for key, setting in values.items()}
    distinct = list(dict.fromkeys(frozen.values()))
    if len(distinct) == 1:
        return {key: embeddings[key] or "one setting" for key in values}
    keys = differing_keys([dict(setting) for setting in distinct])
    label = {setting: _parts(dict(setting), keys) for setting in distinct}
    counts = pd.Series(list(label.values())).value_counts()
    first_hash = {setting: key[1][:6] for key, setting in reversed(frozen.items())}
    for setting, text in label.items():  # same visible keys (or no readable config): the hash tells them apart
        if counts[text] > 1:
            label[setting] = f"{text}, config {first_hash[setting]}" if text else f"config {first_hash[setting]}"
    return {key: label[setting] for key, setting in frozen.items()}


def _part(setting: dict[str, str], key: str) -> str:
    """One key of a label: ``lr=0.003``; the embedding by its value; an unreadable config by its hash prefix."""
    value = setting.get(key, "none")
    if key == "config_hash":
        return f"config {value[:6]}" if value != "none" else ""
    return setting_part(key, value)


def _parts(setting: dict[str, str], keys: list[str]) -> str:
    parts = [part for part in (_part(setting, k) for k in keys) if part]
    if len(parts) > MAX_KEYS:
        parts = [*parts[:MAX_KEYS], f"+{len(parts) - MAX_KEYS} more"]
    return ", ".join(parts)
