"""The OpenAPI 3.1 document (``GET /openapi.json``), generated from the code: the routes of
:data:`~riskengine.service.app.ROUTES`, the declaration schema derived from the catalogue
(:func:`~riskengine.declaration.declaration_json_schema`), the result's fields as
:meth:`~riskengine.evaluator.ScoreResult.to_dict` writes them, and the problem types of
:data:`~riskengine.service.problems.PROBLEM_TYPES`."""

from __future__ import annotations

from typing import Any

from riskengine import __version__
from riskengine.catalogue import Catalogue
from riskengine.declaration import declaration_json_schema
from riskengine.evaluator import Lane
from riskengine.model import ControlKind
from riskengine.service.config import ServiceConfig
from riskengine.service.problems import MEDIA_TYPE, PROBLEM_TYPES

__all__ = ["openapi_document"]

_REF = "#/components/schemas/"
_CONTROL = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"enum": [k.value for k in ControlKind]},
    },
    "required": ["code", "kind"],
}
RESULT = {
    "type": "object",
    "description": "The decision on one declaration (what `riskengine score` prints).",
    "properties": {
        "id": {"type": ["string", "null"]},
        "as_of": {"type": "string", "format": "date"},
        "bundle_revision": {"type": "integer"},
        "selected": {"type": "boolean"},
        "lane": {"enum": [lane.value for lane in Lane]},
        "controls": {"type": "array", "items": _CONTROL},
        "fired": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "number": {"type": ["string", "null"]},
                    "name": {"type": "string"},
                    "degree": {"type": "number"},
                    "controls": {"type": "array", "items": _CONTROL},
                    "message": {"type": ["string", "null"]},
                    "items": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
        "random_selected": {
            "type": "boolean",
            "description": "Present when the service has a random selection (--random-config).",
        },
    },
    "required": ["id", "as_of", "bundle_revision", "selected", "lane", "controls", "fired"],
}
REJECTED = {
    "type": "object",
    "description": "A row of a batch that could not be scored.",
    "properties": {
        "rejected": {"const": True},
        "row": {"type": "integer", "description": "1-based: array element or line number"},
        "id": {"type": ["string", "null"]},
        "field": {"type": ["string", "null"]},
        "item": {"type": ["integer", "null"]},
        "reason": {"type": "string"},
    },
    "required": ["rejected", "row", "id", "field", "item", "reason"],
}
BATCH = {
    "type": "object",
    "properties": {
        "bundle_revision": {"type": "integer"},
        "scored": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {"oneOf": [{"$ref": _REF + "Result"}, {"$ref": _REF + "Rejected"}]},
        },
    },
    "required": ["bundle_revision", "scored", "rejected", "results"],
}
BUNDLE = {
    "type": "object",
    "properties": {
        "revision": {"type": "integer"},
        "as_of": {"type": "string", "format": "date"},
        "created_at": {"type": "string"},
        "key": {"type": "string"},
        "loaded_at": {"type": "string"},
        "profiles": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"number": {"type": "string"}, "name": {"type": "string"}},
            },
        },
        "last_refused": {"type": ["string", "null"]},
    },
}
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; extension members per type (docs/service.md).",
    "properties": {
        "type": {"enum": sorted(t.uri for t in PROBLEM_TYPES.values())},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}


def _problems(*slugs: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for slug in slugs:
        t = PROBLEM_TYPES[slug]
        entry = out.setdefault(
            str(t.status),
            {"description": "", "content": {MEDIA_TYPE: {"schema": {"$ref": _REF + "Problem"}}}},
        )
        what = f"{t.uri}: {t.when}"
        entry["description"] = f"{entry['description']}; {what}" if entry["description"] else what
    return out


_AS_OF = {
    "name": "as_of",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "format": "date"},
    "description": "Score on this date (default: each declaration's own date).",
}
_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "enum": ["gzip", "identity"]},
    "description": "gzip: the body is compressed (its size once decompressed is limited too).",
}
_COMMON = ("body-too-large", "unsupported-media-type", "unsupported-content-encoding",
           "store-unavailable", "decision-log-full", "shutting-down",
           "invalid-parameter")  # fmt: skip


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def openapi_document(config: ServiceConfig, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The document for the service of ``config`` (the declaration schema from ``catalogue``,
    the bundle's; the built-in one when ``None``)."""
    from riskengine.service.app import ROUTES

    declaration = declaration_json_schema(catalogue)
    declaration.pop("$schema", None)
    operations: dict[str, dict[str, Any]] = {
        "score": {
            "parameters": [_AS_OF, _ENCODING],
            "requestBody": {"required": True, "content": _json({"$ref": _REF + "Declaration"})},
            "responses": {
                "200": {"description": "The result", "content": _json({"$ref": _REF + "Result"})},
                **_problems(
                    "malformed-json",
                    "not-a-declaration",
                    "invalid-declaration",
                    "evaluation-failed",
                    *_COMMON,
                ),
            },
        },
        "score_batch": {
            "parameters": [_AS_OF, _ENCODING],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": _REF + "Declaration"}}
                    },
                    "application/x-ndjson": {
                        "schema": {"type": "string", "description": "one declaration a line"}
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "Every row's result or rejected record, in order, all under "
                    "one bundle revision",
                    "content": _json({"$ref": _REF + "Batch"}),
                },
                **_problems("malformed-json", "not-a-declaration", "empty-batch", *_COMMON),
            },
        },
        "bundle": {"responses": {"200": {"description": "The bundle", "content": _json(BUNDLE)}}},
        "healthz": {"responses": {"200": {"description": "Serving", "content": _json({})}}},
        "metrics_text": {
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            }
        },
        "openapi": {"responses": {"200": {"description": "OpenAPI 3.1", "content": _json({})}}},
    }
    paths: dict[str, Any] = {}
    for path, method, name, summary in ROUTES:
        operation = {"operationId": name, "summary": summary, **operations[name]}
        operation["responses"] = {
            **operation["responses"],
            **_problems("not-found", "method-not-allowed"),
        }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "riskengine scoring service",
            "version": __version__,
            "description": "Scores customs declarations with the approved profiles of a signed "
            "bundle; every decision is recorded in the decision log. docs/service.md. "
            f"Bodies up to {config.max_body:,} bytes.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Declaration": declaration,
                "Result": RESULT,
                "Rejected": REJECTED,
                "Batch": BATCH,
                "Problem": PROBLEM,
            }
        },
    }
