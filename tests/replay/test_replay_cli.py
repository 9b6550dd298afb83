"""``driftline profile build`` and ``driftline replay`` on small files, end to end through the CLI."""

from pathlib import Path

import jsonschema
import orjson
import pytest
from typer.testing import CliRunner

import schemas
from stream.cli import app
from stream.replay import REPLAY_TOPIC
from tests.replay.synthetic import MODEL_ID, MODEL_VERSION, reference_rows, traffic

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("replay-cli")
    (folder / "train.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in reference_rows(20_000, seed=1)))
    data = traffic(30_000, seed=2, shift_at=15_000, shifted=("num_03",), shift_sd=1.0)
    lines = [orjson.dumps(event) for event in data.to_events(0, len(data))]
    lines.insert(10, b'{"prediction_id": "broken", "model_id": "fraud-detector"')
    lines.insert(20, orjson.dumps({**orjson.loads(lines[5]), "prediction_id": "again", "timestamp": "yesterday"}))
    lines.insert(30, lines[40])  # seen first at 30, so the original, now at 41, is the duplicate
    (folder / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    (folder / "monitor.yaml").write_text(
        f"model_id: {MODEL_ID}\nreference: profiles/fraud.profile\nfeatures: {{num_05: {{sentinels: [-999], range: [0, 200]}}}}\n"
    )
    return folder


def test_profile_build_then_replay_writes_valid_alerts_and_deadletters(files: Path) -> None:
    built = runner.invoke(
        app,
        ["profile", "build", "--input", str(files / "train.jsonl"), "--model", MODEL_ID, "--version", MODEL_VERSION,
         "--out", str(files / "profiles" / "fraud.profile"), "--categorical", "cat_0", "--bins", "12",
         "--sentinel", "num_05=-999"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    assert "20,000 rows" in built.output and (files / "profiles" / "fraud.profile").exists()

    result = runner.invoke(
        app,
        ["replay", "--config", str(files / "monitor.yaml"), "--events", str(files / "events.jsonl"),
         "--alerts-out", str(files / "alerts.jsonl"), "--deadletter-out", str(files / "rejects.jsonl")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "events read" in result.output and "30,003" in result.output

    alerts = [orjson.loads(line) for line in (files / "alerts.jsonl").read_bytes().splitlines()]
    alert_validator = jsonschema.Draft202012Validator(schemas.load("alert"))
    for alert in alerts:
        alert_validator.validate(alert)
    assert [(a["kind"], a["feature"], a["status"]) for a in alerts] == [("data_drift", "num_03", "firing")]

    rejects = [orjson.loads(line) for line in (files / "rejects.jsonl").read_bytes().splitlines()]
    deadletter_validator = jsonschema.Draft202012Validator(schemas.load("deadletter"))
    for record in rejects:
        deadletter_validator.validate(record)
    assert [r["reason"] for r in rejects] == ["json_truncated", "timestamp_unparseable", "duplicate_prediction_id"]
    assert [r["source"]["offset"] for r in rejects] == [10, 20, 41]
    assert {r["source"]["topic"] for r in rejects} == {REPLAY_TOPIC}


def test_config_errors_end_in_one_line_naming_the_file_and_fix(files: Path) -> None:
    bad = files / "bad.yaml"
    bad.write_text("model_id: fraud-detector\nreference: profiles/fraud.profile\nwindows: {base_seconds: -1}\n")
    result = runner.invoke(app, ["replay", "--config", str(bad), "--events", str(files / "events.jsonl")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{bad}: windows.base_seconds: -1 is less than the minimum of 1; use a positive number of seconds" in result.output


def test_profile_build_refuses_a_feature_declared_twice(files: Path) -> None:
    result = runner.invoke(
        app,
        ["profile", "build", "--input", str(files / "train.jsonl"), "--model", "m", "--version", "1",
         "--out", str(files / "x.profile"), "--numeric", "num_00", "--categorical", "num_00"],
    )  # fmt: skip
    assert result.exit_code == 1 and "num_00" in result.output and "Traceback" not in result.output


def test_profile_build_rejects_a_malformed_sentinel(files: Path) -> None:
    result = runner.invoke(
        app,
        ["profile", "build", "--input", str(files / "train.jsonl"), "--model", "m", "--version", "1",
         "--out", str(files / "y.profile"), "--sentinel", "num_05"],
    )  # fmt: skip
    assert result.exit_code == 1 and "write FEATURE=NUMBER" in result.output


def test_csv_training_data_and_csv_events(tmp_path: Path) -> None:
    data = traffic(3_000, seed=5)
    events = data.to_events(0, len(data))
    header = ["prediction_id", "model_id", "model_version", "timestamp", "prediction", "latency_ms", "num_00", "cat_0"]
    rows = [
        [e["prediction_id"], e["model_id"], e["model_version"], str(e["timestamp"]), str(e["prediction"]["score"]),
         str(e["latency_ms"]), str(e["features"]["num_00"]), e["features"]["cat_0"]]
        for e in events
    ]  # fmt: skip
    rows[7][6] = ""  # an empty cell is a null
    (tmp_path / "events.csv").write_text("\n".join(",".join(row) for row in [header, *rows]) + "\n")
    (tmp_path / "train.csv").write_text("\n".join(",".join(row[4:]) for row in [header, *rows]) + "\n")
    built = runner.invoke(
        app, ["profile", "build", "--input", str(tmp_path / "train.csv"), "--model", MODEL_ID, "--version", MODEL_VERSION,
              "--out", str(tmp_path / "p.profile")],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    (tmp_path / "m.yaml").write_text(f"model_id: {MODEL_ID}\nreference: p.profile\n")
    result = runner.invoke(app, ["replay", "--config", str(tmp_path / "m.yaml"), "--events", str(tmp_path / "events.csv")])
    assert result.exit_code == 0, result.output
    accepted = next(line for line in result.output.splitlines() if "accepted" in line)
    assert "3,000" in accepted
