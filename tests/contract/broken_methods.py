"""Deliberately broken methods, each breaking one rule of the contract, to show that its check catches it.

They are the CNN reference with one thing changed, so every other check still passes on them.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from baselines.cnn import CNNReference
from noprop.core.spec import MethodSpec


class LabelPeeking(CNNReference):
    """Reads the labels of the images it is asked about from its caller's frames: a cheat no harness allows."""

    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        logits = super().predict(x, generator, deterministic)
        for frame in inspect.stack()[1:]:
            y = frame.frame.f_locals.get("y")
            if isinstance(y, Tensor) and y.shape[:1] == x.shape[:1]:
                return logits + 100.0 * torch.nn.functional.one_hot(y, logits.shape[1]).to(logits.dtype)
        return logits


class Unseeded(CNNReference):
    """Initialises its classifier from a generator of its own that no seed reaches."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        own = torch.Generator(device="cpu")
        own.seed()  # a non-deterministic seed
        with torch.no_grad():
            self.classifier.weight.copy_(torch.randn(self.classifier.weight.shape, generator=own, device="cpu"))


class Forgetful(CNNReference):
    """Checkpoints its weights but not its optimiser's moments."""

    def training_state(self) -> dict:
        state = super().training_state()
        state["opt"] = {"state": {}, "param_groups": state["opt"]["param_groups"]}
        return state


class NoisyDeterministic(CNNReference):
    """Adds noise from the generator it is handed even to the deterministic reading."""

    def predict(self, x: Tensor, generator: torch.Generator | None = None, deterministic: bool = False) -> Tensor:
        logits = super().predict(x, generator, deterministic)
        if generator is None:
            return logits
        return logits + torch.randn(logits.shape, generator=generator, device=logits.device)


ANSWERS = Path(tempfile.mkdtemp(prefix="noprop-answers-")) / "test-labels.pt"  # what a cheat would have saved
torch.save(torch.zeros(4, dtype=torch.long, device="cpu"), ANSWERS)


class LookingUp(CNNReference):
    """Loads saved answers from a file while it is built (as one that calls the harness's dataset loader would)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.answers = torch.load(ANSWERS, weights_only=True)


def spec(factory: type, name: str) -> MethodSpec:
    return MethodSpec(name=name, factory=factory, summary=f"a deliberately broken method ({factory.__doc__})")


BROKEN = {
    "labels_never_reach_inference": spec(LabelPeeking, "label-peeking"),
    "seeded_repeatability": spec(Unseeded, "unseeded"),
    "exact_resume": spec(Forgetful, "forgetful"),
    "deterministic_reading_ignores_the_generator": spec(NoisyDeterministic, "noisy-deterministic"),
    "no_files_or_network": spec(LookingUp, "looking-up"),
}
