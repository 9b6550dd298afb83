"""The HTTP API (faust web views) and its OpenAPI 3 document.

Reads come from the worker's local tables. Changes (ack, resolve, silence) are commands
on the incident-commands topic, because faust tables can only be written while handling
an event: ack/resolve go to the incident's partition and the view waits until the
change shows; silences go to every partition (a model's partition is where its alerts
land, which the API cannot compute). With several workers, each serves only the incidents
of the partitions it owns (docs/incidents.md, "One worker, one API"): ``driftline run`` starts one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from faust import web

from stream.incidents.app import IncidentService
from stream.incidents.lifecycle import Incident, State
from stream.incidents.templates import incident_summary, iso_time

CHANGE_TIMEOUT = 10.0


def register_views(service: IncidentService) -> None:
    app = service.app

    def incident_view(incident: Incident) -> dict[str, Any]:
        summary = incident_summary(incident)
        summary.update(
            cycle=incident.cycle,
            state_since=iso_time(incident.state_since),
            owners=service.routing.owners_for(incident.model_id, sorted({alert.kind for alert in incident.alerts.values()})),
            deliveries=[entry for entry in service.delivery_log.values() if incident.incident_id in entry["incident_ids"]],
        )
        return summary

    async def change(view: web.View, request: web.Request, incident_id: str, command: str, allowed: set[State]) -> web.Response:
        incident = service.find_incident(incident_id)
        if incident is None:
            return view.json({"error": f"no incident {incident_id}"}, status=404)
        if incident.state not in allowed:
            return view.json({"error": f"incident is {incident.state}", "incident": incident_view(incident)}, status=409)
        body = await _json_body(request)
        by = str(body.get("by") or "api")
        await service.send_command({"type": command, "incident_id": incident_id, "by": by}, incident.partition)

        def applied() -> bool:
            current = service.find_incident(incident_id)
            return current is not None and current.state not in allowed

        if not await _wait_for(applied, CHANGE_TIMEOUT):
            return view.json({"error": "the change was sent but not applied in time; check again"}, status=504)
        return view.json(incident_view(service.find_incident(incident_id)))

    @app.page("/incidents")
    class Incidents(web.View):
        async def get(self, request: web.Request) -> web.Response:
            state, model_id = request.query.get("state"), request.query.get("model_id")
            incidents = [Incident.from_dict(raw) for raw in service.incidents.values()]
            chosen = [
                incident_summary(incident)
                for incident in sorted(incidents, key=lambda incident: incident.opened_at, reverse=True)
                if (state is None or incident.state == state) and (model_id is None or incident.model_id == model_id)
            ]
            return self.json({"incidents": chosen})

    @app.page("/incidents/{incident_id}")
    class IncidentDetail(web.View):
        async def get(self, request: web.Request, incident_id: str) -> web.Response:
            incident = service.find_incident(incident_id)
            if incident is None:
                return self.json({"error": f"no incident {incident_id}"}, status=404)
            return self.json(incident_view(incident))

    @app.page("/incidents/{incident_id}/ack")
    class Acknowledge(web.View):
        async def post(self, request: web.Request, incident_id: str) -> web.Response:
            return await change(self, request, incident_id, "ack", {State.OPEN})

    @app.page("/incidents/{incident_id}/resolve")
    class Resolve(web.View):
        async def post(self, request: web.Request, incident_id: str) -> web.Response:
            return await change(self, request, incident_id, "resolve", {State.OPEN, State.ACKNOWLEDGED})

    @app.page("/silences")
    class Silences(web.View):
        async def get(self, request: web.Request) -> web.Response:
            now = time.time()
            active = {entry["model_id"]: entry for entry in service.silences.values() if entry["until"] > now}
            return self.json({"silences": [{**entry, "until": iso_time(entry["until"])} for entry in active.values()]})

        async def post(self, request: web.Request) -> web.Response:
            body = await _json_body(request)
            model_id, duration = body.get("model_id"), body.get("duration_seconds")
            if not isinstance(model_id, str) or not model_id or not isinstance(duration, (int, float)) or duration <= 0:
                return self.json({"error": "send {model_id: string, duration_seconds: number > 0, reason?, by?}"}, status=400)
            command = {
                "type": "silence", "model_id": model_id, "until": time.time() + duration,
                "reason": str(body.get("reason") or ""), "by": str(body.get("by") or "api"),
            }
            for partition in range(service.settings.partitions):
                await service.send_command(command, partition)
            return self.json({**command, "until": iso_time(command["until"])}, status=202)

    @app.page("/silences/{model_id}")
    class Silence(web.View):
        async def delete(self, request: web.Request, model_id: str) -> web.Response:
            for partition in range(service.settings.partitions):
                await service.send_command({"type": "unsilence", "model_id": model_id}, partition)
            return self.json({"model_id": model_id, "lifted": True}, status=202)

    @app.page("/deliveries")
    class Deliveries(web.View):
        async def get(self, request: web.Request) -> web.Response:
            incident_id = request.query.get("incident_id")
            entries = [entry for entry in service.delivery_log.values() if incident_id is None or incident_id in entry["incident_ids"]]
            return self.json({"deliveries": sorted(entries, key=lambda entry: entry["requested_at"])})

    @app.page("/openapi.json")
    class OpenAPI(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json(OPENAPI)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not await request.read():
        return {}
    body = await request.json()
    return body if isinstance(body, dict) else {}


async def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json_response("error", _ref("Error"))
_INCIDENT_ID = {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
_BY = {"content": {"application/json": {"schema": {"type": "object", "properties": {"by": {"type": "string"}}}}}, "required": False}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "driftline incident service", "version": "1.0.0", "description": "Incidents built from driftline alert events: list, inspect, acknowledge, resolve, silence."},
    "paths": {
        "/": {"get": {"operationId": "serviceIndex", "summary": "faust's service index", "responses": {"200": _json_response("worker information", {"type": "object"})}}},
        "/incidents": {
            "get": {
                "operationId": "listIncidents",
                "summary": "Incidents, newest first",
                "parameters": [
                    {"name": "state", "in": "query", "required": False, "schema": {"enum": [str(state) for state in State]}},
                    {"name": "model_id", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {"200": _json_response("incidents", {"type": "object", "required": ["incidents"], "properties": {"incidents": {"type": "array", "items": _ref("Incident")}}})},
            }
        },
        "/incidents/{incident_id}": {
            "get": {
                "operationId": "showIncident",
                "summary": "One incident with its alerts, owners and deliveries",
                "parameters": [_INCIDENT_ID],
                "responses": {"200": _json_response("the incident", _ref("IncidentDetail")), "404": _ERROR},
            }
        },
        "/incidents/{incident_id}/ack": {
            "post": {
                "operationId": "acknowledgeIncident",
                "summary": "Acknowledge an open incident (stops its escalation)",
                "parameters": [_INCIDENT_ID],
                "requestBody": _BY,
                "responses": {"200": _json_response("acknowledged", _ref("IncidentDetail")), "404": _ERROR, "409": _ERROR, "504": _ERROR},
            }
        },
        "/incidents/{incident_id}/resolve": {
            "post": {
                "operationId": "resolveIncident",
                "summary": "Resolve an incident by hand",
                "parameters": [_INCIDENT_ID],
                "requestBody": _BY,
                "responses": {"200": _json_response("resolved", _ref("IncidentDetail")), "404": _ERROR, "409": _ERROR, "504": _ERROR},
            }
        },
        "/silences": {
            "get": {
                "operationId": "listSilences",
                "summary": "Active silences",
                "responses": {"200": _json_response("silences", {"type": "object", "properties": {"silences": {"type": "array", "items": _ref("Silence")}}})},
            },
            "post": {
                "operationId": "silenceModel",
                "summary": "Silence a model: its notifications are recorded in the delivery log but not sent",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["model_id", "duration_seconds"],
                        "properties": {"model_id": {"type": "string"}, "duration_seconds": {"type": "number", "exclusiveMinimum": 0}, "reason": {"type": "string"}, "by": {"type": "string"}},
                    }}},
                },
                "responses": {"202": _json_response("silence accepted", _ref("Silence")), "400": _ERROR},
            },
        },
        "/silences/{model_id}": {
            "delete": {
                "operationId": "liftSilence",
                "summary": "Lift a model's silence",
                "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"202": _json_response("lift accepted", {"type": "object"})},
            }
        },
        "/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "summary": "The delivery log",
                "parameters": [{"name": "incident_id", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": _json_response("deliveries", {"type": "object", "properties": {"deliveries": {"type": "array", "items": _ref("Delivery")}}})},
            }
        },
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {"200": _json_response("OpenAPI 3 document", {"type": "object"})}}},
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics of this worker (stream/metrics.py)",
                "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Alert": {
                "type": "object",
                "properties": {
                    "alert_id": {"type": "string"}, "status": {"enum": ["firing", "resolved"]}, "severity": {"enum": ["P0", "P1", "P2"]},
                    "kind": {"type": "string"}, "feature": {"type": ["string", "null"]}, "summary": {"type": "string"},
                    "suggested_action": {"type": "string"}, "statistic": {"type": "object"}, "window": {"type": "object"}, "segment": {"type": "object"},
                },
            },
            "Incident": {
                "type": "object",
                "required": ["incident_id", "model_id", "state", "severity", "alerts"],
                "properties": {
                    "incident_id": {"type": "string"}, "model_id": {"type": "string"}, "state": {"enum": [str(state) for state in State]},
                    "severity": {"enum": ["P0", "P1", "P2"]}, "opened_at": {"type": "string", "format": "date-time"},
                    "acknowledged_by": {"type": ["string", "null"]}, "resolved_by": {"type": ["string", "null"]},
                    "alerts": {"type": "array", "items": _ref("Alert")},
                },
            },
            "IncidentDetail": {
                "allOf": [
                    _ref("Incident"),
                    {"type": "object", "properties": {
                        "cycle": {"type": "integer"}, "state_since": {"type": "string", "format": "date-time"},
                        "owners": {"type": "array", "items": {"type": "string"}}, "deliveries": {"type": "array", "items": _ref("Delivery")},
                    }},
                ]
            },
            "Silence": {
                "type": "object",
                "properties": {"model_id": {"type": "string"}, "until": {"type": "string", "format": "date-time"}, "reason": {"type": "string"}, "by": {"type": "string"}},
            },
            "Delivery": {
                "type": "object",
                "properties": {
                    "idempotency_key": {"type": "string"}, "receiver": {"type": "string"}, "receiver_type": {"type": "string"},
                    "incident_ids": {"type": "array", "items": {"type": "string"}}, "announcement": {"type": "string"},
                    "requested_at": {"type": "string"}, "finished_at": {"type": "string"},
                    "outcome": {"enum": ["delivered", "failed", "silenced", "quiet_hours"]},
                    "attempts": {"type": "integer"}, "status_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
                    "partition": {"type": "integer", "description": "partition of the entry in the service's tables"},
                },
            },
        }
    },
}
