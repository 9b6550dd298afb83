"""Cost of decode + validate (stream/decode.py) per event, next to bare orjson.loads of the same bytes.

Events have 25 features (a third categorical) and are about 600 bytes, decoded in batches of 500 as
the ingest worker does: a batch's results stay alive until the next batch replaces them. Both paths
take the best of several repeats; compare the ratio, not absolute numbers, across machines.

    .venv/bin/python benchmarks/bench_decode.py [--events 20000] [--batch 500] [--repeats 7]
"""

import argparse
import gc
import json
import platform
import random
import statistics
import time
from collections.abc import Callable

import orjson

from stream.decode import Decoder, EventKind, Limits

FEATURES = 25


def make_values(count: int, seed: int = 7) -> list[bytes]:
    """Distinct, valid inference events with realistic field mix, serialized."""
    rng = random.Random(seed)
    now = time.time()
    values = []
    for i in range(count):
        features: dict[str, object] = {}
        for j in range(FEATURES):
            if j % 3 == 0:
                features[f"cat_{j:02d}"] = rng.choice(["DE", "FR", "US", "GB", "NL", "other"])
            else:
                features[f"num_{j:02d}"] = round(rng.gauss(100.0, 15.0), 4)
        event = {
            "prediction_id": f"pred-{seed}-{i:012d}",
            "model_id": "fraud-detector",
            "model_version": "2024.11.3",
            "timestamp": round(now - rng.uniform(0, 60), 3),
            "features": features,
            "prediction": {"score": round(rng.random(), 6)},
            "latency_ms": round(rng.uniform(1, 30), 2),
            "status": "ok",
            "segment": {"channel": rng.choice(["web", "app"])},
        }
        values.append(orjson.dumps(event))
    return values


def best_seconds(run: Callable[[], None], repeats: int) -> float:
    """Fastest of ``repeats`` timed runs."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    values = make_values(args.events)
    batches = [values[i : i + args.batch] for i in range(0, len(values), args.batch)]
    offsets = [list(range(i, i + len(batch))) for i, batch in zip(range(0, len(values), args.batch), batches)]

    def baseline() -> None:
        for batch in batches:
            events = [orjson.loads(value) for value in batch]
        del events

    def decode() -> None:
        # A fresh decoder per run: the same ids again would be rejected as duplicates.
        decoder = Decoder(EventKind.INFERENCE, Limits())
        accepted = 0
        for batch, batch_offsets in zip(batches, offsets):
            accepted += len(decoder.decode(batch, "driftline.inference", 0, batch_offsets).events)
        if accepted != len(values):
            raise RuntimeError(f"only {accepted} of {len(values)} benchmark events accepted")

    decode_seconds = best_seconds(decode, args.repeats)
    baseline_seconds = best_seconds(baseline, args.repeats)
    per_event = 1e6 / len(values)
    print(
        json.dumps(
            {
                "benchmark": "decode_validate",
                "events": len(values),
                "batch": args.batch,
                "features": FEATURES,
                "mean_payload_bytes": round(statistics.fmean(map(len, values)), 1),
                "decode_validate_us_per_event": round(decode_seconds * per_event, 3),
                "orjson_loads_us_per_event": round(baseline_seconds * per_event, 3),
                "ratio_vs_orjson_loads": round(decode_seconds / baseline_seconds, 2),
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
