"""The matched backprop baseline (paper Eqs. 17-19): NoProp-DT's blocks, embedding and classifier chained
end to end and trained by ordinary back-propagation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from baselines.endtoend import EndToEnd
from noprop.core.reading import start_z
from noprop.core.readout import ClassifierInit, classifier_init_setting, readout_init_
from noprop.core.settings import CommonSettings, setting
from noprop.core.spec import MethodSpec
from noprop.core.stack import DenoiserStack

MIX_INIT = 1.0  # "constant": w_t = 1 at init, a_t = tanh(1) ≈ 0.76 (our choice; the paper is silent)


def initial_mixing(T: int, how: str) -> Tensor:
    """w_t at init. "constant": every a_t = tanh(1). "average": a_t = 1/(t+1), so z_T starts as the equal-weight
    mean of z_0 and the T blocks' outputs (each has a direct weight of 1/(T+1) in z_T, where "constant" gives the
    first block about 2e-6)."""
    here = torch.get_default_device()  # built where the model is built, as torch's layers are
    if how == "constant":
        return torch.full((T,), MIX_INIT, device=here)
    return torch.atanh(1.0 / torch.arange(2, T + 2, dtype=torch.float32, device=here))


@dataclass(frozen=True)
class BackpropSettings(CommonSettings):
    """The initial values the paper leaves open for the baseline (ours)."""

    mix_init: Literal["constant", "average"] = setting(
        "constant", "backprop: mixing weights at init; constant (a_t = tanh 1) or average (a_t = 1/(t+1): z_T starts "
        "as the equal-weight mean of z_0 and every block's output)")
    classifier_init: ClassifierInit = classifier_init_setting()


class BackpropBaseline(EndToEnd, DenoiserStack):
    """z_0 ~ N(0, I); z_t = (1 - a_t) z_{t-1} + a_t û_t(x, z_{t-1}), a_t = tanh(w_t) with learned w_t (Eqs.
    17-19); logits = classifier(z_T); cross-entropy (our choice of loss); one AdamW over all parameters
    (the T mixing scalars included, weight decay too), clipping over all parameters.

    Initial values the paper leaves open (ours, each a config key): the w_t (``mix_init``, `initial_mixing`) and
    the classifier (``classifier_init``: `readout_init_` by default, torch's random Linear init otherwise)."""

    def __init__(self, s: BackpropSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__(s, prototype_data, generator_seed)
        self.mix = nn.Parameter(initial_mixing(s.T, s.mix_init))
        if s.classifier_init == "readout":
            readout_init_(self.classifier, self.embedding.W)
        self.start_training()

    @property
    def block_passes_per_sample(self) -> int:
        """Every image passes through the T blocks once, forward and backward."""
        return self.s.T

    def forward(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits; z_0 ~ N(0, I) from ``generator``, or z_0 = 0 (its mean) when ``deterministic``."""
        W = self.embedding.W
        z = start_z(x, W, generator, deterministic)
        a = torch.tanh(self.mix)
        for t, block in enumerate(self.blocks):
            u_hat = self.run_block(block, x, z, W)
            z = (1 - a[t]) * z + a[t] * u_hat  # Eq. 17-19
        return self.classifier(z)

    def run_block(self, block: nn.Module, x: Tensor, z: Tensor, W: Tensor) -> Tensor:
        """û_t(x, z_{t-1}): one block's prediction (a checkpointed subclass recomputes it in backward)."""
        return block(x, z, W)[1]


METHOD = MethodSpec(
    name="backprop", factory=BackpropBaseline, settings=BackpropSettings, aliases=("bp",),
    summary="End-to-end backprop through NoProp-DT's T blocks (paper Eqs. 17-19): the matched baseline",
    capturable=True,
    version=2)  # 2: the classifier starts as the readout of the label embedding (classifier_init's default)
