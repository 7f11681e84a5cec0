"""Method registry: a name in a config -> a model that trains itself, behind ``noprop.core.method.Method``.

Every method is built from one ``MethodSettings`` made from the same RunConfig, which is what keeps NoProp-DT and
its backprop baseline matched (blocks, embedding, classifier, optimiser, schedule). A new method is one module
behind that interface plus one line here.
"""

from __future__ import annotations

from typing import cast

import torch

from baselines.backprop import BackpropBaseline
from baselines.cnn import CNNReference
from bench.run.batching import normalise
from bench.run.config import METHOD_NAMES, RunConfig
from bench.run.data import Splits
from noprop.continuous.ct import NoPropCT
from noprop.continuous.fm import NoPropFM
from noprop.core.method import Method
from noprop.core.settings import MethodSettings
from noprop.dt.model import NoPropDT

_FACTORIES: dict[str, type[torch.nn.Module]] = {
    "noprop-dt": NoPropDT, "backprop": BackpropBaseline, "cnn": CNNReference, "noprop-ct": NoPropCT,
    "noprop-fm": NoPropFM}
assert set(_FACTORIES) == set(METHOD_NAMES)
PROTOTYPE_IMAGES_PER_CLASS = 500  # training images per class offered to the prototype (medoid) initialisation
# method -> the method it is matched against (the same MethodSettings), for the report's "vs baseline" ratios
_BASELINES = {"noprop-dt": "backprop", "noprop-ct": "backprop", "noprop-fm": "backprop"}


def declared_baseline(method: str) -> str | None:
    """The matched baseline a method declares, which the report divides its time and memory by; None for a method
    that declares none (backprop is the baseline, cnn a reference) or a name not registered."""
    return _BASELINES.get(method)


def settings_for(config: RunConfig, splits: Splits, batches_per_pass: int, method: str
                 ) -> MethodSettings:
    """The one MethodSettings every method gets for this config and dataset (only the run length, which sets the
    lr schedule's end, depends on the method)."""
    spec = splits.spec
    return MethodSettings(
        in_channels=spec.channels, image_size=spec.size, num_classes=spec.num_classes,
        T=config.T, embedding=config.embedding, embed_dim=config.embed_dim, width=config.width,
        dropout=config.dropout, eta=config.eta, schedule=config.schedule, lr=config.lr,
        weight_decay=config.weight_decay, grad_clip=config.grad_clip, warmup_steps=config.warmup_steps,
        lr_decay=config.lr_decay, total_steps=config.epochs_for(method) * batches_per_pass, order=config.order,
        inference=config.inference, readout=config.readout,
        batched_blocks=config.batched_blocks, mix_init=config.mix_init, classifier_init=config.classifier_init,
        ode_steps=config.ode_steps, integrator=config.integrator, fm_sigma=config.fm_sigma, ct_eta=config.ct_eta,
    )


def build(name: str, config: RunConfig, splits: Splits, batches_per_pass: int, seed: int) -> Method:
    """Build a method on the training device; prototype embeddings are initialised from training images."""
    settings = settings_for(config, splits, batches_per_pass, name)
    prototype_data = None
    if config.embedding == "prototype":
        n = min(splits.train_y.numel(), PROTOTYPE_IMAGES_PER_CLASS * splits.spec.num_classes)
        prototype_data = (normalise(splits.train_x[:n], splits.mean, splits.std), splits.train_y[:n])
    torch.manual_seed(seed)
    model = _FACTORIES[name](settings, prototype_data=prototype_data, generator_seed=seed)
    return cast(Method, model.to(splits.train_x.device))
