"""Every benchmark runs in smoke mode through ``benchmarks/run_all.py`` and reports the fields the
summary and the README rely on. Timings are never asserted (the machine is shared and noisy);
counts that do not depend on speed are. The streaming benchmarks run on the test session's stack
(DRIFTLINE_KAFKA/DRIFTLINE_REDIS) under a topic prefix of their own."""

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from stream.settings import StackSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = (
    "decode", "replay", "peers", "memory", "join_store", "quality", "labels", "stream_throughput", "drift_to_alert_latency",
    "ingest_worker_memory", "evaluate_worker_many_models",
)  # fmt: skip
QUALITY_SCENARIOS = {
    "abrupt", "gradual", "recurring", "temporary", "nulls", "sentinel", "category_explosion", "class_collapse",
    "latency_spike", "malformed",
}  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, stack_settings: StackSettings) -> Path:
    folder = tmp_path_factory.mktemp("bench-results")
    env = {
        **os.environ,
        "DRIFTLINE_KAFKA": stack_settings.kafka_bootstrap,
        "DRIFTLINE_REDIS": stack_settings.redis_url,
        "DRIFTLINE_TOPIC_PREFIX": f"t-bench-smoke-{uuid.uuid4().hex[:8]}",
    }
    run = subprocess.run(
        [sys.executable, "benchmarks/run_all.py", "--smoke", "--results", str(folder)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder


def report(results: Path, name: str) -> dict:
    record = json.loads((results / f"{name}.json").read_text())
    assert record["name"] == name and record["mode"] == "smoke" and "error" not in record
    assert record["command"].startswith(".venv/bin/python benchmarks/")
    machine = record["machine"]
    assert machine["cores"] >= 1 and machine["python"].startswith("3.") and "numpy" in machine["versions"]
    return record["report"]


def test_every_benchmark_wrote_its_result_and_the_summary_lists_them(results: Path) -> None:
    assert sorted(path.stem for path in results.glob("*.json")) == sorted(BENCHMARKS)
    summary = (results / "SUMMARY.md").read_text()
    assert "SMOKE" in summary and "**Failed**" not in summary


def test_decode_and_replay_report_rates_and_same_run_ratios(results: Path) -> None:
    decode = report(results, "decode")
    assert decode["events"] == 2_000 and decode["decode_validate_us_per_event"] > 0 and decode["ratio_vs_orjson_loads"] > 0
    replay = report(results, "replay")
    assert replay["rows"] == 20_000 and replay["replay_rows_per_s"] > 0 and replay["replay_vs_orjson_ratio"] > 0


def test_peers_smoke_measures_driftline_and_says_why_peers_were_skipped(results: Path) -> None:
    peers = report(results, "peers")
    driftline = peers["driftline"]
    assert peers["rows"] == peers["reference_rows"] == 20_000 and peers["features"] == 20
    assert driftline["columns_path_seconds"] > 0 and driftline["json_path_seconds"] > 0
    assert driftline["reference_profile_seconds"] > 0 and driftline["json_path_same_alerts"] is True
    assert set(peers["peers"]) == {"evidently", "whylogs"}
    for peer in peers["peers"].values():
        assert "smoke" in peer["skipped"] and "seconds" not in peer
        assert any(pin.startswith(("evidently==", "whylogs[viz]==")) for pin in peer["pins"])
    assert peers["ratios"] == {}


def test_memory_reports_rss_samples_and_sketch_sizes(results: Path) -> None:
    memory = report(results, "memory")
    assert [sample["events"] for sample in memory["samples"]] == [50_000, 100_000, 150_000, 200_000]
    assert memory["rss_after_last_checkpoint_mib"] >= memory["rss_before_replay_mib"] > 0
    assert memory["flat_tolerance"] == 0.05 and isinstance(memory["rss_flat"], bool)
    base = memory["sketches"]["base_window_60s"]
    assert base["events"] == 6_000 and base["numeric_sketch_bytes"] > 0 and base["profile_bytes"] > base["numeric_sketch_bytes"]
    assert memory["evaluations"] > 0


def test_quality_scores_every_scenario_against_its_ground_truth(results: Path) -> None:
    quality = report(results, "quality")
    assert {scenario["scenario"] for scenario in quality["scenarios"]} == QUALITY_SCENARIOS
    for scenario in quality["scenarios"]:
        assert scenario["expected"], scenario["scenario"]
        assert scenario["detected"] == sum(expected["detected"] for expected in scenario["expected"])
        assert scenario["false_alarms"] == len(scenario["unexplained_alerts"]) <= scenario["firing_alerts"]
        for expected in scenario["expected"]:
            assert (expected["delay_events"] is None) == (not expected["detected"])
    malformed = next(scenario for scenario in quality["scenarios"] if scenario["scenario"] == "malformed")
    # Dead-lettering is exact whatever the detectors do.
    assert malformed["rejected_events"] == malformed["malformed_events_generated"] > 0
    stationary = quality["stationary"]
    assert stationary["events"] == 20_000 and stationary["false_alarms_per_1m_events"] >= 0


def test_labels_reports_a_delay_or_a_miss_for_every_drift_of_every_dataset(results: Path) -> None:
    labels = report(results, "labels")
    assert set(labels["summary"]) == {"default", "overall_error_only"}
    assert {run["dataset"] for run in labels["runs"]} == {"lopezlobo_sea_abrupt", "lopezlobo_sea_gradual", "losing_sea"}
    for run in labels["runs"]:
        assert run["rows"] == 15_000 and len(run["concept_drift_delays"]) == len(run["drifts"]) == 1
        assert 0.95 * run["rows"] < run["labels_sent"] < run["rows"]


def test_join_store_reports_bytes_per_waiting_prediction_against_a_dict(results: Path) -> None:
    join = report(results, "join_store")
    assert join["predictions"] == 20_000 and join["repeats"] == 1
    assert 0 < join["bytes_per_waiting_prediction"] < join["bytes_per_waiting_prediction_dict"]
    assert join["bytes_per_joined_id"] > 0 and join["events_per_second"] > 0


def test_stream_throughput_counts_every_event_once_in_every_consumer(results: Path) -> None:
    throughput = report(results, "stream_throughput")
    events = throughput["events"]
    assert events == 50_000 and throughput["partitions"] == 4 and throughput["preload"]["mean_event_bytes"] > 400
    assert throughput["ceiling"]["events"] == events and throughput["ceiling"]["events_per_s"] > 0
    assert all(throughput["ceiling"][when]["events"] == events for when in ("before", "after"))
    for run, workers in ((throughput["one_worker"], 1), (throughput["two_workers"], 2)):
        assert run["workers"] == len(run["final_counts"]) == workers
        # Exactly once: every pre-loaded event committed by exactly one worker, none dead-lettered.
        assert run["consumed"] == events and run["deadlettered"] == 0
        # A rate needs a timed span: on a starved machine a tiny run can finish between two looks.
        assert 0 <= run["measured_events"] <= events and (run["events_per_s"] is None) == (run["measured_events"] == 0)
    assert isinstance(throughput["target_share_of_ceiling_met"], bool)
    joining = throughput["one_worker_with_labels"]
    assert joining["predictions"] == events and 0 < joining["labels"] < events
    assert joining["consumed"] == events + joining["labels"] and joining["deadlettered"] == 0
    # Every label names a produced prediction and nothing expires or overflows: each one joins, once.
    assert joining["outcomes"] == {"joined": joining["labels"], "evicted": 0}


def test_latency_alerts_every_injected_drift_on_its_feature(results: Path) -> None:
    latency = report(results, "drift_to_alert_latency")
    assert latency["injections"] == latency["detected"] == 2
    features = [injection["feature"] for injection in latency["per_injection"]]
    assert len(set(features)) == 2
    for injection in latency["per_injection"]:
        assert injection["latency_seconds"] > 0
        # The alert's evaluation window ends after the drift started (it was caused by the drift).
        assert datetime.fromisoformat(injection["alert_window"]["end"]) > datetime.fromisoformat(injection["drift_start_event_time"])
    assert latency["latency_p50_seconds"] <= latency["latency_p99_seconds"] <= latency["latency_max_seconds"]
    assert latency["windows"]["base_seconds"] == 1 and latency["policy"]["persistence"] == {"m": 2, "n": 3}
    assert latency["final_counts"]["ingest.0"]["deadlettered"] == 0


def test_ingest_memory_samples_rss_at_every_checkpoint(results: Path) -> None:
    memory = report(results, "ingest_worker_memory")
    samples = memory["samples"]
    assert len(samples) == 4 and all(sample["events"] >= 50_000 * (k + 1) for k, sample in enumerate(samples))
    assert all(sample["rss_mib"] > 0 for sample in samples)
    assert memory["peak_rss_mib"] >= memory["rss_after_last_checkpoint_mib"] > 0
    assert memory["flat_tolerance"] == 0.05 and isinstance(memory["rss_flat"], bool)
    assert memory["final_counts"]["consumed"] == memory["events"] == 200_000


def test_evaluate_worker_evaluates_every_window_of_every_model_once(results: Path) -> None:
    evaluate = report(results, "evaluate_worker_many_models")
    models, windows = evaluate["models"], evaluate["windows_per_model"]
    assert (models, windows) == (3, 3)
    assert evaluate["partials"]["window_partials"] == models * windows * 4 and evaluate["partials"]["progress_records"] > 0
    assert evaluate["evaluations"] == evaluate["expected_evaluations"] == models * windows
    assert evaluate["alerts"] == 0  # stationary traffic under the default policy
    worker = evaluate["evaluate_worker"]
    assert worker["measured_records"] == evaluate["partials"]["records"] and worker["final_counts"]["records"] == evaluate["partials"]["records"]
    assert all(evaluate["ceiling"][when]["profiles"] == models * windows * 4 for when in ("before", "after"))
