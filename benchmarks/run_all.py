"""Run every benchmark (``make bench``) and write ``benchmarks/results/<name>.json`` and ``SUMMARY.md``.

Each benchmark is a script printing one JSON report; it runs here as a subprocess (a fresh process:
its RSS and timings are its own). Its result file holds the report, the exact command, the wall
time and the machine it ran on. ``--smoke`` runs each at a tiny size in seconds (what
tests/benchmarks runs inside ``make test``): smoke figures check the plumbing, not performance.
A full run takes 15 to 20 minutes on 2 shared cores (the first one also installs the peers into
``.run/bench-venv``).

The streaming benchmarks need a broker: the one DRIFTLINE_KAFKA/DRIFTLINE_REDIS name (``make test``
passes the test session's stack), else this script starts the bench stack (ports 29092/29093/26379,
``.run/bench-stack``) once for all of them and stops and purges it at the end (``streaming.broker``).

Adding a benchmark: write ``benchmarks/bench_<name>.py`` printing its report with ``common.emit``
and accepting ``--smoke``, add a ``Benchmark`` to ``BENCHMARKS`` with a ``summarize`` that renders
its markdown table, and a smoke check in ``tests/benchmarks/test_benchmarks_smoke.py``.

    .venv/bin/python benchmarks/run_all.py [--smoke] [--results DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, machine_facts
from streaming import broker

RESULTS = REPO / "benchmarks" / "results"
TIMEOUT_SECONDS = 1_200

Report = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A benchmark script, its arguments in full and smoke mode, and how its report reads as markdown."""

    name: str
    title: str
    script: str
    full_args: tuple[str, ...]
    smoke_args: tuple[str, ...]
    summarize: Callable[[Report], list[str]]
    needs_broker: bool = False

    def command(self, smoke: bool) -> list[str]:
        return [sys.executable, f"benchmarks/{self.script}", *(self.smoke_args if smoke else self.full_args)]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        return "–" if value is None else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]


def summarize_decode(report: Report) -> list[str]:
    return _table(
        ["events", "payload bytes", "decode + validate µs/event", "orjson.loads µs/event", "ratio"],
        [[report["events"], report["mean_payload_bytes"], report["decode_validate_us_per_event"],
          report["orjson_loads_us_per_event"], report["ratio_vs_orjson_loads"]]],
    )  # fmt: skip


def summarize_replay(report: Report) -> list[str]:
    return _table(
        ["rows", "features (num + cat)", "replay rows/s (JSON path)", "orjson.loads rows/s", "replay / orjson.loads",
         "core rows/s (columns path)", "evaluations", "alerts"],
        [[report["rows"], f"{report['features']['numeric']} + {report['features']['categorical']}",
          report["replay_rows_per_s"], report["orjson_loads_rows_per_s"], report["replay_vs_orjson_ratio"],
          report["core_from_columns_rows_per_s"], report["evaluations"], report["alerts"]]],
    )  # fmt: skip


def summarize_peers(report: Report) -> list[str]:
    driftline = report["driftline"]
    rows = [
        ["driftline replay, columns path", driftline["columns_path_seconds"], driftline["reference_profile_seconds"],
         driftline["seconds_with_reference_columns_path"], "baseline", ", ".join(driftline["drifted_columns"]) or "none"],
        ["driftline replay, JSON path", driftline["json_path_seconds"], driftline["reference_profile_seconds"],
         driftline["seconds_with_reference_json_path"], "baseline", ", ".join(driftline["drifted_columns"]) or "none"],
    ]  # fmt: skip
    notes = []
    for name, peer in report["peers"].items():
        if "seconds" in peer:
            ratio = f"{report['ratios'][f'{name}_vs_driftline_columns']}x / {report['ratios'][f'{name}_vs_driftline_json']}x"
            rows.append([f"{name} {peer['version']}", None, None, peer["seconds"], ratio, ", ".join(peer["drifted_columns"]) or "none"])
        else:
            reason = peer.get("skipped") or peer.get("error", "")
            rows.append([name, None, None, None, None, "not measured"])
            notes.append(f"- {name}: not measured — {reason.splitlines()[-1] if reason else 'no report'}")
    lines = [
        f"{report['rows']:,} rows x {report['features']} numeric features, reference of {report['reference_rows']:,} rows; "
        f"{', '.join(report['shift']['features'])} shift by {report['shift']['shift_sd']} sd from row {report['shift']['from_row']:,}. "
        "Seconds exclude loading the data; ratio = peer seconds / driftline seconds incl. reference (columns / JSON path).",
        "",
        *_table(["tool", "replay s", "reference profile s", "total s", "peer / driftline", "drifted columns found"], rows),
    ]
    return lines + ([""] + notes if notes else [])


