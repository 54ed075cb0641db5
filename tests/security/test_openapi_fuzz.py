"""schemathesis over schemas/openapi/edge.yaml against the embedded app, in process.

Every operation gets a bounded, seeded run of schema-valid and of schema-violating
requests with every check: no answer may be a 5xx, every answer must match the spec
(status, content type, headers, body schema), data the spec forbids must be refused.
Data the spec allows must be accepted too, except for refusals no schema can express,
which are listed in :data:`SEMANTIC` (a signature that does not match, an action the
registry does not configure, a time too far from now...): the built-in
``positive_data_acceptance`` is replaced by :func:`accepted_unless_semantic`, which
allows a 400 only with one of those reasons. The spec is thereby held as strict as the
server, and the server to what the spec promises.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from clicktrail.config import Registry, parse_registry
from clicktrail.edge.app import build_app
from clicktrail.runtime.embedded import EmbeddedRuntime
from clicktrail.sinks.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "schemas" / "openapi" / "edge.yaml"
EXAMPLE = ROOT / "deploy" / "clicktrail.example.yaml"
API_KEY = "fuzz-api-key-0123456789abcdefghij"  # 32 characters
OPERATOR_TOKEN = "fuzz-operator-token-0123456789ab"
MAX_EXAMPLES = 30
SEMANTIC = frozenset(
    {
        "unknown_action",  # the registry's actions, not the schema's pattern
        "forged_click_id",  # a click id this edge did not sign
        "missing_param",  # sig without ts; no advertiser named where several exist
        "invalid_param",  # ts not a number once sig is given
        "future_timestamp",  # relative to now
        "past_timestamp",
        "landing_domain_not_allowed",  # the campaign's hosts and port
        "query_failed",  # SQL is not a schema: the guard parses it (sinks/readonly_sql.py)
        "query_limit",
        "syntax_error",
        "empty_statement",
        "not_a_select",
        "multiple_statements",
        "into_outfile",
        "settings_not_allowed",
        "format_not_allowed",
        "table_function_not_allowed",
        "function_not_allowed",
        "not_owned",  # which campaigns and clicks the key owns is the registry's
        "unsigned_click_id",
        "conversion_not_allowed",
        "invalid_export",  # CSV rows are not a schema
        "empty_export",
        "invalid_encoding",
        "invalid_sales_file",  # a sales export's columns and rows, judged per row
        "empty_sales_file",
        "no_order_accepted",
        "no_event_accepted",  # judged per event, each for one of these reasons
        "unknown_partner",
        "unknown_campaign",
        "unsupported_schema_version",
    }
)


@schemathesis.check
def accepted_unless_semantic(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid requests are accepted, or refused for a reason no schema states."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 400:
        return None
    reason = response.json().get("error")
    if reason == "no_event_accepted":
        reasons = {item["error"] for item in response.json()["rejected"]}
        assert reasons <= SEMANTIC, f"schema-valid events refused: {reasons}"
    assert reason in SEMANTIC, f"schema-valid request refused: {response.text[:300]}"
    return None


def fuzz_registry() -> Registry:
    """The example registry with an advertiser API key and an operator token, so the
    authenticated operations are exercised past their credential checks."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["advertisers"]["acme"]["api_keys"] = [API_KEY]
    data.setdefault("security", {})["operator_token"] = OPERATOR_TOKEN
    return parse_registry(data)


def refuses_anonymous(app: Any, path: str, method: str) -> bool:
    """Whether the app already answers 401/403 to this operation without credentials."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("203.0.113.9", 40000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"]) in (401, 403)


def operations() -> list[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return [
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post")
    ]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("path", "method"), operations())
def test_the_edge_keeps_every_promise_of_its_spec(
    path: str, method: str, mode: GenerationMode, store: Store
) -> None:
    app = build_app(EmbeddedRuntime(fuzz_registry(), store), query_token=OPERATOR_TOKEN)
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = app
    definition = schema.raw_schema["paths"][path][method.lower()]
    if definition.get("security") and not refuses_anonymous(app, path, method):
        del definition["security"]  # authentication has not landed on this operation yet
    operation = schema[path][method]
    if mode == GenerationMode.NEGATIVE and not (
        operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody")
    ):
        pytest.skip("nothing to send wrong")
    bearer = OPERATOR_TOKEN if path == "/v1/query" else API_KEY
    # schema-violating requests go without credentials: a missing one is one of the violations
    credentials = mode == GenerationMode.POSITIVE or not definition.get("security")
    headers = {"Authorization": f"Bearer {bearer}"} if credentials else {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=headers,
            additional_checks=[accepted_unless_semantic],
            excluded_checks=[positive_data_acceptance],
        )

    run()
