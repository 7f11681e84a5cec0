"""The contract's checks, one function each: what it guards is in its docstring, and its failure names the breach.

Every check gets a ``Toy`` (the method built on the toy problem on one device) and returns None when the method
keeps the contract, or a reason it does not apply (skipped); a breach raises ``ContractError``.
"""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Callable, Iterable

import torch

from bench.contract.sandbox import watched
from bench.contract.toy import Toy
from bench.run.ambient import deterministic_kernels, host_default_device
from bench.run.capture import WARMUP_STEPS, GraphSteps, Steps, make_capturable
from bench.run.evaluate import predictions, repeated_accuracy
from bench.run.loop import first_steps, train_epoch
from bench.run.measure import count_flops
from bench.run.switches import fp32_mode
from noprop.core.method import Capturable, Method
from noprop.core.spec import MethodSpec

_KINDS = {"int": int, "float": float, "bool": bool, "str": str}


class ContractError(AssertionError):
    """A method breaks the contract; the message names the check and what was seen."""

    def __init__(self, check: str, method: str, detail: str) -> None:
        super().__init__(f"method {method!r} breaks the contract's {check!r} check: {detail}")
        self.check, self.method, self.detail = check, method, detail


def _breach(toy: Toy, check: str, detail: str) -> ContractError:
    return ContractError(check, toy.spec.name, detail)


def declaration(toy: Toy) -> None:
    """The model is a ``Method`` (and ``Capturable`` where its spec says ``capturable``); what it records is exactly
    the columns its spec declares, of the declared kinds; an image costs a positive whole number of block passes."""
    model = toy.build()
    if not isinstance(model, Method):
        missing = [n for n in ("epoch_plan", "train_step", "epoch_stats", "predict", "training_state",
                               "load_training_state", "recorded_settings", "label_embedding",
                               "block_passes_per_sample") if not hasattr(model, n)]
        raise _breach(toy, "declaration", f"the model lacks {', '.join(missing)} of noprop.core.method.Method")
    if toy.spec.capturable and not isinstance(model, Capturable):
        missing = [n for n in ("optimizers", "random_streams") if not hasattr(model, n)]
        raise _breach(toy, "declaration", f"the spec says capturable, but the model lacks {', '.join(missing)} of "
                      "noprop.core.method.Capturable")
    recorded = model.recorded_settings()
    if set(recorded) != set(toy.spec.columns):
        raise _breach(toy, "declaration", f"recorded_settings() gives {sorted(recorded)} but the spec declares "
                      f"columns {sorted(toy.spec.columns)}")
    wrong = [k for k, v in recorded.items() if not isinstance(v, _KINDS[toy.spec.columns[k]])]
    if wrong:
        raise _breach(toy, "declaration", f"recorded {wrong[0]}={recorded[wrong[0]]!r} is not the declared "
                      f"{toy.spec.columns[wrong[0]]}")
    passes = model.block_passes_per_sample
    if not isinstance(passes, int) or passes < 1:
        raise _breach(toy, "declaration", f"block_passes_per_sample is {passes!r}, not an int >= 1")


def labels_never_reach_inference(toy: Toy) -> None:
    """The harness's evaluation, run with the test labels permuted, gives the same predictions: a prediction
    depends on the weights, the images and the seed only."""
    model = toy.trained()
    model.eval()
    args = (toy.mean, toy.std, 0, 2)
    first = repeated_accuracy(model, toy.test_x, toy.test_y, *args)[3]
    order = torch.randperm(toy.test_y.numel(), generator=torch.Generator(device="cpu").manual_seed(3), device="cpu")
    shuffled = toy.test_y[order.to(toy.device)]
    second = repeated_accuracy(model, toy.test_x, shuffled, *args)[3]
    if not torch.equal(first, second):
        changed = int((first != second).sum())
        raise _breach(toy, "labels_never_reach_inference", f"permuting the test labels changed {changed} of "
                      f"{first.numel()} predictions: labels reach inference")


def seeded_repeatability(toy: Toy) -> None:
    """Two builds from one seed, trained on the same passes, give the same losses and predictions."""
    readings = []
    for _ in range(2):
        model = toy.build(0)
        torch.manual_seed(0)
        stats = train_epoch(model, toy.passes(0))
        model.eval()
        readings.append((float(stats["loss"]), predictions(model, toy.test_x, toy.mean, toy.std, seed=5)))
    (loss_a, pred_a), (loss_b, pred_b) = readings
    if loss_a != loss_b or not torch.equal(pred_a, pred_b):
        raise _breach(toy, "seeded_repeatability", f"the same seed gave losses {loss_a!r} and {loss_b!r} and "
                      f"{int((pred_a != pred_b).sum())} differing predictions")


