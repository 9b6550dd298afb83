"""Firing, persistence, significance, hysteresis and cooldown of one condition at a time."""

from __future__ import annotations

import pytest

from detectors.policy import PolicyConfig, TestResult
from tests.policy.policy_scenarios import STEP, Feed, drift

VIOLATION = drift(0.31)
CLEAN = drift(0.05)


def statuses(windows: list[list[dict]]) -> list[list[str]]:
    return [[e["status"] for e in events] for events in windows]


@pytest.mark.parametrize(
    ("m", "n", "pattern", "fires_at"),
    [
        (2, 3, "VV", 1),
        (2, 3, "VcV", 2),
        (2, 3, "VccV", None),
        (2, 3, "VccVcV", 5),
        (3, 5, "VcVcV", 4),
        (3, 5, "VccVcVV", 6),
        (1, 1, "cV", 1),
    ],
)
def test_fires_only_after_m_violations_in_the_last_n(m: int, n: int, pattern: str, fires_at: int | None) -> None:
    feed = Feed(PolicyConfig(persistence_m=m, persistence_n=n))
    windows = feed.run([VIOLATION] if c == "V" else [CLEAN] for c in pattern)
    fired = [i for i, events in enumerate(windows) if events]
    assert fired == ([] if fires_at is None else [fires_at])
    if fires_at is not None:
        assert windows[fires_at][0]["status"] == "firing"


def test_a_single_spike_does_not_fire() -> None:
    feed = Feed()
    assert feed.run([[CLEAN], [drift(0.9)], [CLEAN], [CLEAN], [CLEAN]]) == [[]] * 5
    assert feed.policy.open_alerts == []


def test_does_not_fire_on_a_clean_window_even_with_m_of_n_in_history() -> None:
    # The cooldown ends with window 5, which has 2 violations in its last 3 but is itself clean.
    feed = Feed(PolicyConfig(cooldown_seconds=3 * STEP, resolve_after=1))
    windows = feed.run([[VIOLATION], [VIOLATION], [CLEAN], [VIOLATION], [VIOLATION], [CLEAN], [VIOLATION]])
    assert statuses(windows) == [[], ["firing"], ["resolved"], [], [], [], ["firing"]]


@pytest.mark.parametrize(
    ("p_value", "sample_size", "fires"),
    [(0.2, 40, False), (0.02, 200, False), (1e-4, 5000, True)],
)
def test_a_large_effect_fires_only_when_significant(p_value: float, sample_size: int, fires: bool) -> None:
    big = drift(0.9, p_value=p_value, sample_size=sample_size)
    windows = Feed().run([[big]] * 5)
    assert bool(any(windows)) is fires


def test_a_significant_but_small_effect_does_not_fire() -> None:
    assert Feed().run([[drift(0.15, p_value=1e-30, sample_size=10**7)]] * 5) == [[]] * 5


def test_a_rate_check_without_p_value_is_judged_by_effect_size() -> None:
    null_rate = TestResult("data_quality", "age", "null_rate", 0.12, threshold=0.05, sample_size=5000)
    low = TestResult("data_quality", "age", "null_rate", 0.01, threshold=0.05, sample_size=5000)
    assert statuses(Feed().run([[null_rate], [null_rate]])) == [[], ["firing"]]
    assert Feed().run([[low]] * 4) == [[]] * 4


def test_correction_counts_every_test_of_the_evaluation() -> None:
    # p = 0.004 is significant alone at alpha 0.01, but not among 10 tests under Bonferroni.
    alone = [drift(0.5, p_value=0.004)]
    crowd = alone + [drift(0.01, feature=f"other{i}", p_value=0.9) for i in range(9)]
    config = PolicyConfig(correction="bonferroni")
    assert any(Feed(config).run([alone] * 3))
    assert not any(Feed(config).run([crowd] * 3))


def test_benjamini_hochberg_and_bonferroni_disagree_on_a_crafted_family() -> None:
    # m = 10, alpha = 0.01. Bonferroni needs p <= 0.001: only f0. BH step-up: p_(4) = 0.0035 <= 4/10 * 0.01.
    p_values = [0.0005, 0.0015, 0.0025, 0.0035] + [0.6] * 6
    family = [drift(0.5, feature=f"f{i}", p_value=p) for i, p in enumerate(p_values)]

    def fired(correction: str) -> set[str]:
        windows = Feed(PolicyConfig(correction=correction, alpha=0.01)).run([family] * 3)
        return {e["feature"] for events in windows for e in events}

    assert fired("bh") == {"f0", "f1", "f2", "f3"}
    assert fired("bonferroni") == {"f0"}


