"""All T DenoiseBlocks as one batched computation: the ``batched_blocks`` switch of the interleaved order.

In the interleaved order every mini-batch trains all T blocks on the same images, each on its own noisy label.
Run one block after another, a step is T small forward and backward passes and T optimiser calls: on a GPU at batch
128 the time goes to launching kernels, not to arithmetic. Here the T blocks' weights are stacked, so each layer of
all T blocks is one kernel:

- convolutions: the blocks' filters concatenated along the output channels; the first convolution of the image path
  reads the shared images once (groups 1), every later one is grouped (groups T), so block t sees only its own
  channels;
- linear layers: one batched matrix product over [T, in, out] weights;
- BatchNorm1d over the T blocks' features side by side: per-channel statistics, so exactly each block's own;
- ReLU, max-pooling and dropout act per element or per channel, so they apply unchanged.

It is the same function of the same weights as the T blocks one by one, to float rounding (tests/noprop/
test_grouped.py); only the dropout masks are drawn in another order. Between epochs the weights, BatchNorm statistics
and AdamW moments live in the T blocks (checkpoints, inference and the paper order see nothing of this); ``load`` and
``unstack`` copy them in and out, always into the same stacked tensors, so a step captured as a CUDA graph (which
reads those tensors' memory) stays valid from one epoch to the next.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noprop.core.blocks import DenoiseBlock, ImageLabelPath, VectorLabelPath
from noprop.core.dropout import Dropout

# How a block tensor joins its T copies: "cat" along dim 0 (conv filters, BatchNorm vectors), or "stack" on a new
# leading dim (linear weights and biases). Either way ``GroupedBlocks.rows`` gives block t's copy as row t.
_JOIN = {nn.Conv2d: "cat", nn.BatchNorm1d: "cat", nn.Linear: "stack"}
_ELEMENTWISE = (nn.ReLU, nn.MaxPool2d, Dropout, nn.Dropout)


def _joins(template: nn.Module) -> dict[str, str]:
    """Name -> join kind of every parameter and buffer of a block (num_batches_tracked excluded)."""
    kinds = {}
    for prefix, module in template.named_modules():
        kind = _JOIN.get(type(module))
        if kind is None:
            continue
        for name, _ in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if name != "num_batches_tracked":
                kinds[f"{prefix}.{name}"] = kind
    return kinds


class GroupedBlocks:
    """Stacked copies of T blocks' weights (leaf tensors an optimiser can step) and their batched forward."""

    def __init__(self, blocks: nn.ModuleList) -> None:
        self.template: DenoiseBlock = blocks[0]  # for its structure only; its weights are not read
        self.T = len(blocks)
        self.kinds = _joins(self.template)
        self.param_names = {name for name, _ in self.template.named_parameters()}
        with torch.no_grad():
            self.tensors = {name: self.join([self._own(b, name) for b in blocks], kind)
                            for name, kind in self.kinds.items()}
        for name, tensor in self.tensors.items():
            tensor.requires_grad_(name in self.param_names)
        self.steps = 0  # training-mode forwards, for the blocks' BatchNorm counters (the caller counts them)

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors.values())).device

    def load(self, blocks: nn.ModuleList) -> None:
        """Refill the stacked tensors in place from the T blocks (their weights and BatchNorm statistics now)."""
        with torch.no_grad():
            for name, joined in self.tensors.items():
                for block, row in zip(blocks, self.rows(joined, name), strict=True):
                    row.copy_(self._own(block, name))
        self.steps = 0

    def _own(self, block: nn.Module, name: str) -> Tensor:
        return block.get_parameter(name) if name in self.param_names else block.get_buffer(name)

    @staticmethod
    def join(tensors: list[Tensor], kind: str) -> Tensor:
        """T blocks' copies of one tensor, joined as ``kind`` says (a new tensor)."""
        return (torch.cat if kind == "cat" else torch.stack)([t.detach() for t in tensors])

    def rows(self, joined: Tensor, name: str) -> Tensor:
        """A joined tensor (or its gradient or AdamW moment) as a view whose row t is block t's copy."""
        return joined.unflatten(0, (self.T, -1)) if self.kinds[name] == "cat" else joined

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        return [(name, t) for name, t in self.tensors.items() if name in self.param_names]

    def parameters(self) -> list[Tensor]:
        return [t for _, t in self.named_parameters()]

    def clip_per_block(self, max_norm: float) -> None:
        """Clip each block's gradient by its own norm (as ``clip_grad_norm_`` on each block would)."""
        grads = [(name, p.grad) for name, p in self.named_parameters() if p.grad is not None]
        sq = sum(self.rows(g, name).flatten(1).pow(2).sum(dim=1) for name, g in grads)
        coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for name, g in grads:
            rows = self.rows(g, name)
            rows.mul_(coef.view(-1, *[1] * (rows.dim() - 1)))

    def unstack(self, blocks: nn.ModuleList) -> None:
        """Write the stacked weights and BatchNorm statistics back into the T blocks."""
        with torch.no_grad():
            for name, joined in self.tensors.items():
                for block, row in zip(blocks, self.rows(joined, name), strict=True):
                    self._own(block, name).copy_(row)
            for block in blocks:
                for module in block.modules():
                    if isinstance(module, nn.BatchNorm1d):
                        module.num_batches_tracked += self.steps
        self.steps = 0

    # ---- the batched forward -------------------------------------------------------------------------------

    def __call__(self, x: Tensor, z: Tensor, W_embed: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [T, B, classes] and û [T, B, d] of the T blocks for shared images x and their own z [T, B, ·]."""
        B = x.shape[0]
        image = self._sequential("image_path", self.template.image_path, x, shared=True)
        label_path = self.template.label_path
        if isinstance(label_path, ImageLabelPath):
            zi = z.transpose(0, 1).reshape(B, self.T * label_path.shape[0], *label_path.shape[1:])
            label = self._sequential("label_path.net", label_path.net, zi, shared=False)
        else:
            assert isinstance(label_path, VectorLabelPath)
            h = self._sequential("label_path.inp", label_path.inp, z.transpose(0, 1), shared=False)
            label = self._sequential("label_path.res", label_path.res, h, shared=False) + h
        logits = self._sequential("head", self.template.head, torch.cat([image, label], dim=-1), shared=False)
        logits = logits.transpose(0, 1)  # [T, B, classes]
        return logits, logits.softmax(dim=-1) @ W_embed

    def _sequential(self, prefix: str, seq: nn.Sequential, h: Tensor, shared: bool) -> Tensor:
        """Run the T copies of ``seq``: images as [B, T*C, H, W] (or the shared [B, C, H, W] before the first
        convolution), vectors as [B, T, F]."""
        for index, module in enumerate(seq):
            name = f"{prefix}.{index}"
            if isinstance(module, nn.Conv2d):
                groups = 1 if shared else self.T
                h = F.conv2d(h, self.tensors[f"{name}.weight"], self.tensors[f"{name}.bias"], module.stride,
                             module.padding, module.dilation, groups)
                shared = False
            elif isinstance(module, nn.Flatten):
                h = h.reshape(h.shape[0], self.T, -1)
            elif isinstance(module, nn.Linear):
                weight, bias = self.tensors[f"{name}.weight"], self.tensors[f"{name}.bias"]
                h = torch.baddbmm(bias[:, None, :], h.transpose(0, 1), weight.transpose(1, 2)).transpose(0, 1)
            elif isinstance(module, nn.BatchNorm1d):
                flat = F.batch_norm(h.reshape(h.shape[0], -1), self.tensors[f"{name}.running_mean"],
                                    self.tensors[f"{name}.running_var"], self.tensors[f"{name}.weight"],
                                    self.tensors[f"{name}.bias"], True, module.momentum, module.eps)
                h = flat.view(h.shape)
            elif isinstance(module, _ELEMENTWISE):
                h = module(h)
            else:
                raise TypeError(f"batched blocks cannot run a {type(module).__name__} layer")
        return h


def stack_adamw_state(opts: list[torch.optim.Optimizer], blocks: nn.ModuleList, grouped: GroupedBlocks,
                      target: torch.optim.Optimizer) -> None:
    """Give ``target`` (an AdamW over ``grouped.parameters()``) the T block optimisers' moments and step count:
    copied into its state tensors where it has them (so they stay the same tensors), else as new ones."""
    for name, joined in grouped.named_parameters():
        states = [opt.state.get(block.get_parameter(name)) for opt, block in zip(opts, blocks, strict=True)]
        if any(not s for s in states):
            target.state.pop(joined, None)  # a block that never stepped: the stacked optimiser starts afresh
            continue
        kind = grouped.kinds[name]
        fresh = {
            "step": states[0]["step"].clone(),  # every block of the interleaved order has taken the same steps
            **{k: grouped.join([s[k] for s in states], kind) for k in ("exp_avg", "exp_avg_sq")},
        }
        held = target.state.get(joined)
        if held and all(k in held and held[k].shape == v.shape for k, v in fresh.items()):
            for k, v in fresh.items():
                held[k].copy_(v)
        else:
            target.state[joined] = fresh


def unstack_adamw_state(source: torch.optim.Optimizer, opts: list[torch.optim.Optimizer], blocks: nn.ModuleList,
                        grouped: GroupedBlocks) -> None:
    """Hand the stacked AdamW's moments and step count back to the T block optimisers."""
    for name, joined in grouped.named_parameters():
        state = source.state.get(joined)
        if not state:
            continue
        for t, (opt, block) in enumerate(zip(opts, blocks, strict=True)):
            opt.state[block.get_parameter(name)] = {
                "step": state["step"].clone(),
                **{k: grouped.rows(state[k], name)[t].clone() for k in ("exp_avg", "exp_avg_sq")},
            }
