"""The OpenAPI document is structurally valid and lists exactly the routes the app serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream.incidents.api import OPENAPI, register_views
from stream.incidents.app import IncidentService, ServiceSettings
from stream.incidents.routing import RoutingConfig
from stream.settings import TopicSettings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    routing = RoutingConfig.from_mapping({"default_receiver": "hook", "receivers": {"hook": {"type": "webhook", "url": "http://hook"}}})
    service = IncidentService(ServiceSettings("127.0.0.1:1", TopicSettings(prefix="openapi-test"), 2, routing, tmp_path))
    register_views(service)
    web = service.app.web
    web.blueprints.apply(web)  # faust's own pages, as the worker adds them at start
    return {(route.method.lower(), route.resource.canonical) for route in web.web_app.router.routes() if route.method != "HEAD"}


def _resolve(document: dict, ref: str) -> object:
    assert ref.startswith("#/"), ref
    node: object = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_document_is_structurally_valid_openapi_3():
    assert re.fullmatch(r"3\.\d+\.\d+", OPENAPI["openapi"])
    assert OPENAPI["info"]["title"] and OPENAPI["info"]["version"]
    operation_ids = []
    for path, item in OPENAPI["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in item.items():
            assert method in METHODS, (path, method)
            operation_ids.append(operation["operationId"])
            assert operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5][0-9]{2}|default", status) and response["description"], (path, method, status)
            parameters = operation.get("parameters", [])
            for parameter in parameters:
                assert parameter["in"] in {"path", "query", "header", "cookie"} and parameter["name"] and "schema" in parameter
            declared = {p["name"] for p in parameters if p["in"] == "path"}
            assert declared == templated, f"{method} {path}: path parameters {declared} vs template {templated}"
            assert all(p["required"] is True for p in parameters if p["in"] == "path")
    assert len(operation_ids) == len(set(operation_ids)), "operationIds are unique"
    for ref in _refs(OPENAPI):
        _resolve(OPENAPI, ref)


def test_document_lists_every_route_the_app_serves(served_routes):
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert documented == served_routes