def fired_then(*values: float, config: PolicyConfig | None = None) -> list[list[str]]:
    """Statuses per window after firing on two violations, then feeding ``values``."""
    return statuses(Feed(config).run([[VIOLATION], [VIOLATION]] + [[drift(v)] for v in values]))[2:]


def test_hysteresis_keeps_firing_between_resolve_threshold_and_threshold() -> None:
    # Threshold 0.2, resolve below 0.16: values in [0.16, 0.2) are not violations yet do not resolve.
    assert fired_then(0.19, 0.17, 0.16, 0.18, 0.165, 0.19) == [[]] * 6


def test_resolves_after_k_consecutive_clean_windows() -> None:
    assert fired_then(0.1, 0.1) == [[], ["resolved"]]
    assert fired_then(0.1, 0.17, 0.1, 0.1) == [[], [], [], ["resolved"]]


@pytest.mark.parametrize("k", [1, 2, 4])
def test_resolve_after_is_configurable(k: int) -> None:
    assert fired_then(*[0.02] * k, config=PolicyConfig(resolve_after=k)) == [[]] * (k - 1) + [["resolved"]]


def test_resolve_ratio_is_configurable() -> None:
    assert fired_then(0.15, 0.15) == [[], ["resolved"]]
    assert fired_then(0.15, 0.15, config=PolicyConfig(resolve_ratio=0.5)) == [[], []]


def test_a_firing_alert_stays_open_until_resolved() -> None:
    feed = Feed()
    [[], [fired]] = feed.run([[VIOLATION], [VIOLATION]])
    feed.run([[drift(0.18)], [VIOLATION]])
    assert [a["alert_id"] for a in feed.policy.open_alerts] == [fired["alert_id"]]
    [[], [resolved]] = feed.run([[CLEAN], [CLEAN]])
    assert resolved["alert_id"] == fired["alert_id"]
    assert feed.policy.open_alerts == []


def refire_window(cooldown: float) -> tuple[float, float]:
    """Violate, resolve, then violate without end; returns (resolve end, re-fire end) in event time."""
    feed = Feed(PolicyConfig(cooldown_seconds=cooldown))
    feed.run([[VIOLATION], [VIOLATION], [CLEAN]])
    [resolved] = feed(CLEAN)
    resolve_end = feed.start
    for _ in range(20):
        events = feed(VIOLATION)
        if events:
            [fired] = events
            assert fired["status"] == "firing" and fired["alert_id"] != resolved["alert_id"]
            return resolve_end, feed.start
    pytest.fail("never fired again")


def test_cooldown_blocks_refiring_then_lets_it_fire() -> None:
    resolve_end, refire_end_without = refire_window(0.0)
    _, refire_end_with = refire_window(1800.0)
    # Without cooldown persistence alone decides: the second violation after resolving fires.
    assert refire_end_without == resolve_end + 2 * STEP
    # With it, the first violating window ending at least cooldown_seconds after resolving fires.
    assert refire_end_with == resolve_end + 1800.0


def test_a_missing_result_leaves_the_condition_untouched() -> None:
    other = drift(0.01, feature="income")
    windows = Feed().run([[VIOLATION], [other], [other], [other], [VIOLATION]])
    assert statuses(windows) == [[], [], [], [], ["firing"]]


def test_a_stale_or_repeated_window_is_ignored() -> None:
    feed = Feed()
    feed(VIOLATION)
    before = feed.policy.to_bytes()
    key, start = feed.key, feed.start - STEP
    assert feed.policy.evaluate(key, start, start + STEP, [VIOLATION]) == []
    assert feed.policy.evaluate(key, start - STEP, start, [VIOLATION]) == []
    assert feed.policy.to_bytes() == before
    assert statuses([feed(VIOLATION)]) == [["firing"]]


def test_two_results_for_one_condition_are_an_error() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Feed()(VIOLATION, CLEAN)


def test_a_window_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="window_end"):
        Feed().policy.evaluate(Feed().key, 10.0, 10.0, [VIOLATION])
