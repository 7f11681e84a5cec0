"""Dataset registry: what each dataset is, where its files are found, and loading it into tensors.

Search order for a dataset's files: ``--data-dir``, then ``$NOPROP_BENCH_DATA``, then the
per-user cache folder, then (Fashion-MNIST only) Debian's ``dataset-fashion-mnist`` folder.
When nothing is found, torchvision's downloader fetches the files into the cache (network
needed); offline, one clear error says which files to put where.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.run.readers import DataError, read_cifar_batches, read_idx

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about a dataset: the shape the models are built for and where its files live."""

    name: str
    num_classes: int
    channels: int
    size: int
    train_size: int
    test_size: int
    subdirs: tuple[str, ...]  # relative folders (or archives) searched under each root
    layout: str  # "idx" or "cifar"
    files: str  # what to put where under a data folder ``{folder}``, for the error message
    torchvision_class: str
    classes: tuple[str, ...]  # the class names, by label (what the report's per-class figures show)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def how_to_get(self, folder: Path) -> str:
        """What to put where, in a real folder: "put the folder cifar-10-batches-py/ ... in /home/me/data/"."""
        return "put " + self.files.format(folder=str(folder).rstrip("/"))


_CIFAR100_CLASSES = tuple("""apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
    dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
    lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear
    pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew
    skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
    tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split())  # the fine labels' order
_CLASSES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "cifar100": _CIFAR100_CLASSES,
}


def _idx_spec(name: str, tv_class: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, num_classes=10, channels=1, size=28, train_size=60_000, test_size=10_000,
        subdirs=("", name, f"{tv_class}/raw"), layout="idx",
        files=f"{', '.join(f + '[.gz]' for f in _IDX_FILES)} in {{folder}}/{name}/ "
        f"(or {{folder}}/{tv_class}/raw/, torchvision's layout)",
        torchvision_class=tv_class, classes=_CLASSES[name],
    )


def _cifar_spec(name: str, classes: int, folder: str, archive: str, tv_class: str) -> DatasetSpec:
    return DatasetSpec(
        name=name, num_classes=classes, channels=3, size=32, train_size=50_000, test_size=10_000,
        subdirs=(folder, archive, f"{name}/{folder}", f"{name}/{archive}"), layout="cifar",
        files=f"the folder {folder}/ or the archive {archive} in {{folder}}/",
        torchvision_class=tv_class, classes=_CLASSES[name],
    )


DATASETS: dict[str, DatasetSpec] = {
    "mnist": _idx_spec("mnist", "MNIST"),
    "fashion-mnist": _idx_spec("fashion-mnist", "FashionMNIST"),
    "cifar10": _cifar_spec("cifar10", 10, "cifar-10-batches-py", "cifar-10-python.tar.gz", "CIFAR10"),
    "cifar100": _cifar_spec("cifar100", 100, "cifar-100-python", "cifar-100-python.tar.gz", "CIFAR100"),
}

_CIFAR_MEMBERS = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": (["train"], ["test"], b"fine_labels"),
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a dataset, or a DataError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}") from None


def cache_dir() -> Path:
    """Per-user cache folder where downloads go (``$XDG_CACHE_HOME/noprop-bench`` or ``~/.cache/noprop-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "noprop-bench"


def search_roots(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for a dataset, in priority order."""
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("NOPROP_BENCH_DATA"):
        roots.append(Path(os.environ["NOPROP_BENCH_DATA"]).expanduser())
    roots.append(cache_dir())
    if spec.name == "fashion-mnist":
        roots.append(DEBIAN_FASHION_MNIST)
    return roots


def data_folder(spec: DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """Where a user puts the dataset's files: the first folder searched (``--data-dir``, else
    ``$NOPROP_BENCH_DATA``, else the cache)."""
    return search_roots(spec, data_dir)[0]


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(spec: DatasetSpec, location: Path) -> bool:
    if spec.layout == "idx":
        return location.is_dir() and all(_idx_file(location, stem) for stem in _IDX_FILES)
    train, test, _ = _CIFAR_MEMBERS[spec.name]
    if location.is_dir():
        return all((location / m).is_file() for m in train + test)
    return location.is_file()


def locate(spec: DatasetSpec, data_dir: str | Path | None = None) -> Path | None:
    """Where the dataset's files are found (a folder, or a CIFAR archive), or None."""
    for root in search_roots(spec, data_dir):
        for sub in spec.subdirs:
            location = root / sub if sub else root
            if _complete(spec, location):
                return location
    return None


def download(spec: DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """Fetch the dataset with torchvision's downloader into the cache; needs network. ``data_dir``: the folder the
    user gave, named in the error when the download fails."""
    import torchvision.datasets as tvd

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(tvd, spec.torchvision_class)
    try:
        for train in (True, False):
            dataset_class(root=str(root), train=train, download=True)
    except Exception as e:  # torchvision raises URLError, RuntimeError, OSError ... when offline
        raise DataError(
            f"{spec.name}: not found in {', '.join(str(r) for r in search_roots(spec, data_dir))} "
            f"and the download failed ({type(e).__name__}: {str(e)[:120]}); "
            f"{spec.how_to_get(data_folder(spec, data_dir))}, "
            "or pass --data-dir FOLDER holding them"
        ) from e
    location = locate(spec)
    if location is None:
        raise DataError(f"{spec.name}: torchvision downloaded into {root} but the files are not where expected")
    return location


def available(name: str, data_dir: str | Path | None = None, allow_download: bool = True) -> Path:
    """Where the dataset's files are, downloading them first where allowed; a DataError naming the folders searched
    and the folder to put the files in when they are nowhere. A sweep calls this before it builds anything, so
    missing data costs a second, not a run's start-up."""
    spec = get_spec(name)
    location = locate(spec, data_dir)
    if location is not None:
        return location
    if not allow_download:
        roots = ", ".join(str(r) for r in search_roots(spec, data_dir))
        raise DataError(f"{spec.name}: not found in {roots} (download is off); "
                        f"{spec.how_to_get(data_folder(spec, data_dir))}, or pass --data-dir FOLDER holding them")
    return download(spec, data_dir)


def read_dataset(spec: DatasetSpec, location: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read train and test splits from a located folder or archive as (x uint8 NCHW, y int64) pairs."""
    if spec.layout == "idx":
        found = [_idx_file(location, stem) for stem in _IDX_FILES]
        paths = [p for p in found if p is not None]
        if len(paths) != len(_IDX_FILES):
            raise DataError(f"{location}: missing IDX files; {spec.how_to_get(location)}")
        train_x = read_idx(paths[0], (spec.size, spec.size)).unsqueeze(1)
        train_y = read_idx(paths[1], ()).long()
        test_x = read_idx(paths[2], (spec.size, spec.size)).unsqueeze(1)
        test_y = read_idx(paths[3], ()).long()
        pairs = [(paths[0], paths[1], train_x, train_y), (paths[2], paths[3], test_x, test_y)]
    else:
        train_members, test_members, label_key = _CIFAR_MEMBERS[spec.name]
        train_x, train_y = read_cifar_batches(location, train_members, label_key)
        test_x, test_y = read_cifar_batches(location, test_members, label_key)
        pairs = [(location, location, train_x, train_y), (location, location, test_x, test_y)]
    for images_path, labels_path, x, y in pairs:
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{images_path} holds {x.shape[0]} images but {labels_path} holds {y.shape[0]} labels")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= spec.num_classes):
            raise DataError(f"{labels_path}: labels outside 0..{spec.num_classes - 1}; wrong or corrupt file")
    return train_x, train_y, test_x, test_y


def balanced_indices(labels: torch.Tensor, n: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded, class-balanced choice of ``n`` indices (classes differ in count by at most one where possible)."""
    if n > labels.numel():
        raise DataError(f"asked for {n} examples but the split holds only {labels.numel()}")
    order = torch.randperm(labels.numel(), generator=generator, device="cpu").to(labels.device)
    shuffled = labels[order]
    # rank of each element within its class, in shuffled order; take the lowest ranks first
    rank = torch.zeros_like(shuffled)
    for c in range(num_classes):
        mask = shuffled == c
        rank[mask] = torch.arange(int(mask.sum()), device=rank.device)
    pick = torch.argsort(rank * num_classes + shuffled, stable=True)[:n]
    return order[pick]


@dataclass
class Splits:
    """A loaded dataset on its device: uint8 images, int64 labels, and training-set channel statistics."""

    spec: DatasetSpec
    source: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    mean: torch.Tensor  # [C] float32, of the training split, on the 0..1 scale
    std: torch.Tensor

    @property
    def resident_bytes(self) -> int:
        """Bytes the splits hold on their device (images as uint8, labels): recorded apart from a method's memory."""
        held = (self.train_x, self.train_y, self.test_x, self.test_y, self.val_x, self.val_y, self.mean, self.std)
        return sum(t.numel() * t.element_size() for t in held if t is not None)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std on the 0..1 scale, computed in float64 chunks to bound memory."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    sq = torch.zeros_like(total)
    for chunk in x.split(8192):
        c = chunk.to(torch.float64) / 255.0
        total += c.sum(dim=(0, 2, 3))
        sq += (c * c).sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    train_subset: int | None = None,
    test_subset: int | None = None,
    val_size: int = 0,
    seed: int = 0,
    allow_download: bool = True,
) -> Splits:
    """Load a dataset onto ``device``: optional validation split carved from train, then optional subsets."""
    spec = get_spec(name)
    location = available(name, data_dir, allow_download)
    train_x, train_y, test_x, test_y = read_dataset(spec, location)
    g = torch.Generator(device="cpu").manual_seed(seed)
    val_x = val_y = None
    if val_size:
        val_idx = balanced_indices(train_y, val_size, spec.num_classes, g)
        keep = torch.ones(train_y.numel(), dtype=torch.bool, device=train_y.device)
        keep[val_idx] = False
        val_x, val_y = train_x[val_idx], train_y[val_idx]
        train_x, train_y = train_x[keep], train_y[keep]
    if train_subset:
        idx = balanced_indices(train_y, train_subset, spec.num_classes, g)
        train_x, train_y = train_x[idx], train_y[idx]
    if test_subset:
        idx = balanced_indices(test_y, test_subset, spec.num_classes, g)
        test_x, test_y = test_x[idx], test_y[idx]
    mean, std = channel_stats(train_x)
    dev = torch.device(device)

    def to(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.to(dev)

    return Splits(
        spec=spec, source=str(location),
        train_x=to(train_x), train_y=to(train_y), test_x=to(test_x), test_y=to(test_y),
        val_x=to(val_x), val_y=to(val_y), mean=mean.to(dev), std=std.to(dev),
    )
