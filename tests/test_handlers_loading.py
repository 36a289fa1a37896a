"""Which routes a process serves: the demo, the upstreams file, then the handler modules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkops.handlers import OperationInput, registry
from bulkops.handlers.base import HandlerConfigError, NotRetriableError
from bulkops.handlers.loading import close_routes, load_routes
from bulkops.handlers.registry import HandlerRegistry
from bulkops.handlers.upstream import UpstreamHandler
from bulkops.settings import Settings
from bulkops.store.database import Database

FIXTURES = "tests.handler_fixtures"
ECHO = f"{FIXTURES}.echo"
CUSTOMERS_UPSTREAM = """
[[upstream]]
name = "shop"
base_url = "https://shop.example.com/rest/default"
[[upstream.route]]
method = "POST"
path = "/V1/customers"
service = "Magento\\\\Customer\\\\Api\\\\AccountManagementInterface::createAccount"
"""


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a fresh process: nothing registered, no handler module imported."""

    def forget_fixture_modules() -> None:
        for name in [name for name in sys.modules if name.startswith(f"{FIXTURES}.")]:
            del sys.modules[name]

    monkeypatch.setattr(registry, "_routes", {})
    forget_fixture_modules()
    yield
    forget_fixture_modules()


@pytest.fixture
def database() -> Database:
    return Database("sqlite:///:memory:")


def keys(routes: HandlerRegistry) -> list[tuple[str, str]]:
    return [(route.method, route.path) for route in routes.routes()]


def operation(payload: Any) -> OperationInput:
    return OperationInput(payload, "uuid", 1, 0, "default", 2, 1)


def test_default_is_the_demo_customers_route(database: Database) -> None:
    routes = load_routes(Settings(), database)
    assert keys(routes) == [("POST", "/V1/customers")]
    (route,) = routes.routes()
    assert route.resource == "anonymous" and route.validate is not None
    assert (
        routes.by_topic(
            "async.magento.customer.api.accountmanagementinterface.createaccount.post", "service"
        )
        is route
    )


def test_demo_can_be_switched_off(database: Database) -> None:
    assert keys(load_routes(Settings(demo_customers=False), database)) == []


async def test_handler_module_routes_are_served_as_registered(database: Database) -> None:
    routes = load_routes(Settings(handler_modules=[ECHO], demo_customers=False), database)
    (route,) = routes.routes()
    assert (route.method, route.path, route.resource) == (
        "POST",
        "/V1/echo/:name",
        "Vendor_Echo::echo",
    )
    assert route.max_attempts == 3
    assert routes.match("POST", "/V1/echo/byName", bulk=True) == (route, {})
    assert await route.handler(operation({"name": "x"})) == {
        "echo": {"name": "x"},
        "store": "default",
    }
    with pytest.raises(NotRetriableError) as raised:
        await route.handler(operation({"name": "x", "fail": True}))
    assert raised.value.result_message == "Cannot echo x."


def test_upstream_file_routes_are_served(tmp_path: Path, database: Database) -> None:
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(CUSTOMERS_UPSTREAM.replace("/V1/customers", "/V1/orders"))
    routes = load_routes(Settings(upstreams_file=upstreams), database)
    assert keys(routes) == [("POST", "/V1/customers"), ("POST", "/V1/orders")]
    assert isinstance(routes.routes()[1].handler, UpstreamHandler)


def test_upstream_replaces_the_demo_and_a_module_replaces_both(
    tmp_path: Path, database: Database
) -> None:
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(CUSTOMERS_UPSTREAM)
    over_demo = load_routes(Settings(upstreams_file=upstreams), database)
    (route,) = over_demo.routes()
    assert isinstance(route.handler, UpstreamHandler)

    modules = [f"{FIXTURES}.customers"]
    over_both = load_routes(Settings(upstreams_file=upstreams, handler_modules=modules), database)
    (route,) = over_both.routes()
    assert route.handler.__module__ == f"{FIXTURES}.customers"
    assert route.validate is None


async def test_loading_again_gives_the_same_routes_and_leaves_the_registry_alone(
    tmp_path: Path, database: Database
) -> None:
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(CUSTOMERS_UPSTREAM.replace("/V1/customers", "/V1/orders"))
    settings = Settings(upstreams_file=upstreams, handler_modules=[ECHO, ECHO])
    first, second = load_routes(settings, database), load_routes(settings, database)

    expected = [("POST", "/V1/customers"), ("POST", "/V1/orders"), ("POST", "/V1/echo/:name")]
    assert keys(first) == keys(second) == expected
    assert first is not second
    # The demo and upstream routes live in each returned registry, never the shared one.
    assert keys(registry) == [("POST", "/V1/echo/:name")]
    await close_routes(first)
    await close_routes(second)


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        (f"{FIXTURES}.broken", "RuntimeError: broken on purpose"),
        (f"{FIXTURES}.missing", f"ModuleNotFoundError: No module named '{FIXTURES}.missing'"),
    ],
)
def test_a_module_that_cannot_be_imported_stops_loading(
    database: Database, module: str, reason: str
) -> None:
    with pytest.raises(HandlerConfigError) as raised:
        load_routes(Settings(handler_modules=[ECHO, module]), database)
    assert str(raised.value) == (
        f'Cannot import the handler module "{module}" named in BULKOPS_HANDLER_MODULES: {reason}'
    )


def test_a_bad_upstreams_file_stops_loading(tmp_path: Path, database: Database) -> None:
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(CUSTOMERS_UPSTREAM.replace('method = "POST"', 'method = "GET"'))
    with pytest.raises(HandlerConfigError, match=r"upstream\[0\]\.route\[0\]\.method"):
        load_routes(Settings(upstreams_file=upstreams), database)


def test_handler_modules_setting_is_a_json_list(
    monkeypatch: pytest.MonkeyPatch, database: Database
) -> None:
    monkeypatch.setenv("BULKOPS_HANDLER_MODULES", f'["{ECHO}"]')
    monkeypatch.setenv("BULKOPS_DEMO_CUSTOMERS", "false")
    assert keys(load_routes(Settings(), database)) == [("POST", "/V1/echo/:name")]
