"""RunConfig: one validated record of every setting a run depends on.

Resolution order, later wins: the dataclass defaults, the bundled ``<dataset>.yaml`` (``configs/``, shipped in the
wheel as the package data ``bench/configs/``; a dataset without one is an error, never a silent fall back to the
defaults) or the file given with ``--config``, then command-line overrides. Validation happens once, here, and every
error names the key, the value and what is allowed. The resolved config is what gets saved with each run, so a
result can be repeated from its row alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

from bench.results.schema import SWITCH_COLUMNS
from bench.run import registry
from noprop.core.settings import OPTIMISER, SWITCH, CommonSettings, declared_keys

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CONFIG_DIR: Traversable = resources.files("bench") / "configs"  # package data: found in a checkout and a wheel alike
DEFAULT_METHODS = ("noprop-dt", "backprop")  # the matched pair; the others are asked for by name


class ConfigError(Exception):
    """A config file or override is malformed; the message says which key and what is allowed."""


def _key(default: Any, section: str, help: str, **constraints: Any) -> Any:
    """A config key: its default, its help panel in ``run --help``, what it means, and its constraints."""
    return Field(default, description=help, json_schema_extra={"section": section}, **constraints)


def _list_key(factory: Any, section: str, help: str) -> Any:
    return Field(default_factory=factory, description=help, json_schema_extra={"section": section})


WHAT, OPTIM, EVAL, WHERE = "What to run", OPTIMISER, "Evaluation and data", "Where things are"


@dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class HarnessConfig:
    """The harness's own keys: what to run, evaluation, switches, where things go. ``RunConfig`` adds the keys every
    method shares (``noprop.core.settings.CommonSettings``) and each registered method's own."""

    dataset: str = _key("fashion-mnist", WHAT, "mnist, fashion-mnist, cifar10 or cifar100")
    methods: list[str] = _list_key(lambda: list(DEFAULT_METHODS), WHAT,
                                   "comma list of methods (names or aliases; `noprop-bench methods` lists them)")
    seeds: list[int] = _list_key(lambda: [0], WHAT, "comma list of seeds, e.g. 0,1,2")
    epochs: int = _key(100, WHAT, "epochs per run (every image trains every block once per epoch); with a budget, "
                       "its ceiling", ge=1)
    budget_gflop: float | None = _key(None, WHAT, "train every method until it has spent this many training GFLOP "
                                      "(its probe's count; set epochs high enough as a ceiling)", gt=0)
    budget_seconds: float | None = _key(None, WHAT, "train every method until it has spent this many training "
                                        "seconds on its device (set epochs high enough as a ceiling)", gt=0)
    batch_size: int = _key(128, OPTIM, "mini-batch size", ge=1)
    eval_repeats: int = _key(5, EVAL, "inference runs averaged for the final test accuracy", ge=1)
    train_subset: int | None = _key(None, EVAL, "use N class-balanced training images (none = all)", ge=1)
    test_subset: int | None = _key(None, EVAL, "use N class-balanced test images (none = all)", ge=1)
    val_size: int = _key(0, EVAL, "carve N validation images from the training set", ge=0)
    ode_steps_sweep: list[int] = _list_key(list, EVAL, "methods whose inference integrates an ODE: after training, "
                                           "also measure test accuracy and inference time at these step counts, "
                                           "e.g. 10,50,200,1000")
    early_stopping_patience: int | None = _key(
        None, EVAL, "stop after N epochs without a better validation accuracy (needs val_size)", ge=1)
    timing_warmup_batches: int = _key(0, EVAL, "untimed training batches on a throw-away copy before epoch 1", ge=0)
    precision: Literal["fp32", "bf16"] = _key("fp32", SWITCH, "bf16: autocast training and inference to bfloat16")
    tf32: bool = _key(False, SWITCH, "CUDA only: float32 matmuls and convolutions in TF32 (changes the numbers, so "
                      "it is part of the config hash; off = strict IEEE float32)")
    channels_last: bool = _key(True, SWITCH, "NHWC images and conv weights (the same arithmetic, a faster layout)")
    block_workers: int = _key(1, SWITCH, "NoProp-DT, interleaved order: split the T blocks over N processes "
                              "(torch.distributed; each trains its own blocks, the same results for any N)", ge=1)
    capture: Literal["none", "cuda-graph"] = _key(
        "none", SWITCH, "CUDA only: cuda-graph captures each training step once per (part, batch shape) and replays "
        "it, for every method of the sweep alike (each must declare its step capturable; docs/performance.md)")
    data_dir: str | None = _key(None, WHERE, "folder holding dataset files (else $NOPROP_BENCH_DATA, the cache)")
    download: bool = _key(True, WHERE, "download a missing dataset with torchvision (needs network)")
    device: str = _key("auto", WHERE, "auto, cpu, cuda, cuda:N or mps")
    threads: int | None = _key(None, WHERE, "torch threads per run process (none = the cores the machine leaves free "
                               "when the run starts, or OMP_NUM_THREADS); the CPUs a Ray task asks for", ge=1)
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
        names = [REGISTRY.canonical(m) or m for m in v]
        bad = [m for m in names if m not in REGISTRY.methods]
        broken = [label for label in REGISTRY.broken if label.split(" ")[0] in bad]
        if broken:
            raise ValueError(f"method {broken[0]} is an installed plug-in that could not be loaded: "
                             f"{REGISTRY.broken[broken[0]]}")
        if bad or not names:
            allowed = ", ".join([*REGISTRY.methods, *REGISTRY.aliases])
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
    def _methods_settings(self) -> HarnessConfig:
        """Each chosen method checks its own settings (choices, ranges, rules across its keys) here, once."""
        for name in self.methods:
            settings = method_settings(self, name, in_channels=1, image_size=28, num_classes=10, total_steps=1)
            try:
                settings.check_block_workers(self.block_workers)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        return self

    @model_validator(mode="after")
    def _one_budget(self) -> HarnessConfig:
        """A budget in one unit, with a learning rate that does not need the run's length in advance."""
        if self.budget_gflop is not None and self.budget_seconds is not None:
            raise ValueError("give one budget: budget_gflop or budget_seconds, not both")
        if self.budget_gflop is None and self.budget_seconds is None:
            return self
        if getattr(self, "lr_decay", "none") != "none":
            raise ValueError("lr_decay cosine decays to 0 at a run length known in advance, which a budget does not "
                             "give; use lr_decay none with a budget")
        if self.budget_seconds is not None and self.block_workers > 1:
            raise ValueError("a budget in seconds cannot stop block workers at the same step; use budget_gflop")
        blind = [m for m in self.methods if self.budget_gflop is not None and not REGISTRY.spec(m).counts_flops]
        if blind:
            raise ValueError(f"budget_gflop needs every method's FLOPs, and {', '.join(blind)} declares "
                             "counts_flops=False; use budget_seconds")
        return self

    @model_validator(mode="after")
    def _one_capture_for_all(self) -> HarnessConfig:
        """A captured sweep captures every method's step (a fair comparison runs every method the same way)."""
        if self.capture == "none":
            return self
        if self.device == "cpu" or self.device == "mps":
            raise ValueError(f"capture {self.capture} replays CUDA graphs: it needs --device cuda, not {self.device}")
        if self.block_workers > 1:
            raise ValueError("capture and block_workers do not combine (a split step talks to other processes)")
        eager = [m for m in self.methods if not REGISTRY.spec(m).capturable]
        if eager:
            raise ValueError(f"capture {self.capture} needs every method's step capturable, and {', '.join(eager)} "
                             "does not declare it (its spec's capturable); run the sweep with --capture none or "
                             "without it")
        return self

    def epochs_for(self, method: str) -> int:
        """Epochs a run of ``method`` trains: the value of its declared ``epochs_key`` where set, else ``epochs``.
        Under a budget every method has the same ceiling, ``epochs``: the budget, not an epoch count, is what makes
        their training alike."""
        if self.budget_gflop is not None or self.budget_seconds is not None:
            return self.epochs
        entry = REGISTRY.find(method)
        key = entry.spec.epochs_key if entry else None
        value = getattr(self, key) if key else None
        return self.epochs if value is None else value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_hash(self, method: str | None = None) -> str:
        """Hash of the settings that define the experiment: what is trained, on what, for how long.

        With ``method``, the hash of that method's runs: the keys other methods declare "unless-default" and it does
        not are left out whatever their value, so (say) the continuous variants' ``continuous_epochs`` in a config
        does not re-hash NoProp-DT's rows. Rows made before such keys existed hash as before either way.

        Left out: where things go (out, data_dir, download, device), what is swept (methods, seeds) and the
        execution switches (SWITCH_KEYS), which every result row records as columns of their own, so the report
        keeps runs with different switches apart and ``compare --across`` can pair them on purpose. A key added
        after results were first written (every method key declared "unless-default") is left out while it has its
        default, so configs that do not use it keep the hash they always had (and still match committed results).
        """
        foreign = _foreign_keys(method)
        d = {
            k: v for k, v in self.to_dict().items()
            if k not in _NOT_HASHED and k not in foreign
            and not (k in _HASHED_UNLESS_DEFAULT and v == _HASHED_UNLESS_DEFAULT[k])
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def switches(self) -> dict[str, Any]:
        """The execution switches of this config (recorded in every run row)."""
        return {k: getattr(self, k) for k in SWITCH_KEYS}


def _foreign_keys(method: str | None) -> set[str]:
    """The "unless-default" keys of other methods that ``method`` does not declare (none without a method, or for a
    name registered nowhere)."""
    entry = REGISTRY.find(method) if method else None
    if entry is None:
        return set()
    own = declared_keys(entry.spec.settings)
    return {k for k, key in REGISTRY.keys.items() if key.hashed == "unless-default" and k not in own}


def method_settings(config: Any, method: str, **derived: Any) -> CommonSettings:
    """``method``'s settings dataclass filled from the config's values of its keys and the ``derived`` fields
    (data shape, run length); an invalid value raises ValueError naming it."""
    spec = REGISTRY.spec(method)
    return spec.settings(**derived, **{k: getattr(config, k) for k in declared_keys(spec.settings)})


# where things go and what is swept or measured besides, never what a run trains:
BOOKKEEPING_KEYS = frozenset({"methods", "seeds", "out", "data_dir", "download", "device", "threads",
                              "ode_steps_sweep"})
HARNESS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(HarnessConfig))
REGISTRY = registry.load(reserved=frozenset(HARNESS_KEYS), switches=frozenset(SWITCH_COLUMNS))
METHOD_ALIASES = REGISTRY.aliases
_METHOD_KEYS = {**registry.common_keys(), **REGISTRY.keys}


