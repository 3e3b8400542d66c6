"""Classifier FD: the cached classifier, Fréchet distances on its features, racing sweep jobs, the evaluator."""
import multiprocessing

import pytest
import torch
from PIL import Image

from lipbench import LipbenchError
from lipbench.data import ImageSource
from lipbench.metrics import build_metric
from lipbench.metrics.classifier import ClassifierFeatures
from lipbench.metrics.frechet import frechet_distance, reference_statistics, statistics
from tests.image_standin import DigitsImages, TinyGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 300  # ~1 s on a CPU core, and > 80% test accuracy on sklearn digits


def test_the_standin_follows_the_image_dataset_interface(tmp_path):
    assert isinstance(DigitsImages(tmp_path), ImageSource)


def test_classifier_trains_once_deterministically_and_is_accurate(tmp_path):
    """First use trains and caches with its test accuracy; later uses load; a fresh cache retrains identically."""
    dataset = DigitsImages(tmp_path / "a")
    first = ClassifierFeatures(dataset, "cpu", STEPS)
    second = ClassifierFeatures(dataset, "cpu", STEPS)
    assert first.computed and not second.computed
    assert 0.8 < first.test_accuracy <= 1 and second.test_accuracy == first.test_accuracy  # chance is 0.1
    assert first.protocol["classifier_test_accuracy"] == first.test_accuracy
    retrained = ClassifierFeatures(DigitsImages(tmp_path / "b"), "cpu", STEPS)
    assert retrained.computed and retrained.name == first.name  # the name is a digest of the weights file
    images = dataset.split("test")[0][:5]
    assert first(images).shape == (5, 128) and torch.equal(first(images), second(images))


def test_distance_to_itself_real_and_noise(tmp_path):
    """A set against itself is ~0; other real digits are far closer than uniform noise."""
    dataset = DigitsImages(tmp_path)
    features = ClassifierFeatures(dataset, "cpu", STEPS)
    test_images = dataset.split("test")[0]
    reference, _ = reference_statistics(dataset, "test", len(test_images), features, batch_size=100)
    same = statistics(features, [test_images.flip(0)])
    other = statistics(features, [dataset.split("train")[0][:len(test_images)]])
    noise = statistics(features, [torch.randint(0, 256, test_images.shape, dtype=torch.uint8,
                                                generator=torch.Generator().manual_seed(0))])
    assert frechet_distance(same, reference) == pytest.approx(0, abs=1e-4)
    assert 0 < 5 * frechet_distance(other, reference) < frechet_distance(noise, reference)


def race_worker(cache_dir):
    """One 'sweep job': the classifier and the reference statistics, both from the shared cache dir."""
    torch.set_num_threads(1)
    dataset = DigitsImages(cache_dir)
    features = ClassifierFeatures(dataset, "cpu", STEPS)
    stats, computed = reference_statistics(dataset, "train", 500, features, batch_size=100)
    return features.computed, computed, stats.mu


@pytest.mark.slow
def test_two_racing_jobs_compute_once(tmp_path):
    """Two processes asking for the same classifier and statistics at once: one computes, the other loads."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        (trained_a, stats_a, mu_a), (trained_b, stats_b, mu_b) = pool.map(race_worker, [tmp_path, tmp_path])
    assert trained_a != trained_b and stats_a != stats_b
    assert (mu_a == mu_b).all()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert race_worker(tmp_path)[:2] == (False, False)


def test_unlabelled_dataset_is_one_line_error(tmp_path):
    """Without labels there is nothing to train the classifier on: the error points to metric=fid."""
    with pytest.raises(LipbenchError, match="use metric=fid") as error:
        build_metric({"name": "fd_classifier"}, DigitsImages(tmp_path, labelled=False), "cpu", seed=0)
    assert "\n" not in str(error.value)


def test_auto_evaluator_end_to_end(tmp_path):
    """metric=auto on CPU with labels is the classifier FD: its value, protocol, sample grid; global RNG untouched."""
    dataset = DigitsImages(tmp_path / "cache")
    generator = TinyGenerator(dataset.shape).eval()
    rng_before = torch.get_rng_state()
    settings = {"num_samples": 200, "batch_size": 64, "train_steps": STEPS}
    evaluator = build_metric({"name": "auto", "fd_classifier": settings}, dataset, "cpu", seed=1)
    scalars, images = evaluator(generator, None, epoch=3, run_dir=tmp_path / "run")
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert evaluator.primary == "fd_classifier" and scalars["fd_classifier"] > 0
    assert scalars["fd_classifier_num_generated"] == 200 and scalars["fd_classifier_num_reference"] == 200
    assert evaluator.protocol["fd_classifier/classifier_test_accuracy"] > 0.8
    assert evaluator(generator, None, epoch=3, run_dir=tmp_path / "run")[0] == scalars  # own seeded noise
    with Image.open(images["samples"]) as grid:
        assert images["samples"].name == "samples_epoch_0003.png" and grid.format == "PNG"
