"""``python -m stream``: the driftline command (how ``driftline run`` starts its worker processes)."""

from stream.cli import app

app(prog_name="driftline")
