"""The readout start of a classifier on a noised label embedding, shared by the backprop baseline (on z_T) and
NoProp-CT (on z_1): the paper leaves the classifier's initial value open (our choice, a config key of each).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from noprop.core.settings import setting

READOUT_CONFIDENCE = 0.9  # "readout": z = u_y alone gives its class this probability at init (our choice)
ClassifierInit = Literal["readout", "random"]


def classifier_init_setting() -> Any:
    """The ``classifier_init`` key, declared once for every method that has it."""
    return setting("readout", "backprop, noprop-ct, diffusion-blocks: the classifier on the final z (on D) at init; "
                   "readout (maps each class embedding to a confident logit for its class) or random (torch's default)")


@torch.no_grad()
def readout_init_(classifier: nn.Linear, W: Tensor, confidence: float = READOUT_CONFIDENCE) -> None:
    """Start the classifier on z as the readout of the label embedding: the least-squares linear map that sends
    each class embedding u_c to k times the one-hot of c (weight k·pinv(W)ᵀ, bias 0), with k chosen so that
    softmax gives u_c's own class probability ``confidence``. For one-hot W this is k·I.

    Why (the backprop baseline): z_T is a mixture of the blocks' û = softmax(logits)·W, so its entries are small
    (in the simplex for one-hot W). A randomly initialised Linear on it gives near-uniform logits and, measured,
    leaves backprop at 30.5 % after one epoch on 6,000 Fashion-MNIST images, where this start reaches 79.5 %
    (results/reference/backprop-init-cpu/README.md). It is still a linear classifier; only its starting point is
    ours.
    """
    c = W.shape[0]
    k = math.log(confidence * (c - 1) / (1 - confidence))
    classifier.weight.copy_(k * torch.linalg.pinv(W.detach().float()).T.to(classifier.weight.dtype))
    classifier.bias.zero_()
