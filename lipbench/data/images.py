"""Image datasets, decoded once into a cached uint8 tensor and sampled on the training device (no DataLoader)."""
import pickle
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.datasets.mnist import read_image_file, read_label_file

from lipbench import LipbenchError
from lipbench.files import cached, describe
from lipbench.progress import log, long_step, warn

# dataset.on_device=auto keeps the images on the GPU when they take less than this share of its free memory.
MAX_GPU_SHARE = 0.25
# digits and folder have no official test split: a fixed random 20% of the images is held out.
TEST_SHARE = 0.2
# Files a folder of images commonly holds besides its images, skipped without a warning: OS and viewer metadata.
METADATA_FILES = {"thumbs.db", "desktop.ini"}
# Where an image dataset keeps what lipbench derives from it (decoded tensors, metric statistics, classifiers).
CACHE_DIR_NAME = "lipbench_cache"


def require_files(name: str, paths: list[Path], how: str) -> None:
    """One-line error naming the first missing file and how to get it."""
    for path in paths:
        if not path.exists():
            raise LipbenchError(f"dataset={name}: {path} not found: {how}, or set dataset.root=... "
                                f"or dataset.download=true")


def holdout(n: int, split: str) -> torch.Tensor:
    """Indices of a split for datasets that ship without one: a seeded permutation, whose last 20% is the test."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    n_test = int(n * TEST_SHARE)
    return (order[n - n_test:] if split == "test" else order[:n - n_test]).sort().values  # kept in file order


def read_image(path: Path, size: int, channels: int, crop: int | None) -> np.ndarray | str:
    """Decode one file: centre crop to a `crop` square (default: the largest square), resize to `size`, HWC uint8;
    a file PIL cannot decode (truncated, empty, not an image) gives why, as a string."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")  # decodes the whole file: truncation shows here
            side = crop or min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
            return np.asarray(img).reshape(size, size, channels)
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # OSError includes UnidentifiedImageError
        return describe(error, path)


