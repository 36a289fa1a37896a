"""Every knob of the service, read from environment variables prefixed `BULKOPS_`."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bulkops.criteria import PageLimits


class Website(BaseModel):
    id: int
    code: str
    name: str


class StoreView(BaseModel):
    id: int
    code: str
    name: str
    website_id: int


def _default_websites() -> list[Website]:
    return [Website(id=1, code="base", name="Main Website")]


def _default_store_views() -> list[StoreView]:
    return [StoreView(id=1, code="default", name="Default Store View", website_id=1)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BULKOPS_", env_nested_delimiter="__")

    database_url: str = "sqlite+aiosqlite:///var/bulkops.sqlite3"
    """SQLAlchemy URL; `sqlite:///`, `postgresql://` and `mysql://` get their async driver."""
    host: str = "127.0.0.1"
    port: int = 8080

    admin_username: str | None = None
    """With `admin_password`, creates or updates this admin user at start."""
    admin_password: SecretStr | None = None

    admin_token_lifetime_hours: float = 4.0
    login_max_failures: int = 6
    login_lock_minutes: float = 30.0

    input_limit_enabled: bool = False
    """Magento's Web API input limits: a default and a maximum search page size."""
    default_page_size: int = 20
    maximum_page_size: int = 300

    operation_id: Literal["id", "operation_key"] = "id"
    """What an operation's `id` is in responses: its global id, or (Magento 2.4) its index
    in the request, for clients that match `request_items[].id` with `operations_list[].id`."""

    base_url: str = ""
    """Public base URL reported by storeConfigs; derived from the request when empty."""
    websites: list[Website] = Field(default_factory=_default_websites)
    store_views: list[StoreView] = Field(default_factory=_default_store_views)

    @cached_property
    def page_limits(self) -> PageLimits:
        return PageLimits(
            enabled=self.input_limit_enabled,
            default_page_size=self.default_page_size,
            maximum_page_size=self.maximum_page_size,
        )

    @cached_property
    def store_codes(self) -> frozenset[str]:
        """Codes accepted in `/rest/<code>/V1/...`; `all` selects the admin store."""
        return frozenset({"all", *(view.code for view in self.store_views)})