def summarize_memory(report: Report) -> list[str]:
    sketches = report["sketches"]
    lines = _table(
        ["events replayed", "RSS before replay MiB", f"RSS after {report['checkpoint_every']:,} MiB",
         f"RSS after {report['events']:,} MiB", "growth", f"flat within {report['flat_tolerance']:.0%}",
         "evaluator state bytes (first → last)"],
        [[report["events"], report["rss_before_replay_mib"], report["rss_after_first_checkpoint_mib"],
          report["rss_after_last_checkpoint_mib"], f"{report['rss_growth_first_to_last']:+.1%}", report["rss_flat"],
          f"{report['samples'][0]['evaluator_state_bytes']:,} → {report['samples'][-1]['evaluator_state_bytes']:,}"]],
    )  # fmt: skip
    lines += ["", f"Path: {report['path']}. Scenario: {'; '.join(report['scenario'])}.", ""]
    lines += _table(
        ["profile", "events", "numeric sketch bytes (serialized / in memory)", "categorical sketch bytes (serialized / in memory)",
         "whole profile bytes (serialized / in memory)"],
        [[name, sizes["events"], f"{sizes['numeric_sketch_bytes']:,} / {sizes['numeric_sketch_nbytes']:,}",
          f"{sizes['categorical_sketch_bytes']:,} / {sizes['categorical_sketch_nbytes']:,}",
          f"{sizes['profile_bytes']:,} / {sizes['profile_nbytes']:,}"] for name, sizes in sketches.items()],
    )  # fmt: skip
    return lines


def summarize_join_store(report: Report) -> list[str]:
    return [
        *_table(["predictions waiting", "bytes per waiting prediction (store / plain dict)", "store's own estimate / measured",
                 "bytes per joined id", "join events/s (store / plain dict)"],
                [[report["predictions"], f"{report['bytes_per_waiting_prediction']} / {report['bytes_per_waiting_prediction_dict']}",
                  report["estimate_ratio_vs_measured"], report["bytes_per_joined_id"],
                  f"{report['events_per_second']:,} / {report['events_per_second_dict']:,}"]]),
        "",
        f"Bytes are traced allocations (tracemalloc) of the label join's store (stream/join.py) against a dict of decoded "
        f"predictions, the least a join can hold in Python; {report['note']}.",
    ]  # fmt: skip


