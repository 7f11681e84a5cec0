"""Method registry: a name in a config -> a model that trains itself; and the protocol the runner relies on.

Both methods are built from one ``MethodSettings`` made from the same RunConfig, which is what keeps
NoProp-DT and its backprop baseline matched (blocks, embedding, classifier, optimiser, schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import torch

from baselines.backprop import BackpropBaseline
from bench.run.config import METHOD_NAMES, RunConfig
from bench.run.data import Splits
from noprop.dt import NoPropDT
from noprop.settings import MethodSettings

Batch = tuple[torch.Tensor, torch.Tensor]


class Method(Protocol):
    """What the runner may call; a method never opens a file or reads the clock."""

    def fit_epoch(self, batches: Callable[[], Iterable[Batch]]) -> dict[str, float]: ...

    def predict(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def label_embedding(self) -> torch.Tensor: ...

    def training_state(self) -> dict: ...

    def load_training_state(self, state: dict) -> None: ...


_FACTORIES: dict[str, type] = {"noprop-dt": NoPropDT, "backprop": BackpropBaseline}
assert set(_FACTORIES) == set(METHOD_NAMES)


def settings_for(config: RunConfig, splits: Splits, batches_per_pass: int) -> MethodSettings:
    """The one MethodSettings both methods get for this config and dataset."""
    spec = splits.spec
    return MethodSettings(
        in_channels=spec.channels, image_size=spec.size, num_classes=spec.num_classes,
        T=config.T, embedding=config.embedding, embed_dim=config.embed_dim, width=config.width,
        dropout=config.dropout, eta=config.eta, schedule=config.schedule, lr=config.lr,
        weight_decay=config.weight_decay, grad_clip=config.grad_clip, warmup_steps=config.warmup_steps,
        lr_decay=config.lr_decay, total_steps=config.epochs * batches_per_pass, order=config.order,
        inference=config.inference, readout=config.readout,
    )


def build(name: str, config: RunConfig, splits: Splits, batches_per_pass: int, seed: int) -> torch.nn.Module:
    """Build a method on the training device; prototype embeddings are initialised from training images."""
    settings = settings_for(config, splits, batches_per_pass)
    prototype_data = None
    if config.embedding == "prototype":
        from bench.run.batching import normalise

        n = min(splits.train_y.numel(), 500 * splits.spec.num_classes)
        prototype_data = (normalise(splits.train_x[:n], splits.mean, splits.std), splits.train_y[:n])
    torch.manual_seed(seed)
    model = _FACTORIES[name](settings, prototype_data=prototype_data, generator_seed=seed)
    return model.to(splits.train_x.device)
