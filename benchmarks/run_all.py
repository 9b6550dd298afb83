"""Run every benchmark (``make bench``) and write ``benchmarks/results/<name>.json`` and ``SUMMARY.md``.

Each benchmark is a script printing one JSON report; it runs here as a subprocess (a fresh process:
its RSS and timings are its own). Its result file holds the report, the exact command, the wall
time and the machine it ran on. ``--smoke`` runs each at a tiny size in seconds (what
tests/benchmarks runs inside ``make test``): smoke figures check the plumbing, not performance.
A full run takes 9 to 12 minutes on 2 shared cores (the first one also installs the peers into
``.run/bench-venv``).

Adding a benchmark (the streaming ones, once the workers land): write ``benchmarks/bench_<name>.py``
printing its report with ``common.emit`` and accepting ``--smoke``, add a ``Benchmark`` to
``BENCHMARKS`` with a ``summarize`` that renders its markdown table, and remove its entry from
``NOT_YET_MEASURED``.

    .venv/bin/python benchmarks/run_all.py [--smoke] [--results DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, machine_facts

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
        "quality", "Detection quality (replay, default config)", "bench_quality.py",
        full_args=(), smoke_args=("--smoke",), summarize=summarize_quality,
    ),
)  # fmt: skip
BENCHMARKS_BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}

NOT_YET_MEASURED: tuple[tuple[str, str], ...] = (
    ("stream_throughput", "End-to-end events/s through the ingest and evaluate workers on the real broker, next to a bare "
                          "confluent-kafka consume of the same topic (the ceiling)"),
    ("drift_to_alert_latency", "Wall time from producing the first drifted event to its alert on driftline.alerts"),
    ("ingest_worker_memory", "RSS of a streaming ingest worker after 1M and 10M events"),
)  # fmt: skip


def run(benchmark: Benchmark, smoke: bool) -> dict[str, Any]:
    """Run one benchmark; its result record (report or error) with command, wall time and machine."""
    command = benchmark.command(smoke)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    try:
        process = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
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
    lines += ["", "## Not yet measured", ""]
    lines += [f"- **{name}**: {description} — not yet measured." for name, description in NOT_YET_MEASURED]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds; peers are not installed")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for <name>.json and SUMMARY.md")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS_BY_NAME), help="run just these (repeatable)")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)

    failed = False
    for benchmark in BENCHMARKS:
        if args.only and benchmark.name not in args.only:
            continue
        print(f"running {benchmark.name} ...", file=sys.stderr, flush=True)
        result = run(benchmark, args.smoke)
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