def exact_resume(toy: Toy) -> None:
    """A model loaded from another's ``training_state`` (saved and read back as a checkpoint is, weights only)
    takes the same next step: the same statistics and the same weights after it."""
    original = toy.trained(0)
    buffer = io.BytesIO()
    torch.save(original.training_state(), buffer)
    buffer.seek(0)
    resumed = toy.build(1)
    resumed.load_training_state(torch.load(buffer, weights_only=True, map_location=toy.device))
    x, y = toy.first_batch()
    steps = []
    for model in (original, resumed):
        torch.manual_seed(11)
        steps.append(torch.cat([s.flatten() for s in first_steps(model, x, y)]))
    if not torch.equal(steps[0], steps[1]):
        raise _breach(toy, "exact_resume", f"the step after resuming returned {steps[1].tolist()} instead of "
                      f"{steps[0].tolist()}")
    for (name, a), b in zip(original.state_dict().items(), resumed.state_dict().values(), strict=True):
        if torch.is_tensor(a) and not torch.equal(a, b):
            raise _breach(toy, "exact_resume", f"after the step, {name} differs from the uninterrupted model's")


def deterministic_reading_ignores_the_generator(toy: Toy) -> None:
    """``predict(..., deterministic=True)`` is the same whatever generator it is handed (or none)."""
    model = toy.trained()
    model.eval()
    x = toy.test_x[:64].float()
    with torch.no_grad():
        readings = [model.predict(x, generator=g, deterministic=True)
                    for g in (None, torch.Generator(toy.device).manual_seed(1),
                              torch.Generator(toy.device).manual_seed(2))]
    if not all(torch.equal(readings[0], r) for r in readings[1:]):
        raise _breach(toy, "deterministic_reading_ignores_the_generator",
                      "the deterministic reading changed with the generator")


def device_placement(toy: Toy) -> None:
    """Every parameter and buffer, and the logits, are on the requested device, after training and after loading a
    checkpoint."""
    model = toy.trained()
    model.load_training_state(model.training_state())
    want = toy.device
    for kind, tensors in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in tensors:
            if t.device.type != want.type or (want.index is not None and t.device.index != want.index):
                raise _breach(toy, "device_placement", f"{kind} {name} is on {t.device}, not {want}")
    with torch.no_grad():
        logits = model.predict(toy.test_x[:8].float(), deterministic=True)
    if logits.device.type != want.type:
        raise _breach(toy, "device_placement", f"predict returned logits on {logits.device}, not {want}")


def flop_counting(toy: Toy) -> str | None:
    """torch's FLOP counter, as the run's probe uses it, sees one training step of the method (a method whose
    training it cannot see says so in its spec: ``counts_flops=False``, and its rows leave the FLOPs empty)."""
    if not toy.spec.counts_flops:
        return "the method declares counts_flops=False"
    model = toy.build()
    x, y = toy.first_batch()
    try:
        with count_flops() as flops:
            first_steps(model, x, y)
    except Exception as e:  # whatever breaks inside torch's dispatch: the breach is that it broke
        raise _breach(toy, "flop_counting", f"a training step under torch's FLOP counter raised "
                      f"{type(e).__name__}: {e}") from e
    if flops.get_total_flops() <= 0:
        raise _breach(toy, "flop_counting", "torch's FLOP counter saw no FLOPs in a training step; declare "
                      "counts_flops=False if it cannot see the method's kernels")
    return None


def no_host_sync_in_an_epoch(toy: Toy) -> str | None:
    """On CUDA, a training epoch never waits on the host (torch's sync debug mode 'error' around the second epoch;
    the epoch's one read-back, ``noprop.core.method.read_back``, is exempt)."""
    if toy.device.type != "cuda":
        return "needs a CUDA device"
    model = toy.build()
    passes = toy.passes(0)
    train_epoch(model, passes)  # the first epoch's cuDNN and allocator set-up may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_epoch(model, passes)
    except RuntimeError as e:
        raise _breach(toy, "no_host_sync_in_an_epoch", f"the epoch synchronised with the host ({e})") from e
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return None


