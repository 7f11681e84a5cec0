"""Building a method for a run: a name in a config -> a model that trains itself, behind
``noprop.core.method.Method``.

Every method is built from its declared settings filled from the same RunConfig (``config.method_settings``), which
is what keeps NoProp-DT and its backprop baseline matched (blocks, embedding, classifier, optimiser, schedule). What
methods there are, and their keys, is the registry's (``bench.run.registry``); nothing here names one.
"""

from __future__ import annotations

import json
from typing import Any, cast

import torch

from bench.results.schema import RUN_COLUMNS
from bench.run.batching import normalise
from bench.run.config import REGISTRY, RunConfig, method_settings
from bench.run.data import Splits
from noprop.core.method import Method
from noprop.core.settings import CommonSettings

PROTOTYPE_IMAGES_PER_CLASS = 500  # training images per class offered to the prototype (medoid) initialisation


def settings_for(config: RunConfig, splits: Splits, batches_per_pass: int, method: str) -> CommonSettings:
    """The settings ``method`` gets for this config and dataset (only the run length, which sets the lr schedule's
    end, depends on the method besides its own keys)."""
    spec = splits.spec
    return method_settings(config, method, in_channels=spec.channels, image_size=spec.size,
                           num_classes=spec.num_classes, total_steps=config.epochs_for(method) * batches_per_pass)


def build(name: str, config: RunConfig, splits: Splits, batches_per_pass: int, seed: int) -> Method:
    """Build a method on the training device; prototype embeddings are initialised from training images."""
    settings = settings_for(config, splits, batches_per_pass, name)
    prototype_data = None
    if config.embedding == "prototype":
        n = min(splits.train_y.numel(), PROTOTYPE_IMAGES_PER_CLASS * splits.spec.num_classes)
        prototype_data = (normalise(splits.train_x[:n], splits.mean, splits.std), splits.train_y[:n])
    torch.manual_seed(seed)
    model = REGISTRY.spec(name).factory(settings, prototype_data=prototype_data, generator_seed=seed)
    return cast(Method, model.to(splits.train_x.device))


def declared_baseline(method: str) -> str | None:
    """The baseline ``method`` declares it is matched to (None for none, or a method not installed here)."""
    return REGISTRY.baseline_of(method)


def recorded_columns(model: Method) -> dict[str, Any]:
    """What ``model`` records beyond the common columns: into the schema's column where there is one (``order``,
    ``ode_steps``, ...), the rest as JSON in ``method_columns``."""
    recorded = model.recorded_settings()
    own = {k: v for k, v in recorded.items() if k in RUN_COLUMNS}
    rest = {k: v for k, v in recorded.items() if k not in RUN_COLUMNS}
    return {**own, "method_columns": json.dumps(rest, sort_keys=True) if rest else ""}
