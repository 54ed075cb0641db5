"""schemas/openapi/edge.yaml describes exactly the routes the edge serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_edge_app import Recorder

from clicktrail.config import Registry
from clicktrail.edge.app import EdgeApp, build_app, build_edge
from clicktrail.edge.backend import BusBackend
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

SPEC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "openapi" / "edge.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    data = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def operations(app: EdgeApp) -> set[tuple[str, str]]:
    return {(route.path, method.lower()) for route in app.routes for method in route.methods}


def described(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch", "head")
    }


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_is_openapi_3_1_with_unique_operation_ids(spec: dict[str, Any]) -> None:
    assert str(spec["openapi"]).startswith("3.1")
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_route_of_both_apps_is_described(spec: dict[str, Any], store: Store) -> None:
    embedded = build_app(EmbeddedRuntime(Registry(), store))
    scale_out = build_edge(BusBackend(Registry(), Recorder()))
    served = operations(embedded) | operations(scale_out)
    assert served == described(spec)
    starlette_paths = {route.path for route in embedded.starlette.routes}  # type: ignore[attr-defined]
    assert starlette_paths == {path for path, _ in described(spec)}


def test_every_operation_documents_its_answers(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert any(code.startswith(("2", "3")) for code in codes), (path, method)
            if path not in ("/healthz", "/readyz", "/metrics"):
                assert any(code.startswith("4") for code in codes), (path, method)


def test_references_resolve(spec: dict[str, Any]) -> None:
    for ref in refs(spec):
        if ref.startswith("#/"):
            node: Any = spec
            for part in ref[2:].split("/"):
                node = node[part]
        else:
            assert (SPEC_PATH.parent / ref).is_file(), ref