def _compose() -> type:
    """RunConfig: the harness's keys, then the common keys, then every registered method's own keys."""
    extra = [(k.name, k.annotation, _key(k.default, k.section, k.help, **k.bounds)) for k in _METHOD_KEYS.values()]
    made = dataclasses.make_dataclass("RunConfig", extra, bases=(HarnessConfig,))
    made.__doc__ = "Every knob of a sweep. Defaults are the paper's hyperparameters (docs/method.md)."
    made.__module__ = __name__
    return dataclass(made, config=ConfigDict(extra="forbid", validate_assignment=True))


RunConfig: Any = _compose()
SWITCH_KEYS: tuple[str, ...] = SWITCH_COLUMNS
_NOT_HASHED = {*BOOKKEEPING_KEYS, *SWITCH_KEYS}
_HASHED_UNLESS_DEFAULT: dict[str, Any] = {
    "tf32": False, "budget_gflop": None, "budget_seconds": None,
    **{k.name: k.default for k in _METHOD_KEYS.values() if k.hashed == "unless-default"}}
KEYS: tuple[str, ...] = tuple(f.name for f in fields(RunConfig))
assert set(SWITCH_KEYS) <= set(KEYS), "every switch column is a config key"


def _known_datasets() -> tuple[str, ...]:
    from bench.run.data import DATASETS

    return tuple(DATASETS)