def summarize_quality(report: Report) -> list[str]:
    rows = []
    for scenario in report["scenarios"]:
        for position, expected in enumerate(scenario["expected"]):
            notes = []
            if position == 0 and scenario["rejected_events"]:
                notes.append(f"{scenario['rejected_events']:,} of {scenario['malformed_events_generated']:,} malformed events dead-lettered")
            if position == 0 and scenario["unexplained_alerts"]:
                notes.append("unexplained: " + ", ".join(f"{a['kind']} {a['feature'] or '(model)'}" for a in scenario["unexplained_alerts"]))
            rows.append(
                [scenario["scenario"] if position == 0 else "", f"{expected['kind']} {expected['feature']}", expected["detected"],
                 expected["delay_events"], expected["delay_seconds"], scenario["false_alarms"] if position == 0 else "",
                 "; ".join(notes)]
            )  # fmt: skip
    stationary = report["stationary"]
    return [
        f"{report['events_per_scenario']:,} events per scenario at {report['events_per_second_event_time']:g} events/s of event time, "
        f"change at 40 %; default config (+ num_06 sentinel -999 declared). Delay: events (and event-time seconds) from the change "
        f"to the batch ({report['batch']:,} events) that emitted the first matching alert.",
        "",
        *_table(["scenario", "expected alert", "detected", "delay (events)", "delay (s)", "false alarms", "notes"], rows),
        "",
        f"Stationary stream: {stationary['false_alarms']} false alarms in {stationary['events']:,} events "
        f"({len(stationary['seeds'])} seeds, {stationary['evaluations']:,} evaluations) = "
        f"**{stationary['false_alarms_per_1m_events']} per 1M events**.",
    ]


def summarize_labels(report: Report) -> list[str]:
    rows = []
    for variant, totals in report["summary"].items():
        runs = [run for run in report["runs"] if run["variant"] == variant]
        delays = "; ".join(
            f"{run['dataset']}: " + ", ".join("missed" if delay is None else f"{delay:,}" for delay in run["concept_drift_delays"])
            for run in runs
        )
        rows.append([variant, f"{totals['detected']} of {totals['drifts']}", totals["false_alarms"], totals["mean_delay_labels"],
                     totals.get("ratio_vs_overall_error_only"), delays])  # fmt: skip
    return [
        f"Public SEA streams (López-Lobo abrupt and gradual, Losing), model fixed before the first drift, labels delayed "
        f"(exponential, mean {report['label_delay_mean_seconds']:g} s at {report['events_per_second_event_time']:g} events/s) and "
        f"shuffled, {report['never_labelled_share']:.0%} never sent, through replay. Delay: labels from a drift's first label to "
        f"its first concept_drift alert; false alarm: an alert more than {report['tolerance_labels']:,} labels after the latest drift.",
        "",
        *_table(["variant", "drifts detected", "false alarms", "mean delay (labels)", "delay / overall-error-only", "delays per drift"], rows),
    ]


def _met(met: bool) -> str:
    return "**met**" if met else "**not met**"


def summarize_stream_throughput(report: Report) -> list[str]:
    ceiling, one, two, joining = report["ceiling"], report["one_worker"], report["two_workers"], report["one_worker_with_labels"]

    def share(run: Report, rate: str) -> str | None:
        return f"{run[rate] / ceiling[rate]:.0%}" if run[rate] else None

    rows = [
        *[[f"bare consume + orjson.loads, {when} the workers", 1, run["events_per_s"], run["events_per_s"], run["events_per_cpu_second"],
           None, None, None] for when, run in (("before", ceiling["before"]), ("after", ceiling["after"]))],
        ["ceiling: mean of the two", 1, ceiling["events_per_s"], ceiling["events_per_s"], ceiling["events_per_cpu_second"],
         "100% / 100%", None, None],
        *[[f"driftline ingest, {run['workers']} worker{'s' if run['workers'] > 1 else ''}", run["workers"], run["events_per_s"],
           run["events_per_s_per_worker"], run["events_per_cpu_second"],
           f"{share(run, 'events_per_s')} / {share(run, 'events_per_cpu_second')}", run["consumed"], run["deadlettered"]]
          for run in (one, two)],
        ["driftline ingest + label join, 1 worker (predictions + labels)", 1, joining["events_per_s"], joining["events_per_s"],
         joining["events_per_cpu_second"], f"{share(joining, 'events_per_s')} / {share(joining, 'events_per_cpu_second')}",
         joining["consumed"], joining["deadlettered"]],
    ]  # fmt: skip
    return [
        f"{report['events']:,} workload events (~{report['preload']['mean_event_bytes']} bytes, {report['producer']}) pre-loaded into "
        f"{report['partitions']} partitions of {report['broker']['kafka']}, read by each consumer below in the same run; "
        f"{report['config']}; {one['batch_size']:,} records per batch, one transaction each. Rates run from the first committed "
        "batch to the last; events per CPU second count every thread of the consuming processes.",
        "",
        *_table(["consumer", "processes", "events/s", "events/s per process", "events per CPU s",
                 "share of ceiling (events/s / per CPU s)", "consumed", "dead-lettered"], rows),
        "",
        f"Targets: >= {report['targets']['events_per_s_per_worker']:,} events/s per worker — "
        f"{_met(report['target_per_worker_met_by_one_worker'])} by 1 worker, {_met(report['target_per_worker_met_by_two_workers'])} "
        f"by 2; >= {report['targets']['share_of_ceiling']:.0%} of the ceiling — {_met(report['target_share_of_ceiling_met'])}. "
        f"2 workers / 1 worker: {report['two_workers_vs_one']}x. The label-join run reads {joining['predictions']:,} predictions "
        f"and labels for {joining['label_coverage']:.0%} of them ({joining['labels']:,}, delayed and shuffled) from a third "
        f"deployment whose model has a task; with labels / without: {report['with_labels_vs_one_worker']}x.",
    ]  # fmt: skip


