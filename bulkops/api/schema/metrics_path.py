"""`/metrics` in the OpenAPI document: outside the REST prefix (a server of its own), text in
Prometheus's format, with its own access rules instead of the API's tokens."""

from __future__ import annotations

from bulkops.api.schema.definitions import ERROR_RESPONSE
from bulkops.api.schema.swagger import Document
from bulkops.metrics.endpoint import METRICS_PATH


def metrics_path_item(origin: str) -> tuple[str, Document]:
    error = {"$ref": f"#/components/schemas/{ERROR_RESPONSE}"}
    operation: Document = {
        "tags": ["metrics"],
        "operationId": "metricsGet",
        "description": "Prometheus metrics in the text exposition format: operations "
        "accepted and finished by topic, handler and HTTP latency histograms, queue depth, "
        "open operations, database pool use. Allowed from BULKOPS_METRICS_ALLOWED_NETWORKS "
        "(loopback by default) or with BULKOPS_METRICS_TOKEN as a bearer token.",
        "security": [{}, {"metricsToken": []}],
        "responses": {
            "200": {
                "description": "The metrics",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "403": {
                "description": "Neither from an allowed network nor with the token",
                "content": {"application/json": {"schema": error}},
            },
        },
    }
    return METRICS_PATH, {"servers": [{"url": origin}], "get": operation}
