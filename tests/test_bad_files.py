"""Damaged data and cache files: each stops the run before any training with one line that names the file and says
what to do, never a traceback or a hang. A table of cases, each also run through the real CLI (slow)."""
import json
import warnings

import numpy as np
import pytest
import torch
from hydra.utils import get_method

from lipbench import LipbenchError
from lipbench.cli import user_error
from lipbench.metrics.classifier import SmallCNN
from lipbench.metrics.frechet import Stats, frechet_distance
from lipbench.training import build_method
from tests.conftest import SHARED, composed, lipbench, run_dirs
from tests.image_files import write_celeba, write_folder, write_mnist

REDOWNLOAD = "dataset.download=true"
DELETE = "delete it"
UNPACK = "unpack img_align_celeba.zip"
REPLACE = "replace it with an intact image"
FID_WEIGHTS = SHARED / "weights" / "pt_inception-2015-12-05-6726825d.pth"
# A cheap metric for the cases that reach it: a classifier trained for a few steps, a small reference set.
CHEAP_FD = ["metric=fd_classifier", "metric.fd_classifier.train_steps=5", "metric.fd_classifier.num_samples=50",
            "metric.fd_classifier.batch_size=50"]


def build_task(*overrides: str):
    """What `lipbench OVERRIDES...` builds before its first step (dataset, networks, metric), on the CPU."""
    cfg = composed(*overrides)
    return get_method(cfg.task.build)(cfg, build_method(cfg), torch.device("cpu"))


def truncate(path, keep: float = 0.5) -> None:
    """Cut `path` to `keep` of its size, as an interrupted download or copy leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


# Each damage writes a dataset under `root`, damages one file and returns (the overrides that read it, that file).

def mnist(file: str, damage):
    def write(root):
        raw = write_mnist(root)
        damage(raw / file)
        return ["dataset=mnist", f"dataset.root={root}"], raw / file
    return write


def celeba(name: str, damage):
    def write(root):
        path = write_celeba(root) / "img_align_celeba" / name
        damage(path)
        return ["dataset=celeba", f"dataset.root={root}"], path
    return write


def folder(name: str, damage):
    def write(root):
        folder = write_folder(root)
        damage(folder / name)
        return ["dataset=folder", f"dataset.path={folder}", "dataset.image_size=16"], folder / name
    return write


def digits_cache(damage):
    """The decoded digits train split, cached by a first good build, then damaged."""
    def write(root):
        overrides = ["dataset=digits", f"dataset.root={root}", *CHEAP_FD]
        build_task(*overrides)
        path = root / "digits" / "digits_train_1x32.pt"
        damage(path)
        return overrides, path
    return write


def metric_cache(pattern: str, damage):
    """A file the classifier FD caches beside the data (its classifier, its reference statistics), damaged."""
    def write(root):
        overrides = ["dataset=digits", f"dataset.root={root}", *CHEAP_FD]
        build_task(*overrides)
        (path,) = (root / "digits").glob(pattern)
        damage(path)
        return overrides, path
    return write


def garbage(path) -> None:
    path.write_bytes(b"\x00\x01not what was written here" * 40)


def empty(path) -> None:
    path.write_bytes(b"")


def text(path) -> None:
    path.write_text("this is not an image, whatever its name says")


def swap_for_floats(path) -> None:
    torch.save({"images": torch.zeros(3, 1, 32, 32), "labels": None}, path)


def fewer_labels(path) -> None:
    """A labels file of another length than the images file next to it."""
    data = path.read_bytes()
    path.write_bytes(data[:4] + (5).to_bytes(4, "big") + data[8:13])


def nan_weights(path) -> None:
    state = SmallCNN(1, 10).state_dict()
    state["head.bias"][0] = float("nan")
    torch.save({"state_dict": state, "test_accuracy": 0.5}, path)


def nan_statistics(path) -> None:
    with np.load(path) as f:
        mu, sigma = f["mu"], f["sigma"].copy()
    sigma[0, 0] = np.nan
    with open(path, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma)


def one_image_folder(root):
    """A folder of a single image: its covariance would be NaN, which kept scipy's sqrtm busy for over 900 s."""
    folder = write_folder(root)
    for path in folder.rglob("*"):
        if path.is_file() and path.name != "img0.jpg":
            path.unlink()
    return ["dataset=folder", f"dataset.path={folder}", "dataset.image_size=16", "metric=fid",
            f"metric.fid.weights={FID_WEIGHTS}"], "metric.fid.split=train"


def one_sample(root):
    return ["dataset=digits", f"dataset.root={root}", *CHEAP_FD, "metric.fd_classifier.num_samples=1"], \
        "metric.fd_classifier.num_samples=1"


needs_fid_weights = pytest.mark.skipif(not FID_WEIGHTS.exists(), reason=f"{FID_WEIGHTS} not found")

