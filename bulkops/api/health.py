"""`GET /health`, for load balancers and monitors: 200 while the process can reach its
database, Magento's 503 body while it cannot. No token: it reveals nothing."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.formats import JSON

HEALTH_PATH = "/health"


async def health(request: Request) -> Response:
    async with request.app.state.database.read() as connection:
        await connection.execute(text("SELECT 1"))
    # Not a Magento route: plain JSON whatever the monitor's Accept says.
    return Response(JSON.document({"status": "ok"}), media_type=JSON.content_type)


routes = [Route(HEALTH_PATH, health, methods=["GET"])]
