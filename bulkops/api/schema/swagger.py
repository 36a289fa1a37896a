"""Swagger 2.0 documents as Magento's Webapi\\Model\\Rest\\Swagger\\Generator writes them,
for the synchronous routes and the asynchronous ones (with Magento_WebapiAsync's 202
`asynchronous-operations-data-async-response-interface` response, Plugin\\ServiceMetadata),
single or bulk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from bulkops.api.schema import definitions as d
from bulkops.api.schema.catalog import ServiceMethod
from bulkops.api.schema.naming import operation_id, swagger_path
from bulkops.api.submission import MAX_RETENTION_DAYS, RETENTION_HEADER
from bulkops.auth.context import ANONYMOUS
from bulkops.services.webhook_targets import CALLBACK_HEADER

Variant = Literal["sync", "async", "bulk"]
Document = dict[str, Any]

TITLE = "bulkops"
VERSION = "2.4"
"""The Magento version whose Web API is served (Magento writes its major.minor here)."""
SECURITY_SCHEME = "api_key"
SECURITY_DESCRIPTION = (
    "An admin or integration token, sent as `Authorization: Bearer <token>`; get one from "
    "POST /V1/integration/admin/token."
)
ERROR_DESCRIPTIONS = {
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    410: "410 Gone",
}


def swagger_document(
    methods: Sequence[ServiceMethod], variant: Variant, scheme: str, host: str, base_path: str
) -> Document:
    """The document of `methods` (already selected for the caller) under `base_path`."""
    tags: dict[str, Document] = {}
    paths: dict[str, dict[str, Document]] = {}
    taken: set[str] = set()
    for method in methods:
        tags.setdefault(method.service, {"name": method.service, "description": method.interface})
        path = method.bulk_path if variant == "bulk" and method.bulk_path else method.path
        operation = _operation(method, variant, taken)
        paths.setdefault(swagger_path(path), {})[method.http_method.lower()] = operation
    document: Document = {
        "swagger": "2.0",
        "info": {"version": VERSION, "title": TITLE},
        "host": host,
        "basePath": base_path,
        "schemes": [scheme],
        "tags": list(tags.values()),
        "paths": paths,
    }
    document["definitions"] = reachable_definitions(paths)
    # Swagger UI sends the token to every operation but the anonymous ones.
    document["securityDefinitions"] = {
        SECURITY_SCHEME: {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": SECURITY_DESCRIPTION,
        }
    }
    document["security"] = [{SECURITY_SCHEME: []}]
    return document


def _operation(method: ServiceMethod, variant: Variant, taken: set[str]) -> Document:
    identifier = operation_id(method.service, method.method, method.http_method)
    # Two routes of one service method and HTTP method (possible for registered routes)
    # still get distinct operation ids.
    unique, count = identifier, 1
    while unique in taken:
        count += 1
        unique = f"{identifier}{count}"
    taken.add(unique)
    operation: Document = {
        "tags": [method.service],
        "description": method.description,
        "operationId": unique,
    }
    parameters = list(_parameters(method, variant, unique))
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = _responses(method, variant)
    if method.result_types:
        operation["produces"] = list(method.result_types)
    if method.resource == ANONYMOUS:
        operation["security"] = []
    return operation


def _parameters(method: ServiceMethod, variant: Variant, identifier: str) -> Iterator[Document]:
    """Path parameters, query parameters, then the body (Generator::generateMethodParameters).
    A bulk request's body is an array of items that carry the path's parameters (Magento's
    bulk schema, on BulkServiceConfig's `/bySku/` paths, describes a single such item)."""
    body = method.body
    if variant == "bulk":
        item: Document = dict(body or {"type": "object"})
        path_parameters = method.path_parameters
        if path_parameters:
            item["properties"] = dict(item.get("properties", {})) | {
                parameter.name: parameter.schema for parameter in path_parameters
            }
            item["required"] = [*item.get("required", []), *(p.name for p in path_parameters)]
        body = {"type": "array", "items": item}
    else:
        for parameter in method.path_parameters:
            yield {"name": parameter.name, "in": "path", **parameter.schema, "required": True}
    for parameter in method.query:
        yield {"name": parameter.name, "in": "query", **parameter.schema}
    if body is not None:
        yield {"name": f"{identifier}Body", "in": "body", "schema": body}
    if variant != "sync" or method.result_status == 202:
        yield RETENTION_PARAMETER
        yield CALLBACK_PARAMETER


RETENTION_PARAMETER: Document = {
    "name": RETENTION_HEADER,
    "in": "header",
    "type": "integer",
    "description": f"Days to keep this bulk (1 to {MAX_RETENTION_DAYS}) instead of the "
    "installation's lifetime setting: the cleanup deletes it once they have passed.",
}


SUCCESS_DESCRIPTIONS = {200: "200 Success.", 202: "202 Accepted."}

CALLBACK_PARAMETER: Document = {
    "name": CALLBACK_HEADER,
    "in": "header",
    "type": "string",
    "description": "An http or https URL, on one of the installation's allowed webhook hosts, "
    "that receives a signed `bulk.completed` event (Standard Webhooks) each time this bulk "
    "completes; its deliveries are listed by GET /V1/bulk/{bulkUuid}/webhooks.",
}


def _responses(method: ServiceMethod, variant: Variant) -> Document:
    responses: Document = {}
    if variant == "sync":
        if method.result is not None:
            responses[str(method.result_status)] = {
                "description": SUCCESS_DESCRIPTIONS[method.result_status],
                "schema": method.result,
            }
    else:
        responses["202"] = {"description": "202 Accepted.", "schema": d.ref(d.ASYNC_RESPONSE)}
    error_schema = d.ref(d.ERROR_RESPONSE)
    statuses = [] if method.resource == ANONYMOUS else [401]
    if variant == "sync":
        statuses += method.errors
    for status in sorted(set(statuses)):
        responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "schema": error_schema}
    responses["default"] = {"description": "Unexpected error", "schema": error_schema}
    return responses


def reachable_definitions(root: Any) -> Document:
    """The definitions `root` refers to, directly or through other definitions, errors first
    as Magento lists them."""
    pool = d.ERRORS | d.DATA
    found: Document = {}
    pending = list(_references(root))
    while pending:
        name = pending.pop()
        if name not in found:
            found[name] = pool[name]
            pending.extend(_references(pool[name]))
    return {name: found[name] for name in pool if name in found}


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item.removeprefix("#/definitions/")
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
