"""How the epoch loop makes a step: eagerly (``capture: none``) or captured once as a CUDA graph and replayed
(``capture: cuda-graph``), the same for every method of a sweep.

A step of NoProp-DT's paper order is about 160 small kernels whose GPU time is a fifth of the time the host needs to
launch them (1.35 of 7.1 ms on an H200, ../shared/gpu): replaying a graph launches them all at once. What it takes,
after PyTorch's whole-network capture (docs: "CUDA Graphs", whole-network capture):

- the method keeps its host-side bookkeeping in ``before_step``, which runs eagerly before every step, replays too;
  its optimisers are made capturable with the learning rate a device tensor (``make_capturable``), so a new rate is
  written into the memory the graph reads;
- a graph per (part, batch shape): the last, smaller batch of a pass gets its own, so every method's every step is
  replayed alike once warm;
- the first ``WARMUP_STEPS`` steps of each (part, shape) run eagerly on the capture stream: real training steps (so
  nothing is thrown away or has to be restored) that also initialise what a capture must not (optimiser state, cuDNN
  and cuBLAS handles of that stream). The next one is captured, then replayed, and so is every later one;
- static inputs, filled in place before each replay; the statistics the step returns are copied out of the graph's
  output after it;
- one memory pool shared by all of a run's graphs (T blocks' graphs do not hold T pools);
- random numbers through the graph-safe generators: torch's default CUDA generator, and each generator the method
  names in ``random_streams()`` registered with every graph, so a replay draws what an eager step would.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor

from noprop.core.method import BeforeStep, Capturable, Method, Part

WARMUP_STEPS = 3  # eager steps of each (part, shape) on the capture stream before its capture (PyTorch's example: 3)
MODES = ("none", "cuda-graph")


class Steps:
    """Makes the steps of one run's epochs: ``before_step`` on the host, then the method's ``train_step``."""

    mode = "none"

    def __init__(self, model: Method) -> None:
        self.model = model
        self.eager = 0  # steps run eagerly
        self.replayed = 0  # steps replayed from a graph
        self.capture_time_s = 0.0  # time spent capturing graphs (inside the epochs' training time)

    def prepare(self) -> None:
        """Called by the loop at the start of every epoch, inside the method's epoch context."""

    def __call__(self, part: Part, x: Tensor, y: Tensor) -> Tensor:
        if isinstance(self.model, BeforeStep):
            self.model.before_step(part)
        self.eager += 1
        return self.model.train_step(x, y, part)

    def counts(self) -> dict[str, object]:
        """What a run row records of how its steps were made."""
        return {"capture": self.mode, "eager_steps": self.eager, "replayed_steps": self.replayed,
                "capture_time_s": self.capture_time_s}

    def continue_counts(self, counts: dict[str, object]) -> None:
        """Go on counting from what an interrupted attempt's checkpoint recorded (``counts()``), so a resumed run
        records every step it made."""
        self.eager = int(counts.get("eager_steps", 0))  # type: ignore[call-overload]
        self.replayed = int(counts.get("replayed_steps", 0))  # type: ignore[call-overload]
        self.capture_time_s = float(counts.get("capture_time_s", 0.0))  # type: ignore[arg-type]


EagerSteps = Steps


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    x: Tensor
    y: Tensor
    out: Tensor


class GraphSteps(Steps):
    """Steps replayed from CUDA graphs, one per (part, batch shape), after ``WARMUP_STEPS`` eager ones each."""

    mode = "cuda-graph"

    def __init__(self, model: Method, device: torch.device) -> None:
        super().__init__(model)
        if not isinstance(model, Capturable):
            raise TypeError("a captured step needs the method's optimizers() and random_streams() "
                            "(noprop.core.method.Capturable)")
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[Hashable, _Graph] = {}
        self.seen: Counter[Hashable] = Counter()

    def prepare(self) -> None:
        make_capturable(self.model.optimizers(), self.device)  # type: ignore[attr-defined]

    def __call__(self, part: Part, x: Tensor, y: Tensor) -> Tensor:
        if isinstance(self.model, BeforeStep):
            self.model.before_step(part)
        key = (part, tuple(x.shape), x.stride(), x.dtype)
        captured = self.graphs.get(key)
        if captured is None:
            self.seen[key] += 1
            if self.seen[key] <= WARMUP_STEPS:
                self.eager += 1
                return self._on_capture_stream(part, x, y)
            captured = self.graphs[key] = self._capture(part, x, y)
        captured.x.copy_(x)
        captured.y.copy_(y)
        captured.graph.replay()
        self.replayed += 1
        return captured.out.clone()

    def _on_capture_stream(self, part: Part, x: Tensor, y: Tensor) -> Tensor:
        """An eager step on the stream captures use (PyTorch: warm up on a side stream before capturing)."""
        here = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(here)
        with torch.cuda.stream(self.stream):
            x.record_stream(self.stream)
            y.record_stream(self.stream)
            out = self.model.train_step(x, y, part)
        here.wait_stream(self.stream)
        return out

    def _capture(self, part: Part, x: Tensor, y: Tensor) -> _Graph:
        started = time.perf_counter()
        static_x, static_y = x.clone(), y.clone()  # clone keeps the layout (channels_last)
        graph = torch.cuda.CUDAGraph()
        for generator in self.model.random_streams():  # type: ignore[attr-defined]
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            out = self.model.train_step(static_x, static_y, part)
        self.capture_time_s += time.perf_counter() - started
        return _Graph(graph, static_x, static_y, out)


def make_capturable(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Each optimiser ready for capture: ``capturable`` where it has the option, its learning rate a float32 tensor on
    ``device`` (``noprop.core.settings.set_lr`` writes it in place) and its step counts there too. Idempotent."""
    for opt in optimizers:
        for group in opt.param_groups:
            if "capturable" in opt.defaults:
                group["capturable"] = True
            if not isinstance(group["lr"], Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)
        for state in opt.state.values():
            step = state.get("step")
            if isinstance(step, Tensor) and step.device != device:
                state["step"] = step.to(device=device, dtype=torch.float32)


def steps_for(model: Method, mode: str, device: torch.device) -> Steps:
    """The ``Steps`` of a run in ``mode`` (``capture``'s value)."""
    if mode == "none":
        return Steps(model)
    if mode == "cuda-graph":
        if device.type != "cuda":
            raise ValueError(f"capture cuda-graph needs a CUDA device, but this run is on {device.type}")
        return GraphSteps(model, device)
    raise ValueError(f"capture must be one of {', '.join(MODES)}, not {mode!r}")
