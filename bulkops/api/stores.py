"""The store endpoints clients call right after logging in, with Magento's shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bulkops.api.auth import require
from bulkops.api.hosts import public_base_url
from bulkops.api.negotiation import query_of
from bulkops.api.responses import ApiResponse
from bulkops.auth.context import STORES
from bulkops.errors import InputError
from bulkops.settings import Settings

# Magento's admin website, store group and store view (id 0), always present.
ADMIN_WEBSITE = {"id": 0, "code": "admin", "name": "Admin", "default_group_id": 0}
ADMIN_GROUP = {
    "id": 0,
    "website_id": 0,
    "root_category_id": 0,
    "default_store_id": 0,
    "name": "Default",
    "code": "default",
}
ADMIN_VIEW = {
    "id": 0,
    "code": "admin",
    "name": "Admin",
    "website_id": 0,
    "store_group_id": 0,
    "is_active": 1,
}


def _default_view_id(settings: Settings, website_id: int) -> int:
    return next(view.id for view in settings.store_views if view.website_id == website_id)


def websites(settings: Settings) -> list[dict[str, Any]]:
    # One store group per website, numbered as the website.
    return [ADMIN_WEBSITE] + [
        {"id": site.id, "code": site.code, "name": site.name, "default_group_id": site.id}
        for site in settings.websites
    ]


def store_groups(settings: Settings) -> list[dict[str, Any]]:
    return [ADMIN_GROUP] + [
        {
            "id": site.id,
            "website_id": site.id,
            "root_category_id": 2,
            "default_store_id": _default_view_id(settings, site.id),
            "name": f"{site.name} Store",
            "code": f"{site.code}_store",
        }
        for site in settings.websites
    ]


def store_views(settings: Settings) -> list[dict[str, Any]]:
    return [ADMIN_VIEW] + [
        {
            "id": view.id,
            "code": view.code,
            "name": view.name,
            "website_id": view.website_id,
            "store_group_id": view.website_id,
            "is_active": 1,
        }
        for view in settings.store_views
    ]


def store_configs(
    settings: Settings, base_url: str, codes: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every store view's configuration, or (StoreConfigManager) only the views `codes` name."""
    secure = base_url.replace("http://", "https://", 1)
    return [
        {
            "id": view.id,
            "code": view.code,
            "website_id": view.website_id,
            "locale": "en_US",
            "base_currency_code": "USD",
            "default_display_currency_code": "USD",
            "timezone": "UTC",
            "weight_unit": "lbs",
            "base_url": base_url,
            "base_link_url": base_url,
            "base_static_url": f"{base_url}static/",
            "base_media_url": f"{base_url}media/",
            "secure_base_url": secure,
            "secure_base_link_url": secure,
            "secure_base_static_url": f"{secure}static/",
            "secure_base_media_url": f"{secure}media/",
        }
        for view in settings.store_views
        if not codes or view.code in codes
    ]


def _store_codes(request: Request) -> list[str]:
    """`storeCodes[]=...`, a `string[]` as Magento's service input processor reads it."""
    sent = query_of(request.scope).get("storeCodes", "")
    if sent == "":
        return []
    if not isinstance(sent, dict):
        raise InputError.invalid_type("storeCodes", sent, "string[]")
    for index, code in sent.items():
        if not isinstance(code, str):
            raise InputError.invalid_type(f"storeCodes[{index}]", "array", "string")
    return list(sent.values())


def _listing(build: Callable[[Request], list[dict[str, Any]]]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        await require(request, STORES)
        return ApiResponse(build(request))

    return endpoint


routes = [
    Route(
        "/V1/store/websites",
        _listing(lambda request: websites(request.app.state.settings)),
        methods=["GET"],
    ),
    Route(
        "/V1/store/storeGroups",
        _listing(lambda request: store_groups(request.app.state.settings)),
        methods=["GET"],
    ),
    Route(
        "/V1/store/storeViews",
        _listing(lambda request: store_views(request.app.state.settings)),
        methods=["GET"],
    ),
    Route(
        "/V1/store/storeConfigs",
        _listing(
            lambda request: store_configs(
                request.app.state.settings, public_base_url(request), _store_codes(request)
            )
        ),
        methods=["GET"],
    ),
]
