"""The operator console: Magento's Bulk Actions log in the browser, served by `bulkops serve`
at `BULKOPS_CONSOLE_PATH` (see docs/console.md)."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bulkops.console import access, dashboard, details, log, search, sign_in
from bulkops.console.rendering import signed_in

STATIC = Path(__file__).parent / "static"


def routes(path: str) -> list[BaseRoute]:
    """The console's routes, under `path`."""
    return [
        Route(path, lambda _request: RedirectResponse(f"{path}/"), methods=["GET"]),
        Mount(
            path,
            routes=[
                Route("/", signed_in(log.bulk_log_page), methods=["GET"]),
                Route("/sign-in", sign_in.sign_in_form, methods=["GET"]),
                Route("/sign-in", sign_in.sign_in, methods=["POST"]),
                Route(
                    "/sign-out", signed_in(sign_in.sign_out, needs_bulks=False), methods=["POST"]
                ),
                Route("/search", signed_in(search.search_page), methods=["GET"]),
                Route("/dashboard", signed_in(dashboard.dashboard_page), methods=["GET"]),
                # Access has its own resources, not the bulk one.
                Route("/access", signed_in(access.access_page, needs_bulks=False)),
                Route(
                    "/access/admins",
                    signed_in(access.admin_action, needs_bulks=False),
                    methods=["POST"],
                ),
                Route(
                    "/access/integrations",
                    signed_in(access.create_integration, needs_bulks=False),
                    methods=["POST"],
                ),
                Route(
                    "/access/integrations/revoke",
                    signed_in(access.revoke_integration, needs_bulks=False),
                    methods=["POST"],
                ),
                Route("/bulks/{bulk_uuid}", signed_in(details.bulk_page), methods=["GET"]),
                Route(
                    "/bulks/{bulk_uuid}/progress", signed_in(details.bulk_progress), methods=["GET"]
                ),
                Route("/bulks/{bulk_uuid}/group", signed_in(details.group_items), methods=["GET"]),
                Route("/bulks/{bulk_uuid}/retry", signed_in(details.retry), methods=["POST"]),
                Route("/bulks/{bulk_uuid}/dismiss", signed_in(details.dismiss), methods=["POST"]),
                Mount("/static", app=StaticFiles(directory=STATIC), name="console-static"),
            ],
        ),
    ]