def summarize_latency(report: Report) -> list[str]:
    windows, policy, drift = report["windows"], report["policy"]["persistence"], report["drift"]
    latencies = ", ".join("–" if i["latency_seconds"] is None else f"{i['latency_seconds']:.2f}" for i in report["per_injection"])
    return [
        f"{report['events_per_second']:,} events/s live (event time = wall time) into {report['partitions']} partitions; one ingest "
        f"and one evaluate worker (`driftline run` processes). {report['injections']} drifts, each a {drift['shift_sd']:g} sd mean "
        f"shift of another feature for {drift['drift_seconds']} s. Latency: from producing the first drifted event to consuming "
        "its firing data_drift alert from the alerts topic (read_committed).",
        "",
        *_table(["base window", "evaluation window", "lateness", "persistence", "idle timeout", "detected", "p50 s", "p99 s", "max s",
                 f"p99 <= {report['target_p99_seconds']:g} s"],
                [[f"{windows['base_seconds']} s", f"last {windows['evaluate_windows']}", f"{windows['allowed_lateness_seconds']} s",
                  f"{policy['m']} of {policy['n']}", f"{windows['idle_seconds']:g} s", f"{report['detected']} of {report['injections']}",
                  report["latency_p50_seconds"], report["latency_p99_seconds"], report["latency_max_seconds"], report["target_met"]]]),
        "",
        f"Per drift (s): {latencies}. Other firing alerts: {len(report['unexplained_firing_alerts'])}; producer lag at most "
        f"{report['producer_max_lag_seconds']} s; ingest worker behind the stream by at most {report['ingest_max_lag_events']:,} "
        f"events ({report['ingest_max_lag_seconds']} s).",
    ]  # fmt: skip


def summarize_ingest_memory(report: Report) -> list[str]:
    samples = ", ".join(f"{sample['events']:,}: {sample['rss_mib']}" for sample in report["samples"])
    return [
        *_table(["events through Kafka", "RSS joined, idle MiB", f"RSS after {report['checkpoint_every']:,} MiB",
                 f"RSS after {report['events']:,} MiB", "growth", f"flat within {report['flat_tolerance']:.0%}", "peak RSS MiB"],
                [[report["events"], report["rss_joined_idle_mib"], report["rss_after_first_checkpoint_mib"],
                  report["rss_after_last_checkpoint_mib"], f"{report['rss_growth_first_to_last']:+.1%}", report["rss_flat"],
                  report["peak_rss_mib"]]]),
        "",
        f"Path: {report['path']}; produced concurrently by another process. RSS (MiB) by committed events: {samples}.",
    ]  # fmt: skip