def no_files_or_network(toy: Toy) -> None:
    """A method never opens a file (a dataset, saved answers) or reaches the network while it is built, trains or
    predicts: its data come from the harness alone, so it cannot answer the test by lookup (Python's audit hooks,
    ``bench.contract.sandbox``)."""
    found = []
    with watched() as seen:
        model = toy.build()
    found += [("its factory", what) for what in seen]
    with watched() as seen:
        train_epoch(model, toy.passes(0))
    found += [("training", what) for what in seen]
    model.eval()
    with watched() as seen:
        for deterministic in (False, True):
            predictions(model, toy.test_x, toy.mean, toy.std, seed=5, deterministic=deterministic)
    found += [("inference", what) for what in seen]
    if found:
        listed = "; ".join(f"during {phase} it {what}" for phase, what in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise _breach(toy, "no_files_or_network", f"{listed}{more}: a method gets its data from the harness only")


def replay_equals_eager(toy: Toy) -> str | None:
    """On CUDA, for a method that declares its step capturable: steps replayed from CUDA graphs
    (``bench.run.capture``) equal eager steps from the same start, statistics and weights to 1e-5, under a learning
    rate that changes every step (a rate, counter or random draw baked into the graph at capture would show)."""
    if toy.device.type != "cuda":
        return "needs a CUDA device"
    if not toy.spec.capturable:
        return "the method declares its step not capturable (capturable=False)"
    x, y = toy.first_batch()
    runs = []
    for replayed in (False, True):
        model = toy.build(0, warmup_steps=1000)  # the lr grows every step
        steps = GraphSteps(model, toy.device) if replayed else Steps(model)
        make_capturable(model.optimizers(), toy.device)  # type: ignore[attr-defined]
        torch.manual_seed(11)
        torch.cuda.manual_seed(11)
        stats = [s for _ in range(WARMUP_STEPS + 5) for s in first_steps(model, x, y, steps)]
        runs.append((torch.cat([s.flatten() for s in stats]), model.state_dict(), steps.replayed))
    (eager, eager_state, _), (replay, replay_state, replays) = runs
    if replays < 5:
        raise _breach(toy, "replay_equals_eager", f"only {replays} of the steps were replayed from a graph")
    if not torch.allclose(eager, replay, rtol=1e-5, atol=1e-6):
        worst = int((eager - replay).abs().argmax())
        raise _breach(toy, "replay_equals_eager", f"replayed steps returned {replay[worst].item()!r} where eager ones "
                      f"returned {eager[worst].item()!r}: the step reads something at capture that changes after")
    for name, a in eager_state.items():
        b = replay_state[name]
        if torch.is_tensor(a) and a.is_floating_point() and not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
            raise _breach(toy, "replay_equals_eager", f"after the replayed steps, {name} differs from the eager ones'")
    return None


Check = Callable[[Toy], "str | None"]
CHECKS: dict[str, Check] = {f.__name__: f for f in (
    declaration, labels_never_reach_inference, seeded_repeatability, exact_resume,
    deterministic_reading_ignores_the_generator, device_placement, flop_counting, no_host_sync_in_an_epoch,
    replay_equals_eager, no_files_or_network)}


def run_check(spec: MethodSpec, check: str, device: str | torch.device = "cpu") -> str | None:
    """Run one check on ``spec``'s method; returns None when kept, or why the check does not apply here.
    Raises ``ContractError`` on a breach. Torch's global random state is restored afterwards.

    The check runs as a run from the CLI does (``bench.run.ambient``: the CPU as torch's default device, whatever the
    caller set; on CUDA IEEE float32, a run's default), with deterministic kernels on CUDA, so that comparing two
    trainings bit for bit tests the method's own randomness and not cuDNN's choice of reduction order."""
    if check not in CHECKS:
        raise KeyError(f"no contract check {check!r}; the checks are {', '.join(CHECKS)}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    with (torch.random.fork_rng(devices=[device] if cuda else []), host_default_device(),
          fp32_mode("ieee") if cuda else contextlib.nullcontext(), deterministic_kernels(device)):
        try:
            return CHECKS[check](Toy(spec, device))
        except ContractError:
            raise
        except Exception as e:  # the method raised inside the check: that is the breach, named, not a traceback
            where = _raised_at(e)
            raise ContractError(check, spec.name, f"the method raised {type(e).__name__}: {e}{where}") from e


def _raised_at(error: BaseException) -> str:
    """Where in the method's own code an exception was raised (its innermost frame outside the harness and torch)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if "/bench/" not in f.filename and "/torch/" not in f.filename]
    return f" (at {own[-1].filename}:{own[-1].lineno})" if own else ""


def contract_outcomes(spec: MethodSpec, device: str | torch.device = "cpu", checks: Iterable[str] | None = None
                      ) -> tuple[dict[str, str], list[ContractError]]:
    """Every check (or those named): each one's outcome ("kept", "skipped: why" or "broken") and the breaches."""
    outcomes, breaches = {}, []
    for name in checks or CHECKS:
        try:
            skipped = run_check(spec, name, device)
        except ContractError as e:
            breaches.append(e)
            outcomes[name] = "broken"
            continue
        outcomes[name] = f"skipped: {skipped}" if skipped else "kept"
    return outcomes, breaches


def check_method(spec: MethodSpec, device: str | torch.device = "cpu",
                 checks: Iterable[str] | None = None) -> dict[str, str]:
    """Run every check (or those named) and return each one's outcome ("kept" or "skipped: why"); raises
    ``ContractError`` naming every breach found."""
    outcomes, breaches = contract_outcomes(spec, device, checks)
    if breaches:
        raise ContractError(", ".join(e.check for e in breaches), spec.name, "; ".join(e.detail for e in breaches))
    return outcomes
