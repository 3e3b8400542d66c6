"""The claims' statistics on fixed numbers: difference of means, bootstrap interval, one-sided permutation p-value,
Hedges' g and the verdict, for two samples of runs and against a fixed reference number."""
import math

import pytest

from lipbench.report.runs import Sample, claim_test, trend_test

LOW = [1.0, 1.1, 0.9, 1.2, 1.0]    # five seeds of the side the claim expects lower
HIGH = [2.0, 2.1, 1.9, 2.2, 2.0]   # ... and of the side it expects higher


def test_a_clear_difference_is_supported_with_its_interval_p_and_effect_size():
    test = claim_test(Sample(LOW), Sample(HIGH))
    assert test.difference == pytest.approx(1.0)
    assert (test.low, test.high) == pytest.approx((0.88, 1.12), abs=1e-9)  # percentile bootstrap, seed 0
    assert test.p == pytest.approx(1 / 252)  # exact: the observed split is the most extreme of C(10, 5)
    # Hedges' g: 1.0 over the pooled std sqrt(0.013), times 1 - 3 / (4 * 8 - 1).
    assert test.g == pytest.approx(1.0 / math.sqrt(0.013) * (1 - 3 / 31), rel=1e-9)
    assert test.verdict == "supported"
    assert test.cells() == ["1", "[0.88, 1.12]", "0.00397", "7.92"]


def test_the_reverse_difference_is_not_supported():
    test = claim_test(Sample(HIGH), Sample(LOW))
    assert test.difference == pytest.approx(-1.0) and test.high < 0 and test.p == pytest.approx(1.0)
    assert test.verdict == "not supported"


def test_an_overlapping_pair_is_inconclusive():
    test = claim_test(Sample([1.0, 1.2, 0.9, 1.1, 1.0]), Sample([1.05, 0.95, 1.1, 1.0, 0.9]))
    assert test.low < 0 < test.high and test.p > 0.05
    assert test.verdict == "inconclusive"


def test_identical_sides_are_inconclusive_without_an_effect_size():
    test = claim_test(Sample([1.0] * 5), Sample([1.0] * 5))
    assert (test.difference, test.low, test.high, test.p) == (0, 0, 0, 1)
    assert test.verdict == "inconclusive" and test.cells()[3] is None


def test_three_runs_a_side_cannot_reach_significance():
    # Every run of one side below every run of the other: still p = 1/C(6, 3) = 0.05, not below 0.05.
    test = claim_test(Sample([1.0, 1.0, 1.0]), Sample([2.0, 2.0, 2.0]))
    assert test.low == test.high == 1.0 and test.p == pytest.approx(0.05)
    assert test.verdict == "inconclusive"
    assert claim_test(Sample([1.0] * 4), Sample([2.0] * 4)).verdict == "supported"  # p = 1/70


def test_a_diverged_run_counts_as_the_worst_value_of_the_comparison():
    # The expected-lower side lost two runs to divergence: each counts as 2.2, the highest value of either side.
    test = claim_test(Sample(LOW[:3], diverged=2), Sample(HIGH))
    assert test.difference == pytest.approx(2.04 - (1.0 + 1.1 + 0.9 + 2.2 + 2.2) / 5)
    assert test.low > 0 and test.p == pytest.approx(0.0833, abs=1e-3)
    assert test.verdict == "inconclusive"  # two diverged runs of five leave the claim unsettled
    # On the expected-higher side, the same divergence only strengthens the claim.
    assert claim_test(Sample(LOW), Sample(HIGH[:4], diverged=1)).difference == pytest.approx(
        (2.0 + 2.1 + 1.9 + 2.2 + 2.2) / 5 - 1.04)
    # Left out instead of counted, the same runs would have supported the claim.
    assert claim_test(Sample(LOW[:3]), Sample(HIGH)).verdict == "supported"


def test_a_fixed_reference_is_tested_on_one_side():
    below = claim_test(Sample([0.5, 0.6, 0.7, 0.55, 0.65]), 1.0)  # "below 1"
    assert below.difference == pytest.approx(0.4) and below.p == pytest.approx(1 / 32)  # exact sign flips
    assert below.verdict == "supported"
    above = claim_test(1.01, Sample([1.05, 1.06, 1.03, 1.04, 1.08]))  # "more than 1% above 1"
    assert above.difference == pytest.approx(0.042) and above.verdict == "supported"
    assert claim_test(Sample([1.2, 1.3, 1.1, 1.25, 1.15]), 1.0).verdict == "not supported"


def test_fewer_than_two_runs_a_side_give_no_statistic():
    test = claim_test(Sample([1.0]), Sample(HIGH))
    assert test.difference is None and test.cells() == [None] * 4 and test.verdict == "inconclusive"
    assert claim_test(Sample([]), Sample([])).verdict == "inconclusive"


def test_a_growing_gap_is_a_positive_slope_and_a_flat_one_is_inconclusive():
    growing = {3.0: [0.0, 0.1, 0.05, 0.02, 0.03], 4.0: [0.2, 0.3, 0.25, 0.22, 0.28], 6.0: [0.5, 0.6, 0.55, 0.5, 0.58]}
    test = trend_test(growing)
    means = [0.04, 0.25, 0.546]  # least-squares slope of the cell means against x = 3, 4, 6
    assert test.difference == pytest.approx((-(4 / 3) * means[0] - (1 / 3) * means[1] + (5 / 3) * means[2])
                                            / (16 / 9 + 1 / 9 + 25 / 9))
    assert 0 < test.low < test.difference < test.high and test.p < 0.001 and test.g > 0.9
    assert test.verdict == "supported"
    flat = trend_test({3.0: [0.0, 0.1, 0.05, 0.02, 0.03], 4.0: [0.1, 0.0, 0.05, 0.02, 0.03],
                       6.0: [0.0, 0.1, 0.05, 0.02, 0.04]})
    assert flat.low < 0 < flat.high and flat.verdict == "inconclusive"
    shrinking = trend_test({x: [-v for v in values] for x, values in growing.items()})
    assert shrinking.verdict == "not supported"
    assert trend_test({3.0: [0.1, 0.2]}).verdict == "inconclusive"  # one number of modes: no trend
