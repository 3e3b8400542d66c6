"""Image datasets read from small fixtures in the real on-disk formats, decoded once and cached."""
import logging
import shutil

import numpy as np
import pytest
import torch

from lipbench.cli import user_error
from lipbench.config import build
from lipbench.data import ImageSource
from tests.conftest import composed
from tests.image_files import link_mnist, write_celeba, write_cifar10, write_folder


def dataset(*overrides: str, device="cpu"):
    """The dataset that `lipbench OVERRIDES...` would build."""
    return build(composed(*overrides), "dataset", device=device)


def user_error_of(*overrides: str) -> str:
    """The one-line LipbenchError message the CLI would print for these overrides (Hydra wraps the error)."""
    with pytest.raises(Exception) as error:
        dataset(*overrides)
    found = user_error(error.value)
    assert found is not None, f"not a LipbenchError: {error.value!r}"
    return str(found)


# name -> (write the raw files, overrides, (C, H, W), train count, test count)
FORMATS = {
    "cifar10": (write_cifar10, [], (3, 32, 32), 15, 2),
    "celeba": (write_celeba, [], (3, 64, 64), 3, 2),
    "folder": (write_folder, ["dataset.image_size=16"], (3, 16, 16), 8, 2),
    "mnist": (link_mnist, [], (1, 32, 32), 60000, 10000),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_loads_once_then_from_cache(name, tmp_path, request):
    """Right shape, count and range; the cache is written, and a second load works without the raw files."""
    write, overrides, shape, n_train, n_test = FORMATS[name]
    raw = write(tmp_path, request.getfixturevalue("shared")) if name == "mnist" else write(tmp_path)
    location = f"dataset.path={raw}" if name == "folder" else f"dataset.root={tmp_path}"
    data = dataset(f"dataset={name}", location, *overrides)
    assert isinstance(data, ImageSource) and data.name == name and data.shape == shape
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape) == (n_train, *shape)
    assert data.steps_per_epoch(4) == max(n_train // 4, 1)
    test_images, test_labels = data.split("test")
    assert tuple(test_images.shape) == (n_test, *shape)
    assert (test_labels is None) == (data.labels is None) == (data.num_classes is None)
    batch = data.sample(7)
    assert batch.dtype == torch.float32 and tuple(batch.shape) == (7, *shape)
    assert -1.0 <= batch.min() and batch.max() <= 1.0
    caches = sorted(p.name for p in data.cache_dir.glob("*.pt"))
    assert len(caches) == 2 and caches[0].startswith(f"{name}_test_") and caches[1].startswith(f"{name}_train_")

    # The raw files are gone: only the cache can serve the second load.
    raw.unlink() if raw.is_symlink() else shutil.rmtree(raw if name != "folder" else raw / "more")
    again = dataset(f"dataset={name}", location, *overrides)
    assert torch.equal(again.images, data.images)


def test_cifar10_pixels_and_labels_follow_the_pickle_layout(tmp_path):
    """Each 3072-byte row is the R, G and B planes of a 32x32 image, row-major; labels come from 'labels'."""
    write_cifar10(tmp_path)
    data = dataset("dataset=cifar10", f"dataset.root={tmp_path}")
    expected = torch.from_numpy((np.arange(3 * 3072).reshape(3, 3, 32, 32)) % 256).to(torch.uint8)
    assert torch.equal(data.images[:3], expected)
    assert data.labels.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]
    assert data.split("test")[1].tolist() == [5, 6]


def test_celeba_is_centre_cropped_to_140_then_resized(tmp_path):
    """The white 140x140 centre fills the whole 64x64 image; without the crop the black border would show."""
    write_celeba(tmp_path)
    cropped = dataset("dataset=celeba", f"dataset.root={tmp_path}").images.float()
    assert cropped.mean() > 250
    whole = dataset("dataset=celeba", f"dataset.root={tmp_path}", "dataset.crop=null").images.float()
    assert 130 < whole.mean() < 190  # (140/178)^2 of 255 is about 158


def test_mnist_is_zero_padded_to_32(tmp_path, shared):
    """The 2-pixel border added around the 28x28 digits is background (-1 after scaling)."""
    link_mnist(tmp_path, shared)
    data = dataset("dataset=mnist", f"dataset.root={tmp_path}")
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert data.images[:, :, border].max() == 0 and data.images.max() == 255
    assert data.num_classes == 10 and sorted(data.labels.unique().tolist()) == list(range(10))


def test_digits_needs_no_files_and_has_a_fixed_split(tmp_path):
    """sklearn's 1,797 digits: 1,438 train + 359 test, disjoint, the same on every load; 16 or 32 pixels."""
    data = dataset("dataset=digits", f"dataset.root={tmp_path}")
    assert data.shape == (1, 32, 32) and len(data.images) == 1438 and data.num_classes == 10
    test_images, test_labels = data.split("test")
    assert len(test_images) == 359 and len(test_labels) == 359
    # Disjoint: no test image equals a training image (the digits hold no exact duplicates at this size).
    train_set = {bytes(x.numpy()) for x in data.images}
    assert not any(bytes(x.numpy()) in train_set for x in test_images)
    assert data.images.min() == 0 and data.images.max() == 255
    assert data.cache_dir == tmp_path / "digits"
    small = dataset("dataset=digits", f"dataset.root={tmp_path}", "dataset.image_size=16")
    assert small.shape == (1, 16, 16) and torch.equal(small.labels, data.labels)


