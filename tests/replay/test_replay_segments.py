import orjson

from detectors.monitor import MonitorConfig
from detectors.policy import WindowKey
from stream.replay import OTHER_SEGMENT_VALUE, Replay
from tests.replay.test_replay_evaluator import REFERENCE


def test_segments_window_alongside_the_whole_model_and_pool_values_beyond_the_cap() -> None:
    config = MonitorConfig.from_mapping(
        {"model_id": "m", "reference": "m.profile", "segments": [{"tag": "region", "max_values": 2}],
         "windows": {"evaluate_windows": 1, "min_count": 1}}
    )  # fmt: skip
    regions = ["eu", "us", "eu", "apac", "latam", None]
    events = [
        {"prediction_id": f"p{i}", "model_id": "m", "model_version": "1", "timestamp": 1_000.0 + i,
         "features": {"x": 0.1, "y": 1.0, "c": "a"}, "prediction": 0.5,
         **({"segment": {"region": region}} if region else {})}
        for i, region in enumerate(regions)
    ] + [{"prediction_id": "other", "model_id": "someone-else", "model_version": "1", "timestamp": 1_000.0,
          "features": {}, "prediction": 1}]  # fmt: skip
    engine = Replay(config, REFERENCE, keep_evaluations=True)
    engine.feed([orjson.dumps(event) for event in events])
    engine.finish()
    counts = {evaluation.key: evaluation.event_count for evaluation in engine.evaluations}
    assert counts == {
        WindowKey("m", "1"): 6,
        WindowKey("m", "1", {"region": "eu"}): 2,
        WindowKey("m", "1", {"region": "us"}): 1,
        WindowKey("m", "1", {"region": OTHER_SEGMENT_VALUE}): 2,
    }
    assert engine.summary.other_models == 1 and engine.summary.accepted == 6
