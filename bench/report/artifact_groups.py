"""The groups of ok runs that saved artifacts, for the per-method figures (embeddings, confusion, samples): which
runs' arrays a figure draws, what it is titled and what its file is called.

Any method's runs count, as long as their artifacts hold the arrays a figure needs; nothing here knows a method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.report.labels import GROUP, SETTING, whole_text

if TYPE_CHECKING:
    from bench.report.aggregate import Report


@dataclass
class ArtifactGroup:
    """One group's runs whose artifacts hold what a figure needs, lowest seed first."""

    title: str  # "mnist, noprop-dt (one-hot)": the dataset and the group's variant
    stem: tuple[str, ...]  # dataset, method, embedding and what tells the group apart: the end of its file names
    embedding: str
    seeds: list[str]
    arrays: list[dict[str, np.ndarray]]

    def file(self, kind: str) -> str:
        """The file stem of this group's figure of ``kind``: ``confusion_mnist_backprop_one-hot``."""
        return "_".join("".join(c if c.isalnum() or c in "-." else "-" for c in p) for p in (kind, *self.stem) if p)


def artifact_groups(report: Report, needs: Sequence[str]) -> list[ArtifactGroup]:
    """Per group (in group order), its runs whose artifacts hold every array named in ``needs``; groups with
    none are left out."""
    runs = report.runs.sort_values([*GROUP, "seed"])
    suffixes = file_suffixes(runs)
    found = []
    for key, group in runs.groupby(GROUP, sort=True):
        keyed = [(row, report.artifacts.get((str(row.results_dir), str(row.run_id)))) for row in group.itertuples()]
        usable = [(row, arrays) for row, arrays in keyed if arrays is not None and all(n in arrays for n in needs)]
        if usable:
            named = dict(zip(GROUP, key, strict=True))
            dataset, method, embedding = named["dataset"], named["method"], named["embedding"]
            found.append(ArtifactGroup(
                title=f"{dataset}, {group['variant'].iloc[0]}", stem=(dataset, method, embedding, suffixes[key]),
                embedding=embedding, seeds=[whole_text(row.seed) for row, _ in usable],
                arrays=[arrays for _, arrays in usable]))
    return found


def file_suffixes(runs: pd.DataFrame) -> dict[tuple[str, ...], str]:
    """Per group, what its artifact figures' file names add to dataset, method and embedding: nothing when it is the
    only group of those, else its hash prefix where configs differ and the switches where one config has several."""
    suffixes = {}
    groups = runs.drop_duplicates(GROUP)
    for _, same in groups.groupby(["dataset", "method", "embedding"]):
        switches = [k for k in SETTING[2:] if (same.groupby("config_hash")[k].nunique() > 1).any()]
        for _, row in same.iterrows():
            parts = [row["config_hash"][:6]] if same["config_hash"].nunique() > 1 else []
            if same["method_version"].nunique() > 1:
                parts.append(f"v{row['method_version'] or '-unrecorded'}")
            suffixes[tuple(row[GROUP])] = "_".join([*parts, *(f"{k}-{row[k]}" for k in switches)])
    return suffixes
