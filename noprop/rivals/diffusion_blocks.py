"""DiffusionBlocks (Shing, Koyama, Akiba, ICLR 2026, arXiv 2506.14202) on NoProp's network: B blocks, each a
denoiser of the label embedding over its own range of noise levels, trained alone; chained only at inference.

As the paper and its code define it (docs/rivals.md §2): ln σ ~ N(−1.2, 1.2²) on [0.002, 80] split into B ranges of
equal probability mass and widened by γ (``noprop.rivals.noise_levels``); EDM preconditioning with σ_d; the loss
w(σ) · CE(logits, y); gradients clipped at 1.0; Euler inference from σ_max to σ_min, each step by the block owning
its σ, predicting the argmax of the logits at σ_min. Our choices where the source leaves it open are marked
**(ours)** here and in docs/method.md's table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.core.blocks import VectorLabelPath, conv_path, head_layers, scaled
from noprop.core.method import EpochPlan, Part, Pass, StepRecord
from noprop.core.reading import eval_mode, start_z
from noprop.core.readout import ClassifierInit, classifier_init_setting, readout_init_
from noprop.core.settings import OPTIMISER, CommonSettings, adamw, set_lr, setting
from noprop.core.sinusoid import EMBED_DIM, sinusoid
from noprop.core.spec import MethodSpec
from noprop.rivals.noise_levels import SIGMA_MAX, SIGMA_MIN, Partition, Preconditioning

NOISE_SCALE = 1000.0  # c_noise = ¼ ln σ spans about 2.7; embedded at NoProp-CT's time scale (ours)
TABLE_STD = 0.02  # the learned table's N(0, 0.02) start (the authors' code)


@dataclass(frozen=True)
class DBSettings(CommonSettings):
    """DiffusionBlocks' own keys. B defaults to the run's T, so B = 10 has NoProp-DT's block count."""

    db_blocks: int | None = setting(None, "DiffusionBlocks: number of blocks B (none = T; their NoProp-network "
                                    "experiment used 3)", ge=1)
    db_order: Literal["every-block", "random-block"] = setting(
        "every-block", "DiffusionBlocks: every-block (each batch trains each block once, in turn) or random-block "
        "(the authors': each step trains one block drawn uniformly; an epoch is B passes)")
    db_overlap: float = setting(0.1, "DiffusionBlocks: overlap γ of neighbouring noise ranges (their NoProp-network "
                                "value; 0.05 elsewhere)", ge=0, lt=0.5)
    db_sigma_data: float = setting(0.5, "DiffusionBlocks: EDM's σ_data", gt=0)
    db_steps: int | None = setting(None, "DiffusionBlocks: Euler steps at inference (none = B, so every block "
                                   "is used)", ge=1)
    db_grad_clip: float = setting(1.0, "DiffusionBlocks: max gradient norm per block and for the embedding (the "
                                  "paper's 1.0; the common grad_clip does not apply)", section=OPTIMISER, gt=0)
    classifier_init: ClassifierInit = classifier_init_setting()

    @property
    def blocks(self) -> int:
        return self.db_blocks or self.T

    def check(self) -> None:
        if self.embedding == "prototype":
            raise ValueError("DiffusionBlocks needs a one-hot or learned embedding, not prototype")


class NoiseBlock(nn.Module):
    """F_b(x, c_in z, c_noise) and the head on D: NoProp-DT's block (image path, label path, head) with a noise-level
    path, 64-d sinusoid of c_noise → linear 256 → ReLU, concatenated as NoProp-CT's time path is **(ours)**; the head
    ends in d outputs (F), and a linear map D → classes gives the logits **(ours: one per block, starting as the
    readout of the normalised table, ``classifier_init``, as the backprop baseline's classifier on z_T)**."""

    def __init__(self, s: DBSettings, dim: int) -> None:
        super().__init__()
        h = scaled(256, s.width)
        self.image_path = conv_path(s.in_channels, s.image_size, s.width, s.dropout)
        self.label_path = VectorLabelPath(dim, s.width)
        self.noise_path = nn.Sequential(nn.Linear(EMBED_DIM, h), nn.ReLU())
        self.head = head_layers(3 * h, s.width, dim)
        self.classifier = nn.Linear(dim, s.num_classes)

    def forward(self, features: Tensor, z: Tensor, sigma: Tensor, pre: Preconditioning) -> Tensor:
        """Logits [B, classes] from the image path's ``features``, the noisy embedding z and its σ [B]."""
        c_skip, c_out, c_in, c_noise = pre.scalings(sigma)
        noise = self.noise_path(sinusoid(c_noise, scale=NOISE_SCALE))
        out = self.head(torch.cat([features, self.label_path(c_in * z), noise], dim=-1))
        return self.classifier(c_skip * z + c_out * out)


