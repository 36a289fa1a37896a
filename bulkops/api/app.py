"""The ASGI application: routes, error bodies, and what lives for the life of the process."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asyncpg.exceptions import QueryCanceledError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bulkops.api import (
    bulk,
    bulk_deletion,
    bulk_events,
    changes,
    facets,
    failed_items,
    health,
    resubmission,
    retry,
    retry_search,
    revocation,
    stores,
    submission,
    swagger_ui,
    token,
    webhooks,
)
from bulkops.api.bulk_watch import BulkWatch
from bulkops.api.etags import BulkTags
from bulkops.api.hosts import TrustedHostMiddleware
from bulkops.api.paths import RestPathMiddleware
from bulkops.api.rate_limits import RateLimits
from bulkops.api.representations import OperationView
from bulkops.api.responses import NegotiationMiddleware, error_response
from bulkops.api.schema import endpoints as schema
from bulkops.auth.service import AuthService
from bulkops.console import routes as console_routes
from bulkops.console.session import Sessions
from bulkops.errors import (
    InputError,
    InsufficientStorageError,
    InternalError,
    RouteNotFoundError,
    ServiceUnavailableError,
    WebapiError,
    new_report_id,
)
from bulkops.handlers.loading import load_routes
from bulkops.heap import freeze_started_process
from bulkops.metrics.endpoint import METRICS_PATH
from bulkops.metrics.endpoint import routes as metrics_routes
from bulkops.metrics.figures import CachedFigures
from bulkops.metrics.http import HttpMetricsMiddleware, RouteLabelMiddleware
from bulkops.metrics.pool import watch_pool
from bulkops.metrics.processes import process_ended
from bulkops.outages import driver_message
from bulkops.queue import create_transport
from bulkops.services.data_hash import DataHasher
from bulkops.services.payloads import Payloads
from bulkops.settings import Settings
from bulkops.store import statement_limits
from bulkops.store.database import Database, is_storage_full, is_unavailable
from bulkops.store.migrate import upgrade
from bulkops.worker import Worker

log = logging.getLogger("bulkops.api")


async def _webapi_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, WebapiError)
    return error_response(error)


async def _http_error(_request: Request, error: Exception) -> Response:
    # Starlette's 404 and 405 are both Magento's "no route" (routes include the method).
    assert isinstance(error, HTTPException)
    return error_response(RouteNotFoundError())


async def _database_error(request: Request, error: Exception) -> Response:
    if statement_limits.timed_out(error):
        seconds = request.app.state.database.limits.read_seconds
        return error_response(ServiceUnavailableError.statement_timeout(seconds))
    if statement_limits.invalid_regexp(error):
        # The dialect check passed it, and the database read it otherwise.
        reason = str(error.orig if isinstance(error, DBAPIError) else error)
        return error_response(
            InputError("The regular expression is not valid: %reason.", {"reason": reason})
        )
    if is_storage_full(error):
        log.warning("database full: %s", error)
        return error_response(InsufficientStorageError("The database is full. Try again later."))
    if not is_unavailable(error):
        raise error  # a bug
    # The driver's message: SQLAlchemy's would add the statement's values (an item's data).
    log.warning("database unavailable: %s", driver_message(error))
    return error_response(ServiceUnavailableError("The database is unavailable. Try again later."))


class InternalErrorMiddleware:
    """Magento's 500 for an unexpected exception. Starlette's own handler re-raises it to the
    server, which then drops the connection under a client about to reuse it; here it ends
    with the response, unless the response had started (a broken stream must stay broken)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            # The client left (or was cut off by a read deadline) mid-body: nobody to answer.
            log.info("client disconnected before its request's body was read")
        except Exception as error:
            if started:
                raise
            report_id = new_report_id()
            log.exception("internal error, report %s", report_id, exc_info=error)
            await error_response(InternalError(report_id))(scope, receive, send)


def create_app(
    settings: Settings | None = None, run_worker: bool = True, own_process: bool = False
) -> Starlette:
    """The app; with `run_worker` it also processes operations, in the same process. With
    `own_process` (`bulkops serve`), the process is the app's alone: once started, what it
    holds is frozen (`heap`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = Database.from_settings(settings)
        await upgrade(database)
        app.state.settings = settings
        app.state.database = database
        app.state.auth = AuthService(database, settings)
        app.state.payloads = Payloads.from_settings(settings)
        app.state.rate_limits = RateLimits(settings)
        app.state.operation_view = OperationView(app.state.payloads, settings.operation_id)
        app.state.bulk_tags = BulkTags.from_settings(settings)
        app.state.bulk_watch = BulkWatch(database, settings.change_poll_seconds)
        app.state.routes = load_routes(settings, database)
        app.state.data_hasher = await DataHasher.of_installation(settings, database)
        app.state.metrics_figures = CachedFigures(database, settings.metrics_cache_seconds)
        watch_pool(database)
        await app.state.auth.bootstrap_admin()
        if settings.console_enabled:
            app.state.console_sessions = await Sessions.of_installation(settings, database)
        # One transport for the process: submissions announce their messages on it, and the
        # worker (if any) consumes through it.
        transport = create_transport(settings, database)
        app.state.transport = transport
        worker = (
            Worker.from_settings(settings, database, app.state.routes, transport=transport)
            if run_worker
            else None
        )
        if worker is not None:
            await worker.start()
        # Whatever earlier processes left in the outbox.
        transport.announce()
        if own_process:
            freeze_started_process()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await app.state.bulk_watch.close()
            await transport.close()
            await database.dispose()
            process_ended(os.getpid())

    app = Starlette(
        routes=[
            # Before the bulk routes: `changes` is not a bulk uuid.
            *changes.routes,
            *bulk.routes,
            *bulk_deletion.routes,
            *bulk_events.routes,
            *failed_items.routes,
            *facets.routes,
            *health.routes,
            *resubmission.routes,
            *retry.routes,
            *retry_search.routes,
            *stores.routes,
            *token.routes,
            *revocation.routes,
            # Before the submissions: `/async/schema` is not a route to submit to.
            *schema.routes,
            *swagger_ui.routes,
            *submission.routes,
            *webhooks.routes,
            *(console_routes(settings.console_path) if settings.console_enabled else []),
            *(metrics_routes if settings.metrics_enabled else []),
        ],
        middleware=[
            # Outermost: it sees every response, the 500s below included.
            *(
                [Middleware(HttpMetricsMiddleware, unmeasured=frozenset({METRICS_PATH}))]
                if settings.metrics_enabled
                else []
            ),
            Middleware(InternalErrorMiddleware),
            Middleware(TrustedHostMiddleware, trusted_hosts=settings.trusted_hosts),
            Middleware(
                RestPathMiddleware,
                store_codes=settings.store_codes,
                # The console's pages and the metrics are served as they are.
                served_as_is=[
                    *([settings.console_path] if settings.console_enabled else []),
                    *([METRICS_PATH] if settings.metrics_enabled else []),
                ],
            ),
            Middleware(NegotiationMiddleware),
            Middleware(RouteLabelMiddleware),
        ],
        exception_handlers={
            WebapiError: _webapi_error,
            HTTPException: _http_error,
            DBAPIError: _database_error,
            # asyncpg's own, where SQLAlchemy lets it through (reading a cursor).
            QueryCanceledError: _database_error,
            PoolTimeoutError: _database_error,
            # Drivers raise their own socket errors while connecting (asyncpg's refused
            # connection); in a request, the only I/O besides the client is the database.
            OSError: _database_error,
        },
        lifespan=lifespan,
    )
    # Paths arrive without trailing slashes; never answer with a redirect.
    app.router.redirect_slashes = False
    return app
