"""``python -m stream.incidents`` is ``driftline incidents``."""

from stream.incidents.cli import incidents_app

incidents_app(prog_name="driftline incidents")
