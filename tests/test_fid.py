"""FID through the real pytorch-fid code and weights: distances, the reference cache, offline errors, the evaluator."""
import urllib.error
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from lipbench import LipbenchError
from lipbench.metrics import build_metric
from lipbench.metrics.fid import InceptionFeatures, hub_weights, write_random_inception
from lipbench.metrics.frechet import Stats, frechet_distance, reference_statistics, statistics
from tests.image_standin import DigitsImages, TinyGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

# Inception runs at 299x299 whatever the input: a few images per set keep this file fast on CPU.
N = 10


@pytest.fixture
def weights(shared):
    """The shared FID Inception weights file."""
    return shared / "weights" / "pt_inception-2015-12-05-6726825d.pth"


@pytest.mark.slow
def test_cached_reference_and_self_distance(tmp_path, weights):
    """The reference stats are computed once, then loaded; a set against itself is ~0 (each 2048-d FD costs ~20 s)."""
    dataset = DigitsImages(tmp_path, num_train=1797 - N)  # the test split is exactly N images
    inception = InceptionFeatures(weights, "cpu")
    reference, computed = reference_statistics(dataset, "test", N, inception, batch_size=4)
    again, computed_again = reference_statistics(dataset, "test", N, inception, batch_size=4)
    assert computed and not computed_again
    assert (again.mu == reference.mu).all() and (again.sigma == reference.sigma).all()
    # The same images in another order and batching: the cached reference and a fresh extraction agree.
    same = statistics(inception, [dataset.split("test")[0].flip(0)])
    assert frechet_distance(same, reference) == pytest.approx(0, abs=1e-2)


def test_missing_weights_offline_is_one_line(tmp_path, monkeypatch):
    """No local file, an empty hub cache and no network: one line naming the hub path and metric.fid.weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "urlopen", offline)  # fake the network only; pytorch-fid and torch.hub run as-is
    with pytest.raises(LipbenchError) as error:
        InceptionFeatures(None, "cpu")
    message = str(error.value)
    assert "\n" not in message and str(hub_weights()) in message and "metric.fid.weights" in message
    assert str(tmp_path / "torch") in message
    with pytest.raises(LipbenchError, match="metric.fid.weights="):
        InceptionFeatures(tmp_path / "missing.pth", "cpu")


@pytest.mark.slow
def test_fid_evaluator_end_to_end(tmp_path, weights):
    """build_metric('fid'): a random generator is far from digits; protocol, sample grid, global RNG left alone."""
    dataset = DigitsImages(tmp_path / "cache", num_train=1797 - N)
    generator = TinyGenerator(dataset.shape).eval()
    rng_before = torch.get_rng_state()
    settings = {"weights": str(weights), "num_samples": N, "batch_size": 4, "split": "test"}
    evaluator = build_metric({"name": "fid", "fid": settings}, dataset, "cpu", seed=3)
    scalars, images = evaluator(generator, None, epoch=7, run_dir=tmp_path / "run")
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert evaluator.primary == "fid" and 100 < scalars["fid"] < 2000
    assert scalars["fid_num_generated"] == N and scalars["fid_num_reference"] == N
    assert evaluator.protocol["fid/weights"] == str(weights) and evaluator.protocol["fid/split"] == "test"
    assert images["samples"] == tmp_path / "run" / "figures" / "samples_epoch_0007.png"
    with Image.open(images["samples"]) as grid:
        # An 8x8 grid of 8-px tiles (82 px) drawn at least 4x larger, so small samples are visible.
        assert grid.format == "PNG" and min(grid.size) >= 4 * (2 + 8 * (8 + 2))


def test_frechet_distance_matches_the_closed_form_and_pytorch_fid():
    """Diagonal covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2. pytorch-fid's own function gives the same where this
    scipy still takes its `disp` argument."""
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=16), rng.normal(size=16)
    var_a, var_b = rng.uniform(0.5, 2, 16), rng.uniform(0.5, 2, 16)
    a, b = Stats(mu_a, np.diag(var_a)), Stats(mu_b, np.diag(var_b))
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    singular = Stats(mu_b, np.diag(np.r_[var_b[:-1], 0.0]))  # a constant feature
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's LinAlgWarning stays out of a run's output
        assert frechet_distance(a, singular) == pytest.approx(
            ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(np.r_[var_b[:-1], 0.0])) ** 2).sum(), rel=1e-6)
    full = rng.normal(size=(16, 16))
    c = Stats(mu_b, full @ full.T / 16 + np.eye(16))
    try:
        theirs = calculate_frechet_distance(a.mu, a.sigma, c.mu, c.sigma)
    except TypeError:  # a scipy whose sqrtm() no longer takes `disp`
        pytest.skip("this scipy's sqrtm refuses pytorch-fid's disp argument")
    assert frechet_distance(a, c) == pytest.approx(theirs, rel=1e-9)


def test_random_inception_weights_load_as_pytorch_fids_network(tmp_path):
    """`make bench --fid-weights random` and the GPU tests: pytorch-fid's architecture, loadable by its own code, with
    features that vary (not the ~1e-8 of torchvision's training init)."""
    weights = write_random_inception(tmp_path / "random_inception.pth")
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features = InceptionFeatures(weights, "cpu")(images)
    assert features.shape == (2, 2048) and 0.01 < features.std() < 100
