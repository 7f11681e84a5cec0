"""RunConfig: one validated record of every setting a run depends on.

Resolution order, later wins: the dataclass defaults, ``configs/<dataset>.yaml`` (or the
file given with ``--config``), then command-line overrides. Validation happens once, here,
and every error names the key, the value and what is allowed. The resolved config is what
gets saved with each run, so a result can be repeated from its row alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

from bench.results.schema import SWITCH_COLUMNS

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

METHOD_NAMES = ("noprop-dt", "backprop", "cnn", "noprop-ct", "noprop-fm")
DEFAULT_METHODS = ("noprop-dt", "backprop")  # the matched pair; the others are asked for by name
METHOD_ALIASES = {"noprop": "noprop-dt", "dt": "noprop-dt", "bp": "backprop", "ct": "noprop-ct", "fm": "noprop-fm"}
CONTINUOUS_METHODS = ("noprop-ct", "noprop-fm")  # trained for continuous_epochs where it is set


class ConfigError(Exception):
    """A config file or override is malformed; the message says which key and what is allowed."""


def _key(default: Any, section: str, help: str, **constraints: Any) -> Any:
    """A config key: its default, its help panel in ``run --help``, what it means, and its constraints."""
    return Field(default, description=help, json_schema_extra={"section": section}, **constraints)


def _list_key(factory: Any, section: str, help: str) -> Any:
    return Field(default_factory=factory, description=help, json_schema_extra={"section": section})


WHAT, OPTIM, MODEL, EVAL, SWITCH, WHERE = ("What to run", "Optimiser (the same for every method)", "Model",
                                           "Evaluation and data", "Execution switches (recorded per run)",
                                           "Where things are")


@dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class RunConfig:
    """Every knob of a sweep. Defaults are the paper's hyperparameters (docs/method.md)."""

    dataset: str = _key("fashion-mnist", WHAT, "mnist, fashion-mnist, cifar10 or cifar100")
    methods: list[str] = _list_key(lambda: list(DEFAULT_METHODS), WHAT,
                                   "comma list: noprop (= noprop-dt), backprop, noprop-ct, noprop-fm, cnn (the CNN "
                                   "reference)")
    seeds: list[int] = _list_key(lambda: [0], WHAT, "comma list of seeds, e.g. 0,1,2")
    epochs: int = _key(100, WHAT, "epochs per run (every image trains every block once per epoch)", ge=1)
    continuous_epochs: int | None = _key(None, WHAT, "epochs for noprop-ct and noprop-fm (none = epochs; the paper "
                                         "trains them 100 / 500 / 1000 epochs on MNIST / CIFAR-10 / CIFAR-100)", ge=1)
    batch_size: int = _key(128, OPTIM, "mini-batch size", ge=1)
    lr: float = _key(1e-3, OPTIM, "AdamW learning rate", gt=0)
    weight_decay: float = _key(1e-3, OPTIM, "AdamW weight decay", ge=0)
    grad_clip: float | None = _key(None, OPTIM, "max gradient norm (per block for NoProp-DT); none = off", gt=0)
    warmup_steps: int = _key(0, OPTIM, "linear lr warm-up over this many optimiser steps", ge=0)
    lr_decay: Literal["none", "cosine"] = _key("none", OPTIM, "cosine: decay the lr to 0 over the run")
    T: int = _key(10, MODEL, "number of blocks (diffusion steps)", ge=1)
    eta: float = _key(0.1, MODEL, "the paper's eta, weight of NoProp-DT's denoising loss", gt=0)
    embedding: Literal["one-hot", "learned", "prototype"] = _key("one-hot", MODEL, "label embedding")
    embed_dim: int = _key(20, MODEL, "dimension of a learned embedding", ge=1)
    width: float = _key(1.0, MODEL, "channel and hidden width multiplier (1.0 = the paper's)", gt=0)
    dropout: float = _key(0.2, MODEL, "dropout probability in the image paths", ge=0, lt=1)
    schedule: Literal["cosine", "linear"] = _key("cosine", MODEL, "NoProp-DT's noise schedule")
    order: Literal["paper", "interleaved"] = _key(
        "paper", MODEL, "NoProp-DT: paper (block t trains on a full pass, t = 1..T) or interleaved (every batch "
        "trains all blocks)")
    inference: Literal["stochastic", "deterministic"] = _key(
        "stochastic", MODEL, "NoProp-DT: Eq. 3 with injected noise, or without (z_0 = 0)")
    readout: Literal["classifier", "posterior"] = _key("classifier", MODEL, "NoProp-DT: classifier on z_T, or "
                                                       "distance of the last block's prediction to each class")
    mix_init: Literal["constant", "average"] = _key(
        "constant", MODEL, "backprop: mixing weights at init; constant (a_t = tanh 1) or average (a_t = 1/(t+1): z_T "
        "starts as the equal-weight mean of z_0 and every block's output)")
    classifier_init: Literal["readout", "random"] = _key(
        "readout", MODEL, "backprop: classifier on z_T at init; readout (maps each class embedding to a confident "
        "logit for its class) or random (torch's default)")
    ode_steps: int = _key(20, MODEL, "noprop-ct, noprop-fm: ODE steps from noise to label at inference (the paper: "
                          "1000; 20 reaches the same accuracy, measured in the README)", ge=1)
    integrator: Literal["euler", "heun"] = _key("euler", MODEL, "noprop-ct, noprop-fm: the ODE integrator (heun: "
                                                "second order, two network calls a step)")
    fm_sigma: float = _key(0.1, MODEL, "noprop-fm: noise around the straight path from z_0 to the label", ge=0)
    ct_eta: float = _key(1.0, MODEL, "noprop-ct: the paper's eta, weight of its denoising loss", gt=0)
    eval_repeats: int = _key(5, EVAL, "inference runs averaged for the final test accuracy", ge=1)
    train_subset: int | None = _key(None, EVAL, "use N class-balanced training images (none = all)", ge=1)
    test_subset: int | None = _key(None, EVAL, "use N class-balanced test images (none = all)", ge=1)
    val_size: int = _key(0, EVAL, "carve N validation images from the training set", ge=0)
    ode_steps_sweep: list[int] = _list_key(list, EVAL, "noprop-ct, noprop-fm: after training, also measure test "
                                           "accuracy and inference time at these step counts, e.g. 10,50,200,1000")
    early_stopping_patience: int | None = _key(
        None, EVAL, "stop after N epochs without a better validation accuracy (needs val_size)", ge=1)
    timing_warmup_batches: int = _key(0, EVAL, "untimed training batches on a throw-away copy before epoch 1", ge=0)
    precision: Literal["fp32", "bf16"] = _key("fp32", SWITCH, "bf16: autocast training and inference to bfloat16")
    tf32: bool = _key(False, SWITCH, "CUDA only: float32 matmuls and convolutions in TF32 (changes the numbers, so "
                      "it is part of the config hash; off = strict IEEE float32)")
    channels_last: bool = _key(True, SWITCH, "NHWC images and conv weights (the same arithmetic, a faster layout)")
    batched_blocks: bool = _key(False, SWITCH, "NoProp-DT, interleaved order: train the T blocks as one stacked "
                                "computation (the same update, fewer kernel launches)")
    block_workers: int = _key(1, SWITCH, "NoProp-DT, interleaved order: split the T blocks over N processes "
                              "(torch.distributed; each trains its own blocks, the same results for any N)", ge=1)
    data_dir: str | None = _key(None, WHERE, "folder holding dataset files (else $NOPROP_BENCH_DATA, the cache)")
    download: bool = _key(True, WHERE, "download a missing dataset with torchvision (needs network)")
    device: str = _key("auto", WHERE, "auto, cpu, cuda, cuda:N or mps")
    threads: int | None = _key(None, WHERE, "torch threads per run process (none = torch's default, the cores "
                               "here); the CPUs a Ray task asks for", ge=1)
    out: str = _key("results", WHERE, "results folder")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        from bench.run.data import DATASETS

        if v not in DATASETS:
            raise ValueError(f"unknown dataset; choose one of: {', '.join(DATASETS)}")
        return v

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        names = [METHOD_ALIASES.get(m, m) for m in v]
        bad = [m for m in names if m not in METHOD_NAMES]
        if bad or not names:
            allowed = ", ".join(METHOD_NAMES + tuple(METHOD_ALIASES))
            raise ValueError(f"unknown method {', '.join(bad) or '(none given)'}; choose from: {allowed}")
        return list(dict.fromkeys(names))

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one seed")
        return list(dict.fromkeys(v))

    @field_validator("ode_steps_sweep")
    @classmethod
    def _positive_steps(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError("every step count must be >= 1")
        return sorted(set(v))

    @field_validator("device")
    @classmethod
    def _device_form(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")

    @model_validator(mode="after")
    def _batched_blocks_order(self) -> RunConfig:
        if self.batched_blocks and self.order != "interleaved":
            raise ValueError("batched_blocks needs order interleaved (the paper order trains one block per step)")
        return self

    @model_validator(mode="after")
    def _block_workers_fit(self) -> RunConfig:
        n = self.block_workers
        if n == 1:
            return self
        if self.methods != ["noprop-dt"] or self.order != "interleaved":
            raise ValueError(f"block_workers {n} splits NoProp-DT's blocks: it needs methods noprop and order "
                             "interleaved (run backprop in a sweep of its own)")
        if self.batched_blocks:
            raise ValueError("block_workers and batched_blocks do not combine; choose one")
        if n > self.T:
            raise ValueError(f"block_workers {n} is more than the T={self.T} blocks to split")
        return self

    def epochs_for(self, method: str) -> int:
        """Epochs a run of ``method`` trains: ``continuous_epochs`` for NoProp-CT and -FM where set, else ``epochs``."""
        if method in CONTINUOUS_METHODS and self.continuous_epochs is not None:
            return self.continuous_epochs
        return self.epochs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_hash(self) -> str:
        """Hash of the settings that define the experiment: what is trained, on what, for how long.

        Left out: where things go (out, data_dir, download, device), what is swept (methods, seeds) and the
        execution switches (SWITCH_KEYS), which every result row records as columns of their own, so the report
        keeps runs with different switches apart and ``compare --across`` can pair them on purpose. A key added
        after results were first written is left out while it has its default, so configs that do not use it keep
        the hash they always had (and still match committed reference results).
        """
        d = {
            k: v for k, v in self.to_dict().items()
            if k not in _NOT_HASHED and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def switches(self) -> dict[str, Any]:
        """The execution switches of this config (recorded in every run row)."""
        return {k: getattr(self, k) for k in SWITCH_KEYS}


SWITCH_KEYS: tuple[str, ...] = SWITCH_COLUMNS
# where things go and what is swept or measured besides, never what a run trains:
BOOKKEEPING_KEYS = frozenset({"methods", "seeds", "out", "data_dir", "download", "device", "threads",
                              "ode_steps_sweep"})
_NOT_HASHED = {*BOOKKEEPING_KEYS, *SWITCH_KEYS}
_HASHED_UNLESS_DEFAULT: dict[str, Any] = {
    "tf32": False, "mix_init": "constant", "classifier_init": "readout", "continuous_epochs": None, "ode_steps": 20,
    "integrator": "euler", "fm_sigma": 0.1, "ct_eta": 1.0}
KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunConfig))
_LIST_KEYS = {"methods", "seeds", "ode_steps_sweep"}


def _one_line(e: ValidationError, values: dict[str, Any]) -> str:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a rule across keys
        return f"bad config: {msg}"
    key = ".".join(str(p) for p in err["loc"])
    top = str(err["loc"][0])
    shown = values.get(top, err.get("input"))
    return f"bad value for '{key}': {shown!r} ({msg})"


def config_path(name_or_path: str) -> Path:
    """A config given as a path, or as a name of a file in configs/ (``smoke`` -> configs/smoke.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    named = CONFIG_DIR / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    available = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config '{name_or_path}' not found: give a YAML path or one of: {available}")


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of config keys; unknown keys and non-mappings are errors."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not readable YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, found {type(data).__name__}")
    _check_keys(data, str(path))
    return data


def _check_keys(data: dict[str, Any], where: str) -> None:
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown config key '{unknown[0]}'; allowed keys: {', '.join(KEYS)}")


def parse_override(key: str, value: str) -> Any:
    """Turn a command-line string into a YAML value (so ``1e-3``, ``null``, ``true`` work); lists split on commas."""
    if key in _LIST_KEYS:
        return [yaml.safe_load(v.strip()) for v in value.split(",") if v.strip()]
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def resolve(
    dataset: str | None = None, config: str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults <- configs/<dataset>.yaml or --config file <- overrides; validated once."""
    overrides = dict(overrides or {})
    _check_keys(overrides, "command line")
    values: dict[str, Any] = {}
    if config:
        values.update(read_yaml(config_path(config)))
    else:
        name = dataset or RunConfig().dataset
        default_file = CONFIG_DIR / f"{name}.yaml"
        if default_file.is_file():
            values.update(read_yaml(default_file))
    if dataset:
        values["dataset"] = dataset
    values.update(overrides)
    try:
        return RunConfig(**values)
    except ValidationError as e:
        raise ConfigError(_one_line(e, values)) from None
    except TypeError as e:
        raise ConfigError(str(e)) from None