def summarize_evaluate(report: Report) -> list[str]:
    ceiling, worker, partials = report["ceiling"], report["evaluate_worker"], report["partials"]

    def share(rate: str) -> str | None:
        return f"{worker[rate] / ceiling[rate]:.0%}" if worker[rate] else None

    rows = [
        ["bare consume + decode + profile deserialization, before the worker", ceiling["before"]["records_per_s"],
         ceiling["before"]["records_per_cpu_second"], None, None, "–"],
        ["bare consume + decode + profile deserialization, after the worker", ceiling["after"]["records_per_s"],
         ceiling["after"]["records_per_cpu_second"], None, None, "–"],
        ["ceiling: mean of the two", ceiling["records_per_s"], ceiling["records_per_cpu_second"], None, None, "100% / 100%"],
        ["driftline evaluate, 1 worker", worker["records_per_s"], worker["records_per_cpu_second"], worker["evaluations_per_s"],
         worker["ms_per_evaluation"], f"{share('records_per_s')} / {share('records_per_cpu_second')}"],
    ]
    return [
        f"{report['models']} models ({report['config']}), {report['windows_per_model']} base windows each of "
        f"{report['events_per_window']:,} events, through one ingest worker into {partials['records']:,} partials records "
        f"({partials['window_partials']:,} window partials of {partials['mean_profile_bytes']:,} bytes on average, "
        f"{partials['progress_records']:,} watermark progress records), then read by each consumer below in the same run.",
        "",
        *_table(["consumer", "records/s", "records per CPU s", "evaluations/s", "CPU ms per evaluation",
                 "share of ceiling (records/s / per CPU s)"], rows),
        "",
        f"Evaluations: {report['evaluations']:,} of {report['expected_evaluations']:,} expected (one per model and base window); "
        f"alerts: {report['alerts']} (stationary traffic). Evaluate worker RSS: {worker['rss_mib_at_assignment']} MiB once it owned its "
        f"partitions (models and references loaded), {worker['rss_mib_at_end']} MiB at the end: "
        f"{report['state_mib_per_model']} MiB of evaluation state per model.",
    ]  # fmt: skip


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "decode", "Decode + validate vs orjson.loads", "bench_decode.py",
        full_args=(), smoke_args=("--events", "2000", "--repeats", "2"), summarize=summarize_decode,
    ),
    Benchmark(
        "replay", "Replay throughput vs orjson.loads", "bench_replay.py",
        full_args=(), smoke_args=("--rows", "20000"), summarize=summarize_replay,
    ),
    Benchmark(
        "peers", "Replay against peers (same data, same run)", "bench_peers.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_peers,
    ),
    Benchmark(
        "memory", "Memory on the replay path", "bench_memory.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_memory,
    ),
    Benchmark(
        "join_store", "Label join store: memory per waiting prediction", "bench_join.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_join_store,
    ),
    Benchmark(
        "quality", "Detection quality (replay, default config)", "bench_quality.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_quality,
    ),
    Benchmark(
        "labels", "Concept drift from delayed labels on public data (replay)", "bench_labels.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_labels,
    ),
    Benchmark(
        "stream_throughput", "Streaming ingest throughput vs a bare consume of the same topic", "bench_stream_throughput.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_stream_throughput, needs_broker=True,
    ),
    Benchmark(
        "drift_to_alert_latency", "Drift-to-alert latency through Kafka", "bench_stream_latency.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_latency, needs_broker=True,
    ),
    Benchmark(
        "ingest_worker_memory", "Ingest worker memory through Kafka", "bench_stream_memory.py",
        # 4M, not the script's 10M: at the ~28k events/s measured, 10M alone takes 6+ of make bench's 20 minutes.
        full_args=("--events", "4000000"), smoke_args=("--smoke",), summarize=summarize_ingest_memory, needs_broker=True,
    ),
    Benchmark(
        "evaluate_worker_many_models", "One evaluate worker serving many models", "bench_evaluate.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_evaluate, needs_broker=True,
    ),
)  # fmt: skip
BENCHMARKS_BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}