def read_images(paths: list[Path], size: int, channels: int, crop: int | None, fix: str) -> torch.Tensor:
    """Decode many files in threads (PIL releases the GIL) into a uint8 [N, C, size, size] tensor; any file that
    does not decode is a one-line error naming it (and how many others) and `fix`, after trying them all."""
    if not paths:  # a split that holds no images (the test split of a folder of fewer than 5)
        return torch.empty((0, channels, size, size), dtype=torch.uint8)
    with ThreadPoolExecutor() as pool:
        decoded = pool.map(lambda p: read_image(p, size, channels, crop), paths)
        arrays = list(long_step(decoded, len(paths), f"decoding {len(paths)} images once into the cache (files)"))
    bad = [(path, why) for path, why in zip(paths, arrays) if isinstance(why, str)]
    if bad:
        others = f" (and {len(bad) - 1} more of the {len(paths)} files)" if len(bad) > 1 else ""
        raise LipbenchError(f"{bad[0][0]} is not a readable image ({bad[0][1]}){others}: {fix}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def read_idx(path: Path, read, fix: str) -> torch.Tensor:
    """An MNIST IDX file read with torchvision's `read` (read_image_file, read_label_file); one line naming it and
    `fix` when it is truncated or not an IDX file."""
    try:
        return read(str(path))
    except Exception as error:  # torchvision fails with assertions, shape and type errors on a damaged file
        raise LipbenchError(f"{path} is not a readable MNIST IDX file ({describe(error, path)}): {fix}") from None


def to_inputs(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> floats in [-1, 1], the range every model sees (and a generator's tanh produces)."""
    return images.float() / 127.5 - 1


class ImageDataset:
    """A finite image dataset held as uint8 [N, C, H, W]; an "epoch" is one critic pass over the train split."""

    def __init__(self, name: str, channels: int, image_size: int, root: str = "data", download: bool = False,
                 on_device="auto", path: str | None = None, crop: int | None = None, device="cpu"):
        if name not in self.READERS:
            raise LipbenchError(f"dataset.name={name!r} is unknown: use one of {sorted(self.READERS)}")
        if on_device not in ("auto", True, False):
            raise LipbenchError(f"dataset.on_device={on_device!r} is invalid: use auto, true or false")
        if name == "folder" and not (path and Path(path).is_dir()):
            raise LipbenchError(f"dataset.path={path} is not a directory: set dataset.path=/a/folder/of/images")
        self.name = name
        self.shape = (int(channels), int(image_size), int(image_size))
        self.root, self.download, self.crop = Path(root), bool(download), crop
        self.path = None if path is None else Path(path)
        # Derived files (this cache, FID statistics) live next to the data they come from; digits has no files.
        data_dir = self.path if name == "folder" else self.root
        self.cache_dir = self.root / "digits" if name == "digits" else data_dir / CACHE_DIR_NAME

        images, labels = self.split("train")
        self.device = torch.device(device)
        home = self.device if self.keep_on_device(on_device, images) else torch.device("cpu")
        self.images = images.to(home)
        self.labels = None if labels is None else labels.to(home)
        self.num_classes = None if labels is None else int(labels.max()) + 1

    def keep_on_device(self, on_device, images: torch.Tensor) -> bool:
        """auto: on CUDA when the images fit in a quarter of the free memory; on CPU they already are in RAM."""
        if on_device != "auto":
            return bool(on_device)
        if self.device.type != "cuda":
            return True
        free, _ = torch.cuda.mem_get_info(self.device)
        return images.nbytes < MAX_GPU_SHARE * free

    def steps_per_epoch(self, batch_size: int) -> int:
        """One critic pass over the train split (at least one step)."""
        return max(len(self.images) // int(batch_size), 1)

    def sample_index(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """`n` random indices of training images, where the images are; the global RNG unless `generator`."""
        rng_device = self.images.device if generator is None else generator.device
        index = torch.randint(len(self.images), (n,), device=rng_device, generator=generator)
        return index.to(self.images.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` random training images in [-1, 1] on self.device; the global RNG unless `generator` is given."""
        return to_inputs(self.images[self.sample_index(n, generator)].to(self.device, non_blocking=True))

    def sample_labelled(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What `sample` draws, with each image's label."""
        index = self.sample_index(n, generator)
        return (to_inputs(self.images[index].to(self.device, non_blocking=True)),
                self.labels[index].to(self.device, non_blocking=True))

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The labels of `n` random training images: the classes as the data has them."""
        return self.labels[self.sample_index(n, generator)].to(self.device, non_blocking=True)

    def require_labels(self, why: str) -> int:
        """The number of classes; one line saying how to get labels when this dataset has none."""
        if self.labels is not None:
            return self.num_classes
        if self.name == "folder":
            raise LipbenchError(f"{why} needs class labels, and dataset.path={self.path} has no class subfolders: put "
                                "each class's images in a subfolder of its own (dataset.path/<class>/..., at least 2, "
                                f"no images at the top level), then delete {self.cache_dir}")
        raise LipbenchError(f"{why} needs class labels, and dataset={self.name} is read without any: use "
                            "dataset=digits, mnist, cifar10, or folder with one subfolder per class")

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 CPU images and labels of the "train" or "test" split, decoded once and then read from the cache."""
        if name not in ("train", "test"):
            raise LipbenchError(f"split {name!r} is unknown: use train or test")
        channels, size, _ = self.shape
        crop = f"_crop{self.crop}" if self.crop else ""
        cache = self.cache_dir / f"{self.name}_{name}_{channels}x{size}{crop}.pt"
        data, _ = cached(cache, lambda: self.decode(name), torch.save, self.load_split)
        return data["images"], data["labels"]

    def decode(self, split: str) -> dict:
        """A split read from the dataset's own files by its format's reader, checked against the configured shape."""
        images, labels = self.READERS[self.name](self, split)
        if images.shape[1:] != self.shape:
            raise LipbenchError(f"dataset={self.name}: images are {tuple(images.shape[1:])} (C, H, W) but "
                                f"dataset.channels/dataset.image_size ask for {self.shape}: fix those keys")
        return {"images": images, "labels": labels}

    def load_split(self, path: Path) -> dict:
        """A cached split; raises on a file that is not what `decode` wrote (`cached` names it and says delete it)."""
        data = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = data["images"], data["labels"]
        if not (images.dtype == torch.uint8 and images.ndim == 4 and images.shape[1:] == self.shape):
            raise ValueError(f"it holds {images.dtype} {tuple(images.shape)}, not uint8 images of {self.shape}")
        if labels is not None and labels.shape != images.shape[:1]:
            raise ValueError(f"it holds {len(labels)} labels for {len(images)} images")
        return data

    def default_metric(self, device) -> str:
        """FID on CUDA; on CPU the cheaper classifier-feature distance when there are labels to train it on."""
        if torch.device(device).type == "cuda" or self.labels is None:
            return "fid"
        return "fd_classifier"

    # One reader per on-disk format (READERS, at the end of the class, maps dataset names to them).

    def read_mnist(self, split: str):
        """torchvision's MNIST (root/MNIST/raw IDX files), 28x28 zero-padded to image_size (28 or 32)."""
        size = self.shape[1]
        if size not in (28, 32):
            raise LipbenchError(f"dataset.image_size={size} is unsupported for mnist: use 32 (padded) or 28")
        prefix = "train" if split == "train" else "t10k"
        raw = self.root / "MNIST" / "raw"
        image_file, label_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
        if self.download and not (image_file.exists() and label_file.exists()):
            torchvision.datasets.MNIST(self.root, train=split == "train", download=True)
        require_files("mnist", [image_file, label_file], f"put the unpacked MNIST IDX files in {raw}")
        # Read here rather than through torchvision's MNIST, so that a damaged file is named.
        fix = "delete it and run with dataset.download=true to fetch it again, or replace it with an intact copy"
        images, labels = read_idx(image_file, read_image_file, fix), read_idx(label_file, read_label_file, fix)
        if len(images) != len(labels):
            raise LipbenchError(f"{image_file} holds {len(images)} images but {label_file} {len(labels)} labels: "
                                "delete both and run with dataset.download=true to fetch them again")
        pad = (size - 28) // 2
        return F.pad(images[:, None], (pad, pad, pad, pad)), labels

    def read_cifar10(self, split: str):
        """CIFAR-10 python pickles, read as torchvision does; torchvision only downloads them.

        torchvision's CIFAR10 insists on the md5 of every official file, so any other copy in the same format
        (a subset, a re-pickled mirror) fails with a generic message; reading the pickles ourselves keeps one
        code path and lets us name the missing file.
        """
        if self.shape[1] != 32:
            raise LipbenchError(f"dataset.image_size={self.shape[1]} is unsupported for cifar10: use 32")
        folder = self.root / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        if self.download:
            torchvision.datasets.CIFAR10(self.root, download=True)
        require_files("cifar10", [folder / n for n in names],
                      f"download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it in {self.root}")
        images, labels = [], []
        for name in names:
            with open(folder / name, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            images.append(torch.from_numpy(np.asarray(entry["data"], dtype=np.uint8)).reshape(-1, 3, 32, 32))
            labels += entry["labels"]
        return torch.cat(images), torch.tensor(labels, dtype=torch.int64)

    def read_celeba(self, split: str):
        """Aligned CelebA in torchvision's layout, centre-cropped to `crop` and resized; the official partition.

        torchvision's CelebA also requires the attribute, identity, bbox and landmark files (md5-checked) that
        an unconditional GAN never reads, so only img_align_celeba/ and list_eval_partition.txt are needed here.
        """
        folder = self.root / "celeba"
        partition = folder / "list_eval_partition.txt"
        if self.download:
            torchvision.datasets.CelebA(self.root, split="all", target_type=[], download=True)
        require_files("celeba", [folder / "img_align_celeba", partition],
                      f"get img_align_celeba.zip and list_eval_partition.txt from the CelebA site into {folder}")
        wanted = "0" if split == "train" else "2"  # 0 train, 1 valid, 2 test
        files = [folder / "img_align_celeba" / line.split()[0]
                 for line in partition.read_text().splitlines() if line.split()[1:] == [wanted]]
        require_files("celeba", files, f"unpack img_align_celeba.zip in {folder}")
        fix = f"unpack img_align_celeba.zip in {folder} again (or download it again if that fails)"
        return read_images(files, self.shape[1], self.shape[0], self.crop, fix), None

    @cached_property
    def folder_images(self) -> list[Path]:
        """Every image file under dataset.path (by extension, recursively, sorted); the other files are counted by
        kind in one log line (a warning for files that are neither images nor OS metadata)."""
        images, metadata, others = [], 0, Counter()
        for path in sorted(self.path.rglob("*")):
            parts = path.relative_to(self.path).parts
            if parts[0] == CACHE_DIR_NAME or path.is_dir():
                continue
            # Hidden files first: macOS copies leave "._name.jpg" resource forks that are not images.
            if any(part.startswith(".") for part in parts) or path.name.lower() in METADATA_FILES:
                metadata += 1
            elif path.suffix.lower() in IMG_EXTENSIONS:
                images.append(path)
            else:
                others[path.suffix.lower() or "without extension"] += 1
        if not images:
            raise LipbenchError(f"dataset.path={self.path} holds no images ({', '.join(IMG_EXTENSIONS)})")
        if others:
            kinds = ", ".join(f"{n} {kind}" for kind, n in others.most_common())
            also = f", and {metadata} hidden or OS metadata files" if metadata else ""
            count = others.total()
            warn(f"dataset.path={self.path}: skipped {count} file{'s' * (count > 1)} that are not images: {kinds}"
                 f"{also} (read: {', '.join(IMG_EXTENSIONS)})")
        elif metadata:
            log.info(f"dataset.path={self.path}: skipped {metadata} hidden or OS metadata files")
        return images

    def folder_classes(self) -> list[str] | None:
        """The class names of a folder with one subfolder per class (torchvision ImageFolder's layout: the first-level
        subfolder of each image, sorted), or None when an image lies at the top level or there are fewer than 2."""
        tops = [path.relative_to(self.path).parts for path in self.folder_images]
        if any(len(parts) == 1 for parts in tops):
            return None
        classes = sorted({parts[0] for parts in tops})
        return classes if len(classes) >= 2 else None

    def read_folder(self, split: str):
        """Every image file under dataset.path (recursively), centre-cropped to a square and resized; labelled by
        its class subfolder when the folder has one subfolder per class."""
        keep = holdout(len(self.folder_images), split)
        files = [self.folder_images[i] for i in keep]  # only this split's files
        fix = f"replace it with an intact image or remove it from dataset.path={self.path}"
        images = read_images(files, self.shape[1], self.shape[0], self.crop, fix)
        classes = self.folder_classes()
        if classes is None:
            return images, None
        index = {name: label for label, name in enumerate(classes)}
        return images, torch.tensor([index[path.relative_to(self.path).parts[0]] for path in files], dtype=torch.int64)

    def read_digits(self, split: str):
        """scikit-learn's bundled 8x8 digits (values 0..16), bilinearly upscaled to image_size."""
        from sklearn.datasets import load_digits  # only this dataset needs scikit-learn

        digits = load_digits()
        pixels = torch.from_numpy(digits.images).float()[:, None] * (255 / 16)
        images = F.interpolate(pixels, size=self.shape[1], mode="bilinear", align_corners=False)
        keep = holdout(len(images), split)
        return images[keep].round().clamp(0, 255).to(torch.uint8), torch.from_numpy(digits.target)[keep].long()

    # Dataset name -> reader; each returns uint8 [N, C, H, W] images and int64 labels (or None) of a split.
    READERS = {"mnist": read_mnist, "cifar10": read_cifar10, "celeba": read_celeba, "folder": read_folder,
               "digits": read_digits}