def _one_line(e: ValidationError, values: dict[str, Any]) -> str:
    err = e.errors()[0]
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a rule across keys
        return f"bad config: {msg}"
    key = ".".join(str(p) for p in err["loc"])
    top = str(err["loc"][0])
    shown = values.get(top, err.get("input"))
    return f"bad value for '{key}': {shown!r} ({msg})"


def bundled_configs() -> dict[str, Traversable]:
    """The configs shipped with the package, by name (``smoke`` -> its YAML), in name order."""
    found = {f.name.removesuffix(".yaml"): f for f in CONFIG_DIR.iterdir() if f.name.endswith(".yaml")}
    return dict(sorted(found.items()))


def config_path(name_or_path: str) -> Path | Traversable:
    """A config given as a path, or as the name of a bundled config (``smoke`` -> configs/smoke.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    bundled = bundled_configs()
    if name_or_path in bundled:
        return bundled[name_or_path]
    raise ConfigError(f"config '{name_or_path}' not found: give a YAML path or one of: {', '.join(bundled)}")


def dataset_config(dataset: str) -> Traversable:
    """The bundled config of a dataset (its paper hyperparameters); a dataset without one is a ConfigError, since
    falling back to the built-in defaults would train another budget than the paper's without a word."""
    found = bundled_configs().get(dataset)
    if found is None:
        raise ConfigError(f"no bundled config for dataset '{dataset}' in {CONFIG_DIR} (the package is incomplete; "
                          "reinstall it, or give one with --config FILE)")
    return found


def read_mapping(path: Path | Traversable, what: str) -> dict[str, Any]:
    """A YAML file's top-level mapping (empty file: {}); unreadable YAML or anything but a mapping is a
    ConfigError saying that ``path`` should hold ``what``."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not readable YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected {what}, found {type(data).__name__}")
    return dict(data)


def read_yaml(path: Path | Traversable) -> dict[str, Any]:
    """Read a YAML mapping of config keys; unknown keys and non-mappings are errors."""
    data = read_mapping(path, "a mapping of config keys")
    _check_keys(data, str(path))
    return data


def _check_keys(data: dict[str, Any], where: str) -> None:
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown config key '{unknown[0]}'; allowed keys: {', '.join(KEYS)}")


def resolve(
    dataset: str | None = None, config: str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Defaults <- the dataset's bundled config or the --config file <- overrides; validated once."""
    overrides = dict(overrides or {})
    _check_keys(overrides, "command line")
    values: dict[str, Any] = {}
    if config:
        values.update(read_yaml(config_path(config)))
    else:
        name = dataset or RunConfig().dataset
        if name in _known_datasets():  # an unknown one is refused below, naming the known ones
            values.update(read_yaml(dataset_config(name)))
    if dataset:
        values["dataset"] = dataset
    values.update(overrides)
    try:
        return RunConfig(**values)
    except ValidationError as e:
        raise ConfigError(_one_line(e, values)) from None
    except TypeError as e:
        raise ConfigError(str(e)) from None
