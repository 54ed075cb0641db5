"""Generate the public JSON Schemas from the pydantic models (``clicktrail schemas``)."""

from __future__ import annotations

import json

from pydantic import TypeAdapter

from clicktrail.contracts.catalog import PUBLIC_RECORDS
from clicktrail.contracts.events import Event

SCHEMA_BASE_URI = "https://clicktrail.dev/schemas/events/"
MODELS = PUBLIC_RECORDS


def _dump(schema: dict[str, object], name: str) -> str:
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{name}.json",
        **schema,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def generate() -> dict[str, str]:
    """File name -> JSON text, for every public model plus the event union."""
    files = {
        f"{name}.json": _dump(model.model_json_schema(), name) for name, model in MODELS.items()
    }
    union = TypeAdapter(Event).json_schema()
    union["title"] = "Event"
    union["description"] = "Any tracking event: impression, click or conversion (by 'type')."
    files["event.json"] = _dump(union, "event")
    return files
