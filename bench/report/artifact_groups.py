"""The groups of ok runs that saved artifacts, for the per-method figures (embeddings, confusion, samples): which
runs' arrays a figure draws, what it is titled and what its file is called.

Any method's runs count, as long as their artifacts hold the arrays a figure needs; nothing here knows a method.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.report.cells import method_cell, setting_cell
from bench.report.labels import GROUP, whole_text

if TYPE_CHECKING:
    from bench.report.aggregate import Report


@dataclass
class ArtifactGroup:
    """One group's runs whose artifacts hold what a figure needs, lowest seed first."""

    title: str  # "mnist, noprop-dt (one-hot)": the dataset and the group's variant
    stem: tuple[str, ...]  # dataset, method and setting, as the group's label names them: the end of its file names
    embedding: str
    seeds: list[str]
    arrays: list[dict[str, np.ndarray]]
    classes: tuple[str, ...] = ()  # the dataset's class names by label (none for a dataset this harness lacks)

    def file(self, kind: str) -> str:
        """The file stem of this group's figure of ``kind``, its label made a file name:
        ``confusion_mnist_backprop_one-hot``, ``confusion_mnist_backprop_lr-0.003-order-paper``."""
        return "_".join(_slug(p) for p in (kind, *self.stem) if p)


def _slug(text: str) -> str:
    """Letters, digits, ``.``, ``_`` and ``-``; every run of anything else one ``-``."""
    return re.sub(r"[^0-9A-Za-z._]+", "-", text).strip("-")


def artifact_groups(report: Report, needs: Sequence[str]) -> list[ArtifactGroup]:
    """Per group (in group order), its runs whose artifacts hold every array named in ``needs``; groups with
    none are left out."""
    runs = report.runs.sort_values([*GROUP, "seed"])
    found = []
    for _, group in runs.groupby(GROUP, sort=True):
        keyed = [(row, report.artifacts.get((str(row.results_dir), str(row.run_id)))) for row in group.itertuples()]
        usable = [(row, arrays) for row, arrays in keyed if arrays is not None and all(n in arrays for n in needs)]
        if usable:
            first = group.iloc[0]
            dataset, embedding = first["dataset"], first["embedding"]
            found.append(ArtifactGroup(
                title=f"{dataset}, {first['variant']}", stem=(dataset, method_cell(first), setting_cell(first)),
                embedding=embedding, seeds=[whole_text(row.seed) for row, _ in usable],
                arrays=[arrays for _, arrays in usable], classes=class_names(dataset)))
    return found


def class_names(dataset: str) -> tuple[str, ...]:
    """The dataset's class names by label (``bench.run.data``); none for a dataset unknown here."""
    from bench.run.data import DATASETS

    spec = DATASETS.get(dataset)
    return spec.classes if spec else ()