# case id -> (write and damage the files under root: (overrides, the file or key the message must name), the fix
# the message must say).
BAD_FILES = [
    pytest.param(mnist("train-images-idx3-ubyte", truncate), REDOWNLOAD, id="mnist-images-truncated"),
    pytest.param(mnist("train-images-idx3-ubyte", empty), REDOWNLOAD, id="mnist-images-empty"),
    pytest.param(mnist("train-images-idx3-ubyte", text), REDOWNLOAD, id="mnist-images-not-idx"),
    pytest.param(mnist("train-labels-idx1-ubyte", lambda p: truncate(p, 0.8)), REDOWNLOAD,
                 id="mnist-labels-truncated"),
    pytest.param(mnist("train-labels-idx1-ubyte", fewer_labels), "delete both", id="mnist-labels-fewer"),
    pytest.param(celeba("000001.jpg", truncate), UNPACK, id="celeba-jpg-truncated"),
    pytest.param(celeba("000002.jpg", text), UNPACK, id="celeba-jpg-not-an-image"),
    pytest.param(celeba("000004.jpg", empty), UNPACK, id="celeba-jpg-empty"),
    pytest.param(folder("img0.jpg", truncate), REPLACE, id="folder-jpg-truncated"),
    pytest.param(folder("img1.png", empty), REPLACE, id="folder-png-empty"),
    pytest.param(folder("img3.jpg", text), REPLACE, id="folder-jpg-not-an-image"),
    pytest.param(digits_cache(garbage), DELETE, id="digits-cache-garbage"),
    pytest.param(digits_cache(truncate), DELETE, id="digits-cache-truncated"),
    pytest.param(digits_cache(empty), DELETE, id="digits-cache-empty"),
    pytest.param(digits_cache(swap_for_floats), DELETE, id="digits-cache-foreign-content"),
    pytest.param(metric_cache("*_classifier_*.pt", truncate), DELETE, id="classifier-cache-truncated"),
    pytest.param(metric_cache("*_classifier_*.pt", nan_weights), DELETE, id="classifier-cache-nan-weights"),
    pytest.param(metric_cache("*.npz", truncate), DELETE, id="reference-stats-truncated"),
    pytest.param(metric_cache("*.npz", nan_statistics), DELETE, id="reference-stats-nan"),
    pytest.param(one_image_folder, "at least 2 real images", id="folder-of-one-image", marks=needs_fid_weights),
    pytest.param(one_sample, ">= 2", id="frechet-on-one-sample"),
]


@pytest.mark.parametrize("damage, fix", BAD_FILES)
def test_a_bad_file_is_one_line_naming_it_and_the_fix(damage, fix, tmp_path, one_thread):
    overrides, named = damage(tmp_path)
    with pytest.raises(Exception) as raised:
        build_task(*overrides)
    error = user_error(raised.value)
    assert error is not None, f"not a LipbenchError: {raised.value!r}"
    message = str(error)
    assert "\n" not in message and str(named) in message and fix in message, message


@pytest.mark.slow
@pytest.mark.parametrize("damage, fix", BAD_FILES)
def test_a_bad_file_through_the_cli_exits_2_with_one_line(damage, fix, tmp_path):
    overrides, named = damage(tmp_path / "data")
    # timeout: a hang (the Fréchet distance of a NaN covariance) fails the test instead of stalling the suite.
    proc = lipbench(tmp_path, *overrides, "train.epochs=1", "logger.wandb.mode=disabled", check=False, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lipbench: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert str(named) in errors[0] and fix in errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    statuses = [json.loads((d / "summary.json").read_text()).get("status") for d in run_dirs(tmp_path / "runs")]
    assert "complete" not in statuses


def single_sample_statistics(dim: int) -> Stats:
    """The statistics of one feature vector: its covariance is all NaN (numpy divides by n - 1 = 0)."""
    x = np.random.default_rng(0).normal(size=(1, dim))
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Stats(x.mean(axis=0), np.cov(x, rowvar=False))


@pytest.mark.parametrize("case", ["one sample", "inf mean", "misshapen covariance", "other dimension"])
def test_statistics_a_frechet_distance_cannot_use_stop_before_sqrtm(case):
    """Inception-sized (2048-d): scipy's sqrtm of the NaN covariance of one sample ran past 900 s before the check."""
    dim = 2048
    good = Stats(np.zeros(dim), np.eye(dim))
    bad = {"one sample": single_sample_statistics(dim),
           "inf mean": Stats(np.full(dim, np.inf), np.eye(dim)),
           "misshapen covariance": Stats(np.zeros(dim), np.eye(dim - 1)),
           "other dimension": Stats(np.zeros(dim - 1), np.eye(dim - 1))}[case]
    with pytest.raises(LipbenchError) as error:
        frechet_distance(bad, good, "use metric.fid.num_samples=2 or more")
    assert str(error.value).endswith(": use metric.fid.num_samples=2 or more") and "\n" not in str(error.value)
