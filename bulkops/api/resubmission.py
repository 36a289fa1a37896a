"""`POST /V1/bulk/:bulkUuid/resubmit`: corrected items for a bulk's failed operations, as one
new bulk.

The body is `[{"operation_key": 3, "item": {...}}, ...]`: for each failed operation (status 2
or 3) of the bulk, by its key in the bulk, the item as it would be submitted to the
operation's route now. Each item is accepted or rejected exactly as in a bulk submission to
that route, and the answer is a submission's (202 with `bulk_uuid`, `request_items` in the
body's order, `errors`). Each old operation whose item was accepted says where it went
(`resubmitted_to`, in the failed-items export) and is neither resubmitted nor retried again;
one whose item was rejected stays as it was, to be corrected again.

Who may: the caller needs the bulk resource, reads the bulk (another's is missing), and needs
the resource of each resubmitted operation's route, as retrying needs. An `Idempotency-Key`
works as on submissions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require_bulk_reader
from bulkops.api.bulk import bulk_or_404
from bulkops.api.request_body import decode, read_body
from bulkops.api.responses import ApiResponse
from bulkops.api.retry import require_route_resources
from bulkops.api.submission import body_limit, bulk_items, retention_of
from bulkops.errors import InputError
from bulkops.handlers.base import AsyncRoute
from bulkops.handlers.registry import HandlerRegistry
from bulkops.services.idempotency import REPLAYED, RequestDigest, key_scope
from bulkops.services.submission import prepare_routed, submit
from bulkops.settings import Settings
from bulkops.store import resubmissions

KEY = "operation_key"
ITEM = "item"
_ENTRY_EXAMPLE = '[{"operation_key": 0, "item": {...}}]'


def _corrections(entries: list[Any]) -> list[tuple[int, Any]]:
    """(old operation key, corrected item) for each entry of the body, each key once."""
    if not entries:
        raise InputError(
            "The body must list the items to resubmit, as %example.", {"example": _ENTRY_EXAMPLE}
        )
    corrections: dict[int, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {KEY, ITEM}:
            raise InputError(
                "Each item to resubmit must be an object with exactly the keys %key and "
                "%item, as %example.",
                {"key": KEY, "item": ITEM, "example": _ENTRY_EXAMPLE},
            )
        key = entry[KEY]
        if not isinstance(key, int) or isinstance(key, bool):
            raise InputError.invalid_type(KEY, orjson.dumps(key).decode(), "int")
        if key in corrections:
            raise InputError(
                "Operation %operationKey is listed more than once.", {"operationKey": key}
            )
        corrections[key] = entry[ITEM]
    return list(corrections.items())


def _keys_text(keys: Sequence[int]) -> str:
    return ", ".join(map(str, keys))


def _routes_of(
    registry: HandlerRegistry, topics: dict[int, str], keys: Sequence[int]
) -> list[AsyncRoute]:
    """The route of each operation, whose validation its corrected item goes through."""
    routes = []
    for key in keys:
        route = registry.for_topic(topics[key])
        if route is None:
            raise InputError(
                "Operation %operationKey has the topic %topic, which no route serves: it "
                "cannot be resubmitted.",
                {"operationKey": key, "topic": topics[key]},
            )
        routes.append(route)
    return routes


def _refused(keys: Sequence[int]) -> InputError:
    return InputError(
        "Only failed operations (status 2 or 3) not resubmitted before can be resubmitted; "
        "these cannot: %operationKeys.",
        {"operationKeys": _keys_text(keys)},
    )


async def resubmit(request: Request) -> Response:
    user = await require_bulk_reader(request)
    scope = key_scope(request.headers, user)
    retention = retention_of(request)
    state = request.app.state
    settings: Settings = state.settings
    raw = await read_body(request, body_limit(settings, user))
    corrections = _corrections(
        bulk_items(decode(raw, request.headers.get("content-type")), settings)
    )
    keys = [key for key, _ in corrections]
    async with state.database.read() as connection:
        found_bulk = await bulk_or_404(request, connection, user)
        found = await resubmissions.topics_by_key(connection, found_bulk["uuid"], keys)
    uuid = found_bulk["uuid"]
    missing = [key for key in keys if key not in found]
    if missing:
        raise InputError(
            "Bulk %bulkUuid has no operations with the keys %operationKeys.",
            {"bulkUuid": uuid, "operationKeys": _keys_text(missing)},
        )
    require_route_resources(state.routes, set(found.values()), user)
    routes = _routes_of(state.routes, found, keys)
    store_code = found_bulk["store_code"]
    digest = (
        None
        if scope is None
        else RequestDigest(
            scope, state.data_hasher, "POST", f"/V1/bulk/{uuid}/resubmit", True, store_code
        )
    )
    if digest is not None:
        # Which operations the items correct is part of the request, as the items are.
        digest.add(orjson.dumps(keys).decode())
    prepared = prepare_routed(
        [(route, item) for route, (_, item) in zip(routes, corrections, strict=True)],
        f"Resubmission of bulk {uuid}",
        user,
        settings.topic_style,
        store_code,
        state.data_hasher,
        state.payloads,
        digest,
        retention,
    )
    new_uuid = prepared.bulk.uuid
    links = [
        (old_key, status.id)
        for (old_key, _), status in zip(corrections, prepared.accepted.items, strict=True)
        if status.error_message is None
    ]

    async def link(connection: AsyncConnection) -> None:
        # Checked in the bulk's transaction: a request that resubmitted some of these
        # operations while this one ran has committed, or waits for this one to end.
        refused = await resubmissions.not_resubmittable(connection, uuid, keys)
        if not refused:
            refused = await resubmissions.link(connection, uuid, links, new_uuid)
        if refused:
            raise _refused(refused)

    key_retention = timedelta(hours=settings.idempotency_retention_hours)
    key = None if digest is None else digest.use(prepared.bulk.start_time, key_retention)
    submitted = await submit(state.database, prepared, key, within=link)
    if submitted.replayed:
        return ApiResponse(submitted.body, status_code=202, headers=REPLAYED)
    state.transport.announce()
    return ApiResponse(submitted.body, status_code=202)


routes = [Route("/V1/bulk/{bulk_uuid}/resubmit", resubmit, methods=["POST"])]
