import pytest

from detectors.profile import ReferenceBuilder, ReferenceProfile
from tests.replay.synthetic import MODEL_ID, MODEL_VERSION, reference_rows

REFERENCE_ROWS = 100_000


@pytest.fixture(scope="session")
def synthetic_reference() -> ReferenceProfile:
    """Reference profile of the synthetic traffic, built in chunks like `driftline profile build`."""
    builder = ReferenceBuilder()
    rows = reference_rows(REFERENCE_ROWS, seed=1)
    for start in range(0, len(rows), 20_000):
        builder.add(rows[start : start + 20_000])
    return builder.build(MODEL_ID, MODEL_VERSION, source="synthetic", created_at=0.0)
