"""The driftline event contract: JSON Schema (2020-12) files shipped as package data.

``load("inference")`` returns the parsed ``schemas/inference.schema.json``. Names: inference, label,
outcome, alert, deadletter, monitor. Each call returns a fresh dict, so callers may modify it.
"""

import json
from importlib.resources import files

NAMES = ("inference", "label", "outcome", "alert", "deadletter", "monitor")


def load(name: str) -> dict:
    """Parse and return the schema called ``name`` (one of ``NAMES``)."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(NAMES)}")
    return json.loads(files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8"))