def run(benchmark: Benchmark, smoke: bool, env: dict[str, str]) -> dict[str, Any]:
    """Run one benchmark; its result record (report or error) with command, wall time and machine."""
    command = benchmark.command(smoke)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    try:
        process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        outcome = (
            {"report": json.loads(process.stdout)}
            if process.returncode == 0
            else {"error": f"exit {process.returncode}: {process.stderr.strip()[-3000:]}"}
        )
    except subprocess.TimeoutExpired:
        outcome = {"error": f"timed out after {TIMEOUT_SECONDS} s"}
    return {
        "name": benchmark.name,
        "title": benchmark.title,
        "mode": "smoke" if smoke else "full",
        "command": shlex.join([".venv/bin/python", *command[1:]]),
        "started_at": started_at,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_facts(),
        **outcome,
    }


def summary(results: list[dict[str, Any]]) -> str:
    """SUMMARY.md of result records: one section per benchmark, then what is not yet measured."""
    machine = results[-1]["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    modes = {result["mode"] for result in results}
    commands = {f"`.venv/bin/python benchmarks/run_all.py{' --smoke' if mode == 'smoke' else ''}`" for mode in modes}
    smoke_note = "SMOKE: tiny sizes, the figures check the plumbing only, not performance" if "smoke" in modes else "full sizes"
    lines = [
        "# driftline benchmarks",
        "",
        f"{' and '.join(sorted(commands))} ({smoke_note}); {sum(r['wall_seconds'] for r in results) / 60:.1f} min of benchmarks, "
        f"started {min(r['started_at'] for r in results)} to {max(r['started_at'] for r in results)}.",
        "",
        f"Machine: {machine['cores']} cores ({machine['cores_usable']} usable, shared), {machine['cpu']}, "
        f"{machine['memory_gib']} GiB; Python {machine['python']}; {versions}; commit {machine['git_commit']}. "
        "Absolute times vary with the machine's load: compare the same-run ratios.",
    ]
    for result in results:
        lines += ["", f"## {result['title']}", "", f"`{result['command']}` ({result['wall_seconds']} s)", ""]
        if "error" in result:
            lines.append(f"**Failed**: {result['error'].splitlines()[-1] if result['error'] else 'no output'}")
        else:
            lines += BENCHMARKS_BY_NAME[result["name"]].summarize(result["report"])
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds; peers are not installed")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for <name>.json and SUMMARY.md")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS_BY_NAME), help="run just these (repeatable)")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)

    selected = [benchmark for benchmark in BENCHMARKS if not args.only or benchmark.name in args.only]
    failed = False
    with contextlib.ExitStack() as resources:
        env = dict(os.environ)
        if any(benchmark.needs_broker for benchmark in selected):
            settings = resources.enter_context(broker())
            env.update(DRIFTLINE_KAFKA=settings.kafka_bootstrap, DRIFTLINE_REDIS=settings.redis_url)
        for benchmark in selected:
            print(f"running {benchmark.name} ...", file=sys.stderr, flush=True)
            result = run(benchmark, args.smoke, env)
            (args.results / f"{benchmark.name}.json").write_text(json.dumps(result, indent=2) + "\n")
            failed |= "error" in result
            print(f"  {benchmark.name}: {'FAILED' if 'error' in result else 'ok'} in {result['wall_seconds']} s", file=sys.stderr, flush=True)
    # Every result in the folder, so that re-running one benchmark (--only) keeps the others' sections.
    results = [
        json.loads(path.read_text())
        for path in (args.results / f"{benchmark.name}.json" for benchmark in BENCHMARKS)
        if path.exists()
    ]
    (args.results / "SUMMARY.md").write_text(summary(results))
    print(f"wrote {args.results / 'SUMMARY.md'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