class DiffusionBlocks(nn.Module):
    """B ``NoiseBlock``s and the label table E (rows normalised wherever they are used: y_emb = E[y] / ‖E[y]‖).

    Optimisers as NoProp-DT's: one AdamW per block and one for E (when it learns), every block's lr by its own update
    count, E's by the mean. A step of block b: σ per example from its widened range, z = y_emb + σ ε,
    loss = mean w(σ) CE; block b and E clip their gradients by their own norms and step. ``every-block`` (default,
    **ours**): each batch trains blocks 1..B in turn, one backward each (one block's activations alive at a time),
    so an epoch trains every block on every image once, as NoProp-DT's; ``random-block`` (the authors'): B passes,
    each step one block drawn from torch's stream. Embedding: ``learned`` is the paper's table (N(0, 0.02), d =
    ``embed_dim``); ``one-hot`` (the run's default, matched to NoProp-DT) fixes E = I, recorded as a departure.
    """

    def __init__(self, s: DBSettings, prototype_data: tuple[Tensor, Tensor] | None = None,
                 generator_seed: int = 0) -> None:
        super().__init__()
        self.s = s
        self.partition = Partition(s.blocks, s.db_overlap)
        self.pre = Preconditioning(s.db_sigma_data)
        if s.embedding == "learned":
            table = torch.empty(s.num_classes, s.embed_dim, device="cpu")
            nn.init.normal_(table, std=TABLE_STD, generator=torch.Generator(device="cpu").manual_seed(generator_seed))
            self.table = nn.Parameter(table.to(torch.get_default_device()))
        else:
            self.register_buffer("table", torch.eye(s.num_classes, device=torch.get_default_device()))
        self.blocks = nn.ModuleList(NoiseBlock(s, self.table.shape[1]) for _ in range(s.blocks))
        if s.classifier_init == "readout":
            for block in self.blocks:
                readout_init_(block.classifier, self.unit_table())
        self._block_opts = [adamw(b.parameters(), s) for b in self.blocks]
        self._table_opt = adamw([self.table], s) if isinstance(self.table, nn.Parameter) else None
        self._updates = [0] * s.blocks

    @property
    def block_passes_per_sample(self) -> int:
        """Every image trains each of the B blocks once per epoch (in expectation in the random-block order)."""
        return self.s.blocks

    def recorded_settings(self) -> dict[str, str | int]:
        departure = "fixed one-hot label table (the paper learns E)" if self.s.embedding == "one-hot" else ""
        return {"db_blocks": self.s.blocks, "db_order": self.s.db_order, "db_overlap": self.s.db_overlap,
                "db_steps": self.steps, "db_sigma_range": f"{SIGMA_MIN:g}-{SIGMA_MAX:g}",
                "db_sigma_data": self.s.db_sigma_data, "departure": departure}

    @property
    def steps(self) -> int:
        return self.s.db_steps or self.s.blocks

    def label_embedding(self) -> Tensor:
        """The normalised class embeddings E / ‖E‖ [classes, d]."""
        return self.unit_table().detach()

    def unit_table(self) -> Tensor:
        return F.normalize(self.table, dim=1)

    def training_state(self) -> dict:
        return {"model": self.state_dict(), "block_opts": [o.state_dict() for o in self._block_opts],
                "table_opt": self._table_opt.state_dict() if self._table_opt else None, "updates": list(self._updates)}

    def load_training_state(self, state: dict) -> None:
        self.load_state_dict(state["model"])
        for opt, saved in zip(self._block_opts, state["block_opts"], strict=True):
            opt.load_state_dict(saved)
        if self._table_opt is not None:
            self._table_opt.load_state_dict(state["table_opt"])
        self._updates = list(state["updates"])

    # ---- training ------------------------------------------------------------------------------------------

    def block_terms(self, b: int, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Block b's (1-based) (weighted loss, plain CE) on one batch: σ from its range, z = y_emb + σ ε."""
        u = self.unit_table()[y]
        sigma = self.partition.draw(b, y.shape[0], u.device, u.dtype)
        z = u + sigma[:, None] * torch.randn_like(u)
        block = self.blocks[b - 1]
        ce = F.cross_entropy(block(block.image_path(x), z, sigma, self.pre), y, reduction="none")
        return (self.pre.loss_weight(sigma) * ce).mean(), ce.mean()

    def epoch_plan(self) -> EpochPlan:
        """``every-block``: one pass, each batch training blocks 1..B in turn (a step each); ``random-block``: B passes,
        each batch training one block drawn uniformly from torch's CPU stream (the authors' order)."""
        B = self.s.blocks
        if self.s.db_order == "random-block":
            return EpochPlan(passes=[Pass(draw=self._draw_block)] * B)
        return EpochPlan(passes=[Pass(tuple(range(1, B + 1)))])

    def _draw_block(self) -> tuple[int, ...]:
        return (int(torch.randint(1, self.s.blocks + 1, (), device="cpu")),)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [*self._block_opts, *([self._table_opt] if self._table_opt else [])]

    def random_streams(self) -> list[torch.Generator]:
        """None besides torch's default one."""
        return []

    def before_step(self, part: Part) -> None:
        """Block b's learning rate by its own update count, E's by the mean count; then count block b's update."""
        b = self._block(part)
        set_lr(self._block_opts[b - 1], self.s, self._updates[b - 1])
        if self._table_opt:
            set_lr(self._table_opt, self.s, sum(self._updates) / self.s.blocks)
        self._updates[b - 1] += 1

    def _block(self, part: Part) -> int:
        if isinstance(part, int) and 1 <= part <= self.s.blocks:
            return part
        raise ValueError(f"DiffusionBlocks trains one block per step: its parts are 1..{self.s.blocks}, not {part!r}")

    def train_step(self, x: Tensor, y: Tensor, part: Part = 1) -> Tensor:
        """One optimiser step of block ``part`` (1-based) and E; returns the detached [1, 2] row (weighted loss, CE),
        no host sync."""
        b = self._block(part)
        opt = self._block_opts[b - 1]
        opt.zero_grad(set_to_none=True)
        if self._table_opt:
            self._table_opt.zero_grad(set_to_none=True)
        loss, ce = self.block_terms(b, x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.blocks[b - 1].parameters(), self.s.db_grad_clip)
        opt.step()
        if self._table_opt:
            nn.utils.clip_grad_norm_([self.table], self.s.db_grad_clip)
            self._table_opt.step()
        return torch.stack([loss, ce]).detach().reshape(1, 2)

    def epoch_stats(self, records: Sequence[StepRecord]) -> dict[str, float]:
        """Example-weighted means "loss" (w(σ)·CE) and "ce", per block "block_b_ce", "steps" (updates per block)
        and "block_updates"."""
        B = self.s.blocks
        sums = torch.zeros(B, 3, dtype=torch.float64, device="cpu")  # per block: loss·n, ce·n, n
        if records:
            values = torch.cat([r.stats for r in records]).double()
            sizes = torch.tensor([r.examples for r in records], dtype=torch.float64, device="cpu")
            per_row = torch.cat([values * sizes[:, None], sizes[:, None]], dim=1)
            sums.index_add_(0, torch.tensor([self._block(r.part) - 1 for r in records], device="cpu"), per_row)
        total = sums.sum(0).tolist()

        def mean(v: float, n: float) -> float:
            return v / n if n > 0 else math.nan

        out = {"loss": mean(total[0], total[2]), "ce": mean(total[1], total[2])}
        out.update({f"block_{b}_ce": mean(ce, n) for b, (ce, n) in enumerate(sums[:, 1:].tolist(), start=1)})
        updates = float(len(records))
        return {**out, "steps": updates / B, "block_updates": updates}

    # ---- inference -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        """Logits at σ_min after Euler steps from σ_max: z_0 ~ N(0, σ_max² I) (0 for the deterministic reading);
        at level σ_i the owning block gives p = softmax(logits), ŷ = p · E/‖E‖, and
        z ← z + (σ_{i+1} − σ_i)(z − ŷ)/σ_i (EDM's sign: towards ŷ). A block's image features are computed once."""
        with eval_mode(self):
            E = self.unit_table()
            z = SIGMA_MAX * start_z(x, E, generator, deterministic)
            features: dict[int, Tensor] = {}
            levels = self.partition.levels(self.steps)
            logits = z
            for i, (sigma, b) in enumerate(levels):
                block = self.blocks[b - 1]
                if b not in features:
                    features[b] = block.image_path(x)
                logits = block(features[b], z, torch.full((x.shape[0],), sigma, device=x.device, dtype=z.dtype),
                               self.pre)
                if i + 1 < len(levels):
                    z = z + (levels[i + 1][0] - sigma) * (z - logits.softmax(-1) @ E) / sigma
            return logits


METHOD = MethodSpec(
    name="diffusion-blocks", factory=DiffusionBlocks, settings=DBSettings, aliases=("db",), baseline="backprop",
    summary="DiffusionBlocks (arXiv 2506.14202): B blocks, each an EDM denoiser of the label embedding over its own "
            "noise range, trained alone",
    columns={"db_blocks": "int", "db_order": "str", "db_overlap": "float", "db_steps": "int",
             "db_sigma_range": "str", "db_sigma_data": "float", "departure": "str"}, capturable=True)
