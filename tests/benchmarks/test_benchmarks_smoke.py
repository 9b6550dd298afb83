"""Every benchmark runs in smoke mode through ``benchmarks/run_all.py`` and reports the fields the
summary and the README rely on. Timings are never asserted (the machine is shared and noisy);
counts that do not depend on speed are."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ("decode", "replay", "peers", "memory", "quality")
QUALITY_SCENARIOS = {
    "abrupt", "gradual", "recurring", "temporary", "nulls", "sentinel", "category_explosion", "class_collapse",
    "latency_spike", "malformed",
}  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench-results")
    run = subprocess.run(
        [sys.executable, "benchmarks/run_all.py", "--smoke", "--results", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
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
    for name in ("stream_throughput", "drift_to_alert_latency", "ingest_worker_memory"):
        assert f"**{name}**" in summary
    assert summary.count("not yet measured") == 3


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
