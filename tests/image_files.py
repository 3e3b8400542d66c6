"""Small image datasets written in their real on-disk formats (CIFAR-10 pickles, aligned CelebA, a folder of mixed
files, MNIST IDX files), and the real MNIST linked from ../shared, for the dataset loaders and end-to-end runs."""
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_cifar10(root: Path) -> Path:
    """cifar-10-batches-py with 3 images per training batch and 2 test images; pixel value = index mod 256."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        n = 2 if name == "test_batch" else 3
        data = (np.arange(n * 3072).reshape(n, 3072) + b) % 256
        batch = {"batch_label": name, "labels": [(b + i) % 10 for i in range(n)],
                 "data": data.astype(np.uint8), "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"num_cases_per_batch": 3, "label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def face(value: int) -> Image.Image:
    """A 178x218 aligned-CelebA-sized image: the centred 140x140 square is `value`, the rest black."""
    pixels = np.zeros((218, 178, 3), dtype=np.uint8)
    pixels[39:179, 19:159] = value
    return Image.fromarray(pixels)


def write_celeba(root: Path) -> Path:
    """celeba/img_align_celeba/*.jpg and list_eval_partition.txt: 3 train, 1 valid, 2 test images."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    partitions = [0, 0, 1, 0, 2, 2]
    for i in range(len(partitions)):
        face(255).save(folder / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=100)
    lines = [f"{i + 1:06d}.jpg {p}" for i, p in enumerate(partitions)]
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_folder(root: Path) -> Path:
    """Ten images of mixed formats, sizes and modes, some in a subfolder; plus a file that is not an image."""
    folder = root / "pictures"
    (folder / "more").mkdir(parents=True)
    for i in range(10):
        size = (20 + 3 * i, 30)
        Image.new("RGB" if i % 2 else "L", size, color=(200, 10, 10) if i % 2 else 128).save(
            folder / ("more" if i > 6 else "") / f"img{i}.{'png' if i % 3 else 'jpg'}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def write_mnist(root: Path, n_train: int = 12, n_test: int = 4) -> Path:
    """root/MNIST/raw with small IDX files (big-endian magic and sizes, then uint8 data): image k is all k*20 mod
    256, labelled k mod 10."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        pixels = np.repeat(np.arange(n, dtype=np.uint8) * 20, 28 * 28)
        header = struct.pack(">IIII", 0x803, n, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + pixels.tobytes())
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
    return raw


def link_mnist(root: Path, shared: Path) -> Path:
    """root/MNIST/raw pointing at the shared MNIST IDX files (so the cache lands in root, not in shared)."""
    (root / "MNIST").mkdir(parents=True)
    (root / "MNIST" / "raw").symlink_to(shared / "data" / "MNIST" / "raw")
    return root / "MNIST" / "raw"


def write_dataset(name: str, root: Path, shared: Path) -> list[str]:
    """Write (or link) `name`'s files under `root`; the overrides that point lipbench at them."""
    if name == "toy2d":
        return []
    if name == "folder":
        return [f"dataset.path={write_folder(root)}"]
    {"cifar10": write_cifar10, "celeba": write_celeba, "mnist": lambda r: link_mnist(r, shared)}.get(
        name, lambda r: None)(root)
    return [f"dataset.root={root}"]
