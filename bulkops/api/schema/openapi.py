"""One OpenAPI 3.1 document of every route served, synchronous, asynchronous and bulk,
converted from the Swagger 2.0 documents so that both always say the same.

Beyond the conversion: asynchronous operation ids end in `Async` or `AsyncBulk` (one document
holds all three variants) and take an `Idempotency-Key` header, fields that may be null say
so, an error's `parameters` are an object or a list as Magento sends them (its Swagger says a
list of objects), and the search lists explicit indexes
(`searchCriteria[filterGroups][0][filters][0][field]`): the `[]` of Magento's Swagger makes PHP
start a new filter for every parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bulkops.api.schema import definitions as d
from bulkops.api.schema.catalog import ServiceMethod
from bulkops.api.schema.metrics_path import metrics_path_item
from bulkops.api.schema.swagger import (
    SECURITY_DESCRIPTION,
    SECURITY_SCHEME,
    Document,
    Variant,
    swagger_document,
)
from bulkops.services.idempotency import HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER

JSON = "application/json"
# What a Swagger query parameter says of its value that an OpenAPI parameter's schema holds.
SCHEMA_KEYS = ("type", "items", "enum")
CORRECTED_SCHEMAS: Document = {
    "error-parameters": {
        "description": "Values of the message's placeholders: by name (%fieldName) or by "
        "position (%1)",
        "anyOf": [
            {"type": "object", "additionalProperties": True},
            {"type": "array", "items": {}},
        ],
    }
}
IDEMPOTENCY_KEY: Document = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Makes the submission idempotent: repeated with the same key and request "
    "within the retention (24 hours by default), it is answered with the first 202 again "
    f"(`{REPLAYED_HEADER}: true`) and stores nothing; with another request, 422. Keys belong "
    "to the caller, which needs a token.",
    "schema": {
        "type": "string",
        "maxLength": MAX_KEY_LENGTH,
        # Printable ASCII; HTTP drops spaces around a header's value.
        "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$",
    },
}
REPLAYED: Document = {
    "description": "The answer to an earlier request with the same idempotency key.",
    "schema": {"type": "string", "enum": ["true"]},
}
KEY_CONFLICT: Document = {
    "description": "422 The idempotency key was used for a different request.",
    "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{d.ERROR_RESPONSE}"}}},
}
# The variants: where their paths live under the REST prefix, and their operation ids' suffix.
VARIANTS: tuple[tuple[Variant, str, str], ...] = (
    ("sync", "", ""),
    ("async", "/async", "Async"),
    ("bulk", "/async/bulk", "AsyncBulk"),
)


def openapi_document(
    methods: Sequence[ServiceMethod],
    scheme: str,
    host: str,
    base_path: str,
    metrics: bool = False,
) -> Document:
    """With `metrics`, the `/metrics` route too."""
    tags: dict[str, Document] = {}
    paths: dict[str, Document] = {}
    schemas: Document = {}
    title = version = ""
    for variant, prefix, suffix in VARIANTS:
        chosen = [m for m in methods if m.asynchronous == (variant != "sync")]
        if not chosen:
            continue
        swagger = swagger_document(chosen, variant, scheme, host, base_path + prefix)
        title, version = swagger["info"]["title"], swagger["info"]["version"]
        for tag in swagger["tags"]:
            tags.setdefault(tag["name"], tag)
        for path, item in swagger["paths"].items():
            paths[prefix + path] = {
                # Whatever makes a bulk (answers 202) takes a key.
                method: _operation(operation, suffix, idempotent="202" in operation["responses"])
                for method, operation in item.items()
            }
        schemas |= {
            name: CORRECTED_SCHEMAS.get(name) or _schema(schema)
            for name, schema in swagger["definitions"].items()
        }
    security_schemes: Document = {
        SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "description": SECURITY_DESCRIPTION}
    }
    if metrics:
        path, item = metrics_path_item(f"{scheme}://{host}")
        paths[path] = item
        security_schemes["metricsToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "BULKOPS_METRICS_TOKEN",
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": f"{scheme}://{host}{base_path}"}],
        "tags": list(tags.values()),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes,
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _operation(swagger: Document, suffix: str, idempotent: bool) -> Document:
    operation: Document = {
        "tags": swagger["tags"],
        "description": swagger["description"],
        "operationId": swagger["operationId"] + suffix,
    }
    parameters = []
    for parameter in swagger.get("parameters", []):
        if parameter["in"] == "body":
            body = parameter["schema"]
            operation["requestBody"] = {
                "required": "required" in body or body.get("type") == "array",
                "content": {JSON: {"schema": _schema(body)}},
            }
            continue
        converted: Document = {
            "name": parameter["name"].replace("[]", "[0]"),
            "in": parameter["in"],
            "required": parameter.get("required", False),
        }
        schema = {
            key: value for key, value in parameter.items() if key in ("type", "items", "enum")
        }
        if "description" in parameter:
            converted["description"] = parameter["description"]
        converted["schema"] = schema
        parameters.append(converted)
    if idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    if parameters:
        operation["parameters"] = parameters
    produces = swagger.get("produces", [JSON])
    operation["responses"] = {
        status: _response(response, produces if status.startswith("2") else [JSON])
        for status, response in swagger["responses"].items()
    }
    if idempotent:
        responses = operation["responses"]
        responses["202"]["headers"] = {REPLAYED_HEADER: REPLAYED}
        responses["422"] = KEY_CONFLICT
        responses["default"] = responses.pop("default")  # still last
    if "security" in swagger:
        operation["security"] = swagger["security"]
    return operation


def _response(swagger: Document, media_types: Sequence[str]) -> Document:
    response: Document = {"description": swagger["description"]}
    if "schema" in swagger:
        schema = _schema(swagger["schema"])
        response["content"] = {media_type: {"schema": schema} for media_type in media_types}
    return response


def _schema(value: Any) -> Any:
    """References into components; `x-nullable` as a `null` type."""
    if isinstance(value, list):
        return [_schema(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if key == "$ref":
            converted[key] = item.replace("#/definitions/", "#/components/schemas/")
        elif key != "x-nullable":
            converted[key] = _schema(item)
    if value.get("x-nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted
