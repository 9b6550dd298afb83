import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats
from scipy.spatial import distance

from detectors.numeric import NumericSketch
from detectors.statistics import PSI_EPSILON, chi_square, hellinger, jensen_shannon, kolmogorov_smirnov, psi, wasserstein

N_BINS = 8
# Empty bins are drawn often: they exercise PSI's epsilon and chi-square's bin merging.
counts_strategy = hnp.arrays(np.int64, N_BINS, elements=st.one_of(st.just(0), st.integers(0, 1000))).filter(
    lambda c: c.sum() > 0
)


def unit_weights(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values, np.ones(values.size, dtype=np.int64)


def chi_square_by_merging_bins(observed: np.ndarray, reference: np.ndarray):
    """Independent, loop-based version of the documented zero-expected-bin merge, scored by scipy."""
    obs_groups, ref_groups = [], []
    for o, r in zip(observed.tolist(), reference.tolist(), strict=True):
        if r > 0 or not ref_groups:
            obs_groups.append(o)
            ref_groups.append(r)
        else:
            obs_groups[-1] += o
            ref_groups[-1] += r
    if ref_groups[0] == 0:  # leading zero-expected bins join the first non-zero bin
        obs_groups[1] += obs_groups[0]
        ref_groups[1] += ref_groups[0]
        obs_groups, ref_groups = obs_groups[1:], ref_groups[1:]
    obs, ref = np.array(obs_groups, float), np.array(ref_groups, float)
    return stats.chisquare(obs, obs.sum() * ref / ref.sum())


@settings(max_examples=50, deadline=None)
@given(counts_strategy, counts_strategy)
def test_psi_matches_symmetric_kl_of_clipped_proportions(observed, reference):
    p = np.maximum(observed / observed.sum(), PSI_EPSILON)
    q = np.maximum(reference / reference.sum(), PSI_EPSILON)
    expected = np.sum(special.rel_entr(p, q) + special.rel_entr(q, p))
    assert psi(observed, reference) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(counts_strategy, counts_strategy)
def test_jensen_shannon_matches_scipy(observed, reference):
    assert jensen_shannon(observed, reference) == pytest.approx(
        distance.jensenshannon(observed, reference, base=2), abs=1e-9
    )


@settings(max_examples=50, deadline=None)
@given(counts_strategy, counts_strategy)
def test_hellinger_matches_bhattacharyya_form(observed, reference):
    p, q = observed / observed.sum(), reference / reference.sum()
    value = hellinger(observed, reference)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(hellinger(reference, observed), abs=1e-15)
    # 1 - BC cancels digits for close distributions, hence the looser tolerance.
    assert value**2 == pytest.approx(max(0.0, 1 - np.sum(np.sqrt(p * q))), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(counts_strategy, counts_strategy.filter(lambda c: np.count_nonzero(c) >= 2))
def test_chi_square_matches_scipy_after_merging_zero_expected_bins(observed, reference):
    result = chi_square(observed, reference)
    expected = chi_square_by_merging_bins(observed, reference)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert result.dof == np.count_nonzero(reference) - 1


def test_chi_square_without_degrees_of_freedom_has_nan_pvalue():
    result = chi_square(np.array([5, 3, 0]), np.array([0, 10, 0]))
    assert result.dof == 0 and result.statistic == 0.0 and np.isnan(result.pvalue)


def test_binned_statistics_are_vectorized_over_features():
    rng = np.random.default_rng(0)
    observed = rng.integers(0, 50, (6, N_BINS))
    reference = rng.integers(1, 50, (6, N_BINS))
    for statistic in (psi, jensen_shannon, hellinger):
        np.testing.assert_allclose(statistic(observed, reference), [statistic(o, r) for o, r in zip(observed, reference)])
    batch = chi_square(observed, reference)
    rows = [chi_square(o, r) for o, r in zip(observed, reference)]
    np.testing.assert_allclose(batch.statistic, [r.statistic for r in rows])
    np.testing.assert_allclose(batch.pvalue, [r.pvalue for r in rows])


def test_zero_padding_is_neutral():
    observed, reference = np.array([10, 20, 30]), np.array([30, 20, 10])
    padded_obs, padded_ref = np.append(observed, [0, 0]), np.append(reference, [0, 0])
    for statistic in (psi, jensen_shannon, hellinger):
        assert statistic(padded_obs, padded_ref) == pytest.approx(statistic(observed, reference), rel=1e-12)
    assert chi_square(padded_obs, padded_ref) == chi_square(observed, reference)


def test_empty_side_gives_nan():
    empty, full = np.zeros(4, dtype=np.int64), np.array([1, 2, 3, 4])
    for statistic in (psi, jensen_shannon, hellinger):
        assert np.isnan(statistic(empty, full)) and np.isnan(statistic(full, empty))
    assert np.isnan(chi_square(empty, full).statistic)


def test_sketch_histograms_give_scipy_statistics_on_np_histogram_counts():
    rng = np.random.default_rng(1)
    reference_values, window_values = rng.normal(size=20_000), rng.normal(0.3, 1.2, size=3_000)
    reference = NumericSketch.from_reference(reference_values, n_bins=10)
    window = NumericSketch(reference.edges)
    window.update(window_values)

    edges = reference.edges
    def np_counts(x):
        return np.concatenate([[np.sum(x < edges[0])], np.histogram(x, edges)[0], [np.sum(x > edges[-1])]])
    ref_counts, win_counts = np_counts(reference_values), np_counts(window_values)

    assert jensen_shannon(window.histogram, reference.histogram) == pytest.approx(
        distance.jensenshannon(win_counts, ref_counts, base=2), abs=1e-9
    )
    result = chi_square(window.histogram, reference.histogram)
    # Reference under/overflow bins are empty by construction: they merge into the outer bins.
    merged_win = np.concatenate([[win_counts[0] + win_counts[1]], win_counts[2:-2], [win_counts[-2] + win_counts[-1]]])
    merged_ref = ref_counts[1:-1]
    expected = stats.chisquare(merged_win, merged_win.sum() * merged_ref / merged_ref.sum())
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert psi(window.histogram, reference.histogram) > 0.1


@pytest.mark.parametrize(("n", "m", "shift"), [(150, 190, 0.0), (120, 60, 0.5), (260, 300, 0.1)])
def test_ks_on_raw_samples_matches_scipy(n, m, shift):
    rng = np.random.default_rng(2)
    a, b = rng.normal(shift, 1, n), rng.normal(0, 1, m)
    result = kolmogorov_smirnov(unit_weights(a), unit_weights(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)
    assert (result.n, result.m) == (n, m)


@pytest.mark.parametrize(
    ("n", "m", "shift", "tolerance"),
    [(400, 300, 0.2, 0.05), (1500, 1200, 0.1, 0.05), (2100, 2000, 0.0, 0.06), (5000, 3000, 0.07, 0.06), (60_000, 20_000, 0.03, 0.06)],
)
def test_ks_pvalue_beyond_the_exact_range_within_documented_error(n, m, shift, tolerance):
    rng = np.random.default_rng(3)
    a, b = rng.normal(shift, 1, n), rng.normal(0, 1, m)
    result = kolmogorov_smirnov(unit_weights(a), unit_weights(b))
    expected = stats.ks_2samp(a, b, method="asymp")
    assert n * m / (n + m) > 150 and expected.pvalue >= 1e-8
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=tolerance)


def test_ks_on_exact_mode_sketches_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.4, 1, 180), np.round(rng.normal(0, 1, 150), 1)  # ties included
    sketch_a, sketch_b = NumericSketch([-1.0, 1.0]), NumericSketch([-1.0, 1.0])
    sketch_a.update(a)
    sketch_b.update(b)
    result = kolmogorov_smirnov(sketch_a.weighted_items(), sketch_b.weighted_items())
    expected = stats.ks_2samp(a, b, method="asymp")
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


def test_weighted_ks_equals_ks_of_expanded_sample():
    rng = np.random.default_rng(4)
    items_a, weights_a = np.sort(rng.normal(size=40)), rng.integers(1, 9, 40)
    items_b, weights_b = np.sort(rng.normal(0.3, 1, size=30)), rng.integers(1, 9, 30)
    result = kolmogorov_smirnov((items_a, weights_a), (items_b, weights_b))
    expected = stats.ks_2samp(np.repeat(items_a, weights_a), np.repeat(items_b, weights_b), method="asymp")
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_ks_and_wasserstein_from_estimation_mode_sketches_within_rank_error(shift):
    rng = np.random.default_rng(5)
    a, b = rng.normal(shift, 1.2, 60_000), rng.normal(0, 1, 40_000)
    sketch_a, sketch_b = NumericSketch([-1.0, 1.0]), NumericSketch([-1.0, 1.0])
    sketch_a.update(a)
    sketch_b.update(b)
    error = sketch_a.rank_error + sketch_b.rank_error

    result = kolmogorov_smirnov(sketch_a.weighted_items(), sketch_b.weighted_items())
    assert abs(result.statistic - stats.ks_2samp(a, b).statistic) <= error

    span = max(a.max(), b.max()) - min(a.min(), b.min())
    w1 = wasserstein(sketch_a.weighted_items(), sketch_b.weighted_items())
    assert abs(w1 - stats.wasserstein_distance(a, b)) <= error * span


def test_wasserstein_matches_scipy_on_weighted_samples():
    rng = np.random.default_rng(6)
    sample = (rng.normal(size=50), rng.integers(1, 5, 50))
    reference = (rng.exponential(size=70), rng.integers(1, 5, 70))
    expected = stats.wasserstein_distance(sample[0], reference[0], sample[1], reference[1])
    assert wasserstein(sample, reference) == pytest.approx(expected, rel=1e-9)
    assert wasserstein(sample, reference, scale=2.5) == pytest.approx(expected / 2.5, rel=1e-9)


def test_distribution_statistics_on_empty_sample_are_nan():
    empty = (np.empty(0), np.empty(0, dtype=np.int64))
    full = unit_weights(np.arange(5.0))
    assert np.isnan(kolmogorov_smirnov(empty, full).statistic)
    assert np.isnan(wasserstein(full, empty))
