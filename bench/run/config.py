"""RunConfig: one validated record of every setting a run depends on.

Resolution order, later wins: the dataclass defaults, ``configs/<dataset>.yaml`` (or the
file given with ``--config``), then command-line overrides. Validation happens once, here,
and every error names the key, the value and what is allowed. The resolved config is what
gets saved with each run, so a result can be repeated from its row alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

METHOD_NAMES = ("noprop-dt", "backprop")
METHOD_ALIASES = {"noprop": "noprop-dt", "dt": "noprop-dt", "bp": "backprop"}


class ConfigError(Exception):
    """A config file or override is malformed; the message says which key and what is allowed."""


@dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class RunConfig:
    """Every knob of a sweep. Defaults are the paper's hyperparameters (see shared NOPROP.md)."""

    dataset: str = "fashion-mnist"
    methods: list[str] = field(default_factory=lambda: list(METHOD_NAMES))
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(128, ge=1)
    # optimiser (identical for every method)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-3, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    warmup_steps: int = Field(0, ge=0)
    lr_decay: Literal["none", "cosine"] = "none"
    # model
    T: int = Field(10, ge=1)
    eta: float = Field(0.1, gt=0)
    embedding: Literal["one-hot", "learned", "prototype"] = "one-hot"
    embed_dim: int = Field(20, ge=1)
    width: float = Field(1.0, gt=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    schedule: Literal["cosine", "linear"] = "cosine"
    order: Literal["paper", "interleaved"] = "paper"
    inference: Literal["stochastic", "deterministic"] = "stochastic"
    readout: Literal["classifier", "posterior"] = "classifier"
    # evaluation and data
    eval_repeats: int = Field(5, ge=1)
    train_subset: int | None = Field(None, ge=1)
    test_subset: int | None = Field(None, ge=1)
    val_size: int = Field(0, ge=0)
    early_stopping_patience: int | None = Field(None, ge=1)
    data_dir: str | None = None
    download: bool = True
    # execution: fast paths (README "Fast paths"); each is recorded in the run row
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of training and inference (CPU and CUDA)
    channels_last: bool = True  # NHWC images and conv weights; the same arithmetic, a faster layout
    timing_warmup_batches: int = Field(0, ge=0)  # untimed training batches on a throw-away copy before epoch 1
    device: str = "auto"
    out: str = "results"

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

    @field_validator("device")
    @classmethod
    def _device_form(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_hash(self) -> str:
        """Hash of everything that changes what is trained (not where results go, seeds, device or layout).

        A key added after results were first written is left out while it has its default, so configs that
        do not use it keep the hash they always had (and still match committed reference results).
        """
        d = {
            k: v for k, v in self.to_dict().items()
            if k not in _NOT_HASHED and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# channels_last changes the memory layout, not the arithmetic, like device: runs with and without it are the
# same experiment, and `compare` can pair them to show the speed-up.
_NOT_HASHED = {"methods", "seeds", "out", "data_dir", "download", "device", "channels_last"}
_HASHED_UNLESS_DEFAULT = {"precision": "fp32"}
KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunConfig))
_LIST_KEYS = {"methods", "seeds"}


def _one_line(e: ValidationError, values: dict[str, Any]) -> str:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "config"
    top = str(err["loc"][0]) if err["loc"] else key
    shown = values.get(top, err.get("input"))
    msg = err["msg"].removeprefix("Value error, ")
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
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
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
