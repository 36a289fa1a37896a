"""Responses as Magento sends them: JSON (`application/json; charset=utf-8`) or, when the
request's Accept asks for it, Magento's XML; a GET's answer through its `fields` filter. Errors
are rendered the same way, never filtered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bulkops.api.fields import FieldsFilter
from bulkops.api.health import HEALTH_PATH
from bulkops.api.negotiation import (
    FIELDS_KEY,
    accept_types_of,
    asks_for_events,
    fields_of,
    format_for,
    format_of,
    query_of,
)
from bulkops.errors import NotAcceptableError, WebapiError


class ApiResponse(Response):
    """`content` rendered when it is sent, since only the request knows the format."""

    def __init__(
        self, content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.content = content
        self.status_code = status_code
        self.extra_headers = headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rendering = format_of(scope)
        content = self.content
        fields = fields_of(scope)
        if fields is not None and self.status_code < 400:
            content = fields.apply(content)
        Response.__init__(
            self,
            rendering.document(content),
            self.status_code,
            self.extra_headers,
            media_type=rendering.content_type,
        )
        await super().__call__(scope, receive, send)


def error_response(error: WebapiError) -> ApiResponse:
    return ApiResponse(error.body(), status_code=error.status_code, headers=error.headers)


class NegotiationMiddleware:
    """Refuses (406) an Accept header no format satisfies before anything runs, as Magento
    fails while building its response, and reads a GET's `fields` parameter once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        try:
            types = accept_types_of(scope)
            if format_for(types) is None and not asks_for_events(scope, types):
                raise NotAcceptableError.of(types)
            if scope["method"] == "GET":
                scope[FIELDS_KEY] = FieldsFilter.of_query(query_of(scope))
        except WebapiError as error:
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)
