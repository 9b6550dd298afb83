"""The inspection summary of an online detector reports river's readings of its current state."""

import numpy as np
import orjson

from detectors.online import OnlineDetector


def test_adwin_state_reports_its_window_and_estimate_after_a_shift():
    detector = OnlineDetector("adwin")
    detector.update(np.concatenate([np.zeros(500), np.ones(500)]))
    state = detector.state
    assert state["kind"] == "adwin"
    assert state["detections"] == 1
    assert state["width"] < 1000  # ADWIN dropped the pre-shift part of its window
    assert state["estimation"] > 0.9  # the mean of what it kept: the post-shift ones
    orjson.dumps(state)  # the mirror stores it as JSON


def test_binary_detectors_report_the_warning_zone_and_kswin_its_p_value():
    rng = np.random.default_rng(0)
    ddm = OnlineDetector("ddm")
    ddm.update(rng.random(2_000) < 0.1)
    assert ddm.state["kind"] == "ddm" and isinstance(ddm.state["warning_detected"], bool)
    kswin = OnlineDetector("kswin")
    kswin.update(rng.normal(size=300))
    assert 0.0 <= kswin.state["p_value"] <= 1.0
