"""`driftline profile build --redis` stores the reference profile in the real Redis, or says why not."""

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from detectors.profile import ReferenceProfile
from stream.cli import app
from stream.mirror import RedisMirror
from tests.replay.synthetic import MODEL_ID, MODEL_VERSION, reference_rows

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def train(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in reference_rows(2_000, seed=3)))
    return path


def _build(train: Path, out: Path, redis_url: str, prefix: str):
    return runner.invoke(
        app,
        ["profile", "build", "--input", str(train), "--model", MODEL_ID, "--version", MODEL_VERSION, "--out", str(out), "--redis"],
        env={"DRIFTLINE_REDIS": redis_url, "DRIFTLINE_TOPIC_PREFIX": prefix},
    )


def test_profile_is_stored_in_redis_when_asked(stack_settings, unique_name, train, tmp_path):
    result = _build(train, tmp_path / "ref.profile", stack_settings.redis_url, unique_name)
    assert result.exit_code == 0, result.output
    assert f"stored in Redis at {stack_settings.redis_url}" in result.output
    stored = RedisMirror(stack_settings.redis_url, unique_name).reference_profile(MODEL_ID, MODEL_VERSION)
    written = ReferenceProfile.from_bytes((tmp_path / "ref.profile").read_bytes())
    assert stored is not None
    assert (stored.model_id, stored.model_version, stored.row_count, stored.layout) == (
        written.model_id, written.model_version, written.row_count, written.layout
    )
    assert stored.profile.numeric["num_00"].histogram.tolist() == written.profile.numeric["num_00"].histogram.tolist()


def test_unreachable_redis_is_one_line_naming_the_fix(train, tmp_path, unique_name):
    result = _build(train, tmp_path / "ref.profile", "redis://127.0.0.1:1/0", unique_name)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Redis at redis://127.0.0.1:1/0" in result.output and "driftline stack up" in result.output
    assert (tmp_path / "ref.profile").exists()