def test_digits_second_load_reads_the_cache(tmp_path):
    """A changed cache file is what the next load returns: nothing is decoded again."""
    data = dataset("dataset=digits", f"dataset.root={tmp_path}")
    cache = tmp_path / "digits" / "digits_train_1x32.pt"
    torch.save({"images": data.images[:10].flip(0), "labels": data.labels[:10]}, cache)
    again = dataset("dataset=digits", f"dataset.root={tmp_path}")
    assert torch.equal(again.images, data.images[:10].flip(0))


def test_sample_uses_the_given_generator_or_the_global_rng(tmp_path):
    """An explicit generator makes batches reproducible without touching the global RNG; exact [-1, 1] range."""
    data = dataset("dataset=digits", f"dataset.root={tmp_path}", "dataset.image_size=16")
    torch.manual_seed(0)
    first = data.sample(500)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = data.sample(5, generator=torch.Generator().manual_seed(3))
    b = data.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    assert torch.equal(data.sample(500), first)
    assert first.min() == -1.0 and first.max() == 1.0


@pytest.mark.parametrize("name, missing", [
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ("celeba", "celeba/img_align_celeba"),
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
])
def test_missing_files_give_one_line_naming_the_path(name, missing, tmp_path):
    """An empty root: the message names the expected file and the keys that fix it."""
    message = user_error_of(f"dataset={name}", f"dataset.root={tmp_path}")
    assert "\n" not in message and f"dataset={name}" in message
    assert str(tmp_path / missing) in message and "dataset.root=" in message and "dataset.download=true" in message


def test_missing_celeba_image_is_named(tmp_path):
    """A partition file listing an image that is not there names that image."""
    folder = write_celeba(tmp_path)
    (folder / "img_align_celeba" / "000004.jpg").unlink()
    assert "img_align_celeba/000004.jpg not found" in user_error_of("dataset=celeba", f"dataset.root={tmp_path}")


def test_folder_errors_name_dataset_path(tmp_path):
    """A missing directory and one without images are both reported against dataset.path."""
    assert user_error_of("dataset=folder").startswith("dataset.path=None is not a directory: set dataset.path=")
    message = user_error_of("dataset=folder", f"dataset.path={tmp_path / 'nowhere'}")
    assert message.startswith(f"dataset.path={tmp_path / 'nowhere'} is not a directory")
    assert user_error_of("dataset=folder", f"dataset.path={tmp_path}").startswith(f"dataset.path={tmp_path} holds no")


def test_config_that_does_not_match_the_data_is_rejected(tmp_path):
    """dataset.channels=3 on the grayscale digits names the keys to fix; no cache is written for it."""
    message = user_error_of("dataset=digits", f"dataset.root={tmp_path}", "dataset.channels=3")
    assert "(1, 32, 32)" in message and "dataset.channels/dataset.image_size ask for (3, 32, 32)" in message
    assert not list((tmp_path / "digits").glob("*.pt"))
    message = user_error_of("dataset=digits", f"dataset.root={tmp_path}", "dataset.on_device=maybe")
    assert message.startswith("dataset.on_device='maybe' is invalid")


def test_default_metric(tmp_path):
    """FID on CUDA; on CPU the classifier feature distance when labels exist, FID when they do not."""
    digits = dataset("dataset=digits", f"dataset.root={tmp_path}", "dataset.image_size=16")
    assert digits.default_metric("cpu") == "fd_classifier" and digits.default_metric("cuda") == "fid"
    write_celeba(tmp_path)
    assert dataset("dataset=celeba", f"dataset.root={tmp_path}").default_metric("cpu") == "fid"


@pytest.fixture
def logged(caplog):
    """The (level, message) lines lipbench logs during the test."""
    caplog.set_level(logging.INFO, logger="lipbench")
    return lambda: [(r.levelno, r.getMessage()) for r in caplog.records]


def skip_lines(lines) -> list[tuple[int, str]]:
    return [(level, message) for level, message in lines if "skipped" in message]


def test_a_folder_says_which_files_it_skipped(tmp_path, logged):
    """Files that are not images are counted by kind in one warning; hidden files and OS metadata (a macOS "._" fork
    named like a JPEG among them) are skipped, not decoded; lipbench's own cache inside the folder is not counted."""
    folder = write_folder(tmp_path)  # ten images and notes.txt
    (folder / "labels.json").write_text("{}")
    (folder / "more" / "README").write_text("about these pictures")
    (folder / "more" / "captions.txt").write_text("a red rectangle")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "._img0.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    data = dataset("dataset=folder", f"dataset.path={folder}", "dataset.image_size=16")
    assert len(data.images) == 8  # the ten images less the 20% test split
    ((level, message),) = skip_lines(logged())
    assert level == logging.WARNING
    assert (f"dataset.path={folder}: skipped 4 files that are not images: 2 .txt, 1 .json, 1 without extension, "
            "and 3 hidden or OS metadata files") in message

    assert list((folder / "lipbench_cache").glob("*.pt"))
    dataset("dataset=folder", f"dataset.path={folder}", "dataset.image_size=8")  # decoded again: the same count
    assert [m for _, m in skip_lines(logged())] == [message, message]


def test_a_folder_with_only_hidden_extras_says_so_without_a_warning(tmp_path, logged):
    folder = write_folder(tmp_path)
    (folder / "notes.txt").unlink()
    (folder / ".DS_Store").write_bytes(b"")
    dataset("dataset=folder", f"dataset.path={folder}", "dataset.image_size=16")
    assert skip_lines(logged()) == [(logging.INFO, f"dataset.path={folder}: skipped 1 hidden or OS metadata files")]
