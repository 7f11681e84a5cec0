"""Decoupled greedy learning (DGL; Belilovsky, Eickenberg, Oyallon, ICML 2020) of the CNN reference's network:
the network split into modules at its pooling layers, each trained on every batch through a small auxiliary
classifier of its own, from its input detached, with its own optimiser; no gradient crosses a module boundary.

The network is exactly ``cnn``'s (``baselines.cnn``: one block's image path and a linear classifier; the same
parameter names), its end-to-end twin; ``cnn-ckpt`` recomputes the same modules, its memory twin. The last module's
head is that classifier; the other heads are used only in training, and a run row counts their parameters apart
(``training_only_params``). docs/rivals.md §3 states the method; choices the paper leaves open are marked **(ours)**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.core.blocks import conv_path, pooling_stages, scaled
from noprop.core.method import ALL, Part
from noprop.core.one_network import OneNetwork
from noprop.core.settings import CommonSettings, adamw, set_lr
from noprop.core.spec import MethodSpec


class AuxiliaryHead(nn.Module):
    """The authors' "MLP-SR-aux" on a module's [c, s, s] output: average-pool to ⌈s/4⌉ (at least 2) → 3 × (1×1 conv
    c → c → BN → ReLU) → average-pool to 2×2 → an MLP 4c → 256 → 256 → classes **(ours: the MLP's widths, 256 ×
    width)**. Cheap beside its module, unlike a weak linear head, which costs several points (their ablation)."""

    def __init__(self, channels: int, side: int, num_classes: int, width: float) -> None:
        super().__init__()
        h = scaled(256, width)
        convs: list[nn.Module] = []
        for _ in range(3):
            convs += [nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU()]
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(max(2, math.ceil(side / 4))), *convs, nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(4 * channels, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, num_classes))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


def stage_outputs(stages: list[nn.Sequential], image_size: int) -> list[tuple[int, int]]:
    """(channels, side) of each convolutional stage's output: its last convolution's channels, halved per pool."""
    shapes = []
    for j, stage in enumerate(stages, start=1):
        convs = [m for m in stage if isinstance(m, nn.Conv2d)]
        if convs:
            shapes.append((convs[-1].out_channels, image_size // 2**j))
    return shapes


@dataclass(frozen=True)
class DGLSettings(CommonSettings):
    """DGL has no keys of its own: the network, optimiser and budget are the CNN reference's (under our protocol,
    AdamW at the common lr and weight decay for every method alike, not the authors' SGD schedule)."""


class DecoupledGreedy(OneNetwork):
    """J = 3 modules of ``cnn``'s network (``noprop.core.blocks.pooling_stages``), heads a_1, a_2
    (``AuxiliaryHead``) and a_3 = the classifier. Per batch, for j = 1..J: h_j = f_j(h_{j−1}.detach()),
    L_j = CE(a_j(h_j), y), and module j's own AdamW steps on (f_j, a_j) right away, so only one module's
    activations are alive at a time. Clipping (``grad_clip``) is per module. Inference: a_J(f_J(...f_1(x)))."""

    def __init__(self, s: DGLSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__()
        self.s = s
        self.image_path = conv_path(s.in_channels, s.image_size, s.width, s.dropout)
        self.classifier = nn.Linear(scaled(256, s.width), s.num_classes)
        self.stages = pooling_stages(self.image_path)  # views of image_path's layers, as in cnn
        self.aux = nn.ModuleList(AuxiliaryHead(c, side, s.num_classes, s.width)
                                 for c, side in stage_outputs(self.stages, s.image_size))
        heads = [*self.aux, self.classifier]
        self._opts = [adamw([*stage.parameters(), *head.parameters()], s)
                      for stage, head in zip(self.stages, heads, strict=True)]
        self._updates = 0
        self.TERMS = tuple(f"ce_{j}" for j in range(1, len(self.stages) + 1))

    @property
    def block_passes_per_sample(self) -> int:
        """One pass through the network per image (its modules in turn), as the CNN reference's."""
        return 1

    def recorded_settings(self) -> dict[str, str | int]:
        return {"dgl_modules": " | ".join(_describe(stage) for stage in self.stages),
                "training_only_params": sum(p.numel() for p in self.aux.parameters())}

    def training_state(self) -> dict:
        return {"model": self.state_dict(), "opts": [o.state_dict() for o in self._opts], "updates": self._updates}

    def load_training_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        for opt, saved in zip(self._opts, state["opts"], strict=True):
            opt.load_state_dict(saved)
        self._updates = int(state["updates"])

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return list(self._opts)

    def before_step(self, part: Part = ALL) -> None:
        """Every module's learning rate for the coming update (they share the update count), then count it."""
        for opt in self._opts:
            set_lr(opt, self.s, self._updates)
        self._updates += 1

    def train_step(self, x: Tensor, y: Tensor, part: Part = ALL) -> Tensor:
        """Every module's step on one mini-batch; returns the detached [sum of L_j, L_1..L_J] (no host sync)."""
        h, losses = x, []
        for stage, head, opt in zip(self.stages, [*self.aux, self.classifier], self._opts, strict=True):
            h = stage(h.detach())  # stop_gradient(h_{j-1}): nothing flows back into module j-1
            loss = F.cross_entropy(head(h), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.s.grad_clip is not None:
                nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.s.grad_clip)
            opt.step()
            losses.append(loss.detach())
        terms = torch.stack(losses)
        return torch.cat([terms.sum().reshape(1), terms])

    def infer(self, x: Tensor, generator: torch.Generator | None, deterministic: bool) -> Tensor:
        return self.classifier(self.image_path(x))

    def label_embedding(self) -> Tensor:
        """No label embedding: the one-hot classes, as the CNN reference's."""
        return torch.eye(self.s.num_classes, device=self.classifier.weight.device)


def _describe(stage: nn.Sequential) -> str:
    """A module in words: its parameterised layers, e.g. "conv 32" or "conv 64, conv 128"."""
    parts = [f"conv {m.out_channels}" if isinstance(m, nn.Conv2d) else f"linear {m.out_features}"
             for m in stage if isinstance(m, (nn.Conv2d, nn.Linear))]
    return ", ".join(parts)


METHOD = MethodSpec(
    name="dgl", factory=DecoupledGreedy, settings=DGLSettings, baseline="cnn",
    summary="Decoupled greedy learning (ICML 2020): the CNN reference split at its pooling layers, each module "
            "trained through its own auxiliary classifier on its detached input",
    columns={"dgl_modules": "str", "training_only_params": "int"}, capturable=True)
