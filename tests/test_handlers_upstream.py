"""The HTTP upstream handler against a real local HTTP server, and its TOML file's checks."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bulkops.auth.context import ALL_RESOURCES
from bulkops.handlers.base import (
    AsyncRoute,
    HandlerConfigError,
    NotRetriableError,
    OperationInput,
    RetriableError,
)
from bulkops.handlers.loading import close_routes
from bulkops.handlers.registry import HandlerRegistry
from bulkops.handlers.upstream import MESSAGE_LIMIT, load_upstreams
from tests.waiting import eventually

MAGENTO_ERROR = {
    "message": 'The "%fieldName" value is invalid.',
    "parameters": {"fieldName": "sku"},
}
LIST_ERROR = {"message": 'The "%1" attribute set doesn\'t exist.', "parameters": ["4"]}
AGGREGATE_ERROR = {
    "message": "One or more input exceptions have occurred.",
    "errors": [
        {
            "message": '"%fieldName" is required. Enter and try again.',
            "parameters": {"fieldName": "sku"},
        },
        {
            "message": '"%fieldName" is required. Enter and try again.',
            "parameters": {"fieldName": "name"},
        },
    ],
}
BUSY_ERROR = {"message": "Backend busy: %reason", "parameters": {"reason": "maintenance"}}
HTML_PAGE = "<html>" + "x" * 3000 + "</html>"


class FakeMagento(ThreadingHTTPServer):
    """Answers by path; counts requests and how many were in flight at once."""

    daemon_threads = True
    request_queue_size = 64  # the default 5 drops simultaneous connects (retried a second later)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeMagentoHandler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.permits = threading.Semaphore(0)
        """A held request (`/V1/held/...`) is answered once it takes a permit."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/rest/default"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.most_in_flight = 0
            self.permits = threading.Semaphore(0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) closes its connection: not a test failure."""


class FakeMagentoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeMagento

    def do_POST(self) -> None:
        self.answer()

    do_PUT = do_PATCH = do_DELETE = do_POST

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode() if length else ""
        path = self.path.removeprefix("/rest/default")
        request = {
            "method": self.command,
            "path": self.path,
            "body": json.loads(body) if body else None,
            "authorization": self.headers.get("Authorization"),
            "accept": self.headers.get("Accept"),
            "content_type": self.headers.get("Content-Type"),
        }
        with self.server.lock:
            self.server.requests.append(request)
        if path == "/V1/text":
            self.send(200, "plain answer", "text/plain")
        elif path == "/V1/empty":
            self.send(204, "")
        elif path == "/V1/magento-error":
            self.send(400, json.dumps(MAGENTO_ERROR))
        elif path == "/V1/list-error":
            self.send(404, json.dumps(LIST_ERROR))
        elif path == "/V1/aggregate-error":
            self.send(400, json.dumps(AGGREGATE_ERROR))
        elif path == "/V1/html":
            self.send(403, HTML_PAGE, "text/html")
        elif path.startswith("/V1/status/"):
            self.send(int(path.rsplit("/", 1)[1]), json.dumps(BUSY_ERROR))
        elif path.startswith("/V1/bare/"):
            self.send(int(path.rsplit("/", 1)[1]), "")
        elif path == "/V1/redirect":
            self.send(302, "", headers={"Location": "/elsewhere"})
        elif path.startswith("/V1/counted/"):
            self.counted(lambda: time.sleep(0.15))
        elif path.startswith("/V1/held/"):
            self.counted(lambda: self.server.permits.acquire(timeout=60))
        else:
            self.send(200, json.dumps(request))

    def counted(self, work: Callable[[], object]) -> None:
        with self.server.lock:
            self.server.in_flight += 1
            self.server.most_in_flight = max(self.server.most_in_flight, self.server.in_flight)
        work()
        with self.server.lock:
            self.server.in_flight -= 1
        self.send(200, "{}")

    def send(
        self,
        status: int,
        body: str,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def magento() -> Iterator[FakeMagento]:
    server = FakeMagento()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(magento: FakeMagento) -> FakeMagento:
    magento.reset()
    return magento


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upstreams_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "upstreams.toml"
    path.write_text(text)
    return path


Load = Callable[[Path], list[AsyncRoute]]


@pytest.fixture
async def load() -> AsyncIterator[Load]:
    """load_upstreams, and the upstreams' connections closed after the test."""
    loaded: list[list[AsyncRoute]] = []

    def load(path: Path) -> list[AsyncRoute]:
        loaded.append(load_upstreams(path))
        return loaded[-1]

    yield load
    for routes in loaded:
        await close_routes_of(routes)


async def close_routes_of(routes: list[AsyncRoute]) -> None:
    registry = HandlerRegistry()
    for route in routes:
        registry.add(route)
    await close_routes(registry)


def routes_for(load: Load, tmp_path: Path, base_url: str) -> dict[str, AsyncRoute]:
    """One upstream named `shop` with a route per path the fake server answers."""
    paths = [
        "/V1/echo",
        "/V1/text",
        "/V1/empty",
        "/V1/magento-error",
        "/V1/list-error",
        "/V1/aggregate-error",
        "/V1/html",
        "/V1/status/:code",
        "/V1/bare/:code",
        "/V1/redirect",
    ]
    routes = "".join(
        f"""
[[upstream.route]]
method = "POST"
path = "{path}"
service = "Vendor\\\\Shop\\\\Api\\\\Route{index}Interface::execute"
"""
        for index, path in enumerate(paths)
    )
    text = f"""
[[upstream]]
name = "shop"
base_url = "{base_url}"
headers = {{ Authorization = "Bearer upstream-token" }}
timeout_seconds = 5
max_attempts = 4
concurrency = 4

[[upstream.route]]
method = "PUT"
path = "/V1/products/:sku"
service = "Magento\\\\Catalog\\\\Api\\\\ProductRepositoryInterface::save"
resource = "Magento_Catalog::products"
{routes}
"""
    loaded = load(upstreams_file(tmp_path, text))
    return {f"{route.method} {route.path}": route for route in loaded}


def operation(payload: Any) -> OperationInput:
    return OperationInput(
        payload=payload,
        bulk_uuid="799a59c0-09ca-4d60-b432-2953986c1c38",
        operation_id=10,
        operation_key=0,
        store_code="default",
        user_type=2,
        user_id=1,
    )


@pytest.fixture
def shop(load: Load, tmp_path: Path, fake: FakeMagento) -> dict[str, AsyncRoute]:
    return routes_for(load, tmp_path, fake.base_url)


async def test_2xx_json_is_the_result_and_the_request_is_forwarded_as_configured(
    shop: dict[str, AsyncRoute], fake: FakeMagento
) -> None:
    payload = {"product": {"sku": "24-MB01", "name": "Joust Duffle Bag"}}
    result = await shop["POST /V1/echo"].handler(operation(payload))
    assert result == {
        "method": "POST",
        "path": "/rest/default/V1/echo",
        "body": payload,
        "authorization": "Bearer upstream-token",
        "accept": "application/json",
        "content_type": "application/json",
    }


async def test_path_parameters_come_from_the_payload_percent_encoded(
    shop: dict[str, AsyncRoute], fake: FakeMagento
) -> None:
    payload = {"sku": "bag 24/MB01", "product": {"name": "Bag"}}
    result = await shop["PUT /V1/products/:sku"].handler(operation(payload))
    assert result["method"] == "PUT"
    assert result["path"] == "/rest/default/V1/products/bag%2024%2FMB01"
    assert result["body"] == payload


@pytest.mark.parametrize("payload", [{"product": {}}, {"sku": ""}, {"sku": None}, ["x"]])
async def test_missing_path_parameter_fails_without_a_request(
    shop: dict[str, AsyncRoute], fake: FakeMagento, payload: Any
) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["PUT /V1/products/:sku"].handler(operation(payload))
    assert raised.value.result_message == '"sku" is required. Enter and try again.'
    assert raised.value.code == 0
    assert fake.requests == []


@pytest.mark.parametrize("dots", [".", "..", "%2e%2E", "%252E."])
async def test_dot_segment_path_parameter_fails_without_a_request(
    shop: dict[str, AsyncRoute], fake: FakeMagento, dots: str
) -> None:
    """Operations stored before submissions refused them fail too."""
    with pytest.raises(NotRetriableError) as raised:
        await shop["PUT /V1/products/:sku"].handler(operation({"sku": dots}))
    assert raised.value.result_message == f'Invalid value of "{dots}" provided for the sku field.'
    assert fake.requests == []


async def test_non_scalar_path_parameter_fails(shop: dict[str, AsyncRoute]) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["PUT /V1/products/:sku"].handler(operation({"sku": {"a": 1}}))
    assert (
        raised.value.result_message == '"sku" must be a string or a number to be part of the URL.'
    )


async def test_2xx_text_and_empty_bodies(shop: dict[str, AsyncRoute]) -> None:
    assert await shop["POST /V1/text"].handler(operation({})) == "plain answer"
    assert await shop["POST /V1/empty"].handler(operation({})) is None


async def test_4xx_magento_error_is_not_retriable_with_its_placeholders(
    shop: dict[str, AsyncRoute],
) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["POST /V1/magento-error"].handler(operation({}))
    error = raised.value
    assert (error.message, error.parameters, error.code) == (
        'The "%fieldName" value is invalid.',
        {"fieldName": "sku"},
        400,
    )
    assert error.result_message == 'The "sku" value is invalid.'


async def test_4xx_with_list_parameters(shop: dict[str, AsyncRoute]) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["POST /V1/list-error"].handler(operation({}))
    assert raised.value.code == 404
    assert raised.value.parameters == ["4"]
    assert raised.value.result_message == 'The "4" attribute set doesn\'t exist.'


async def test_4xx_aggregate_error_names_every_error(shop: dict[str, AsyncRoute]) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["POST /V1/aggregate-error"].handler(operation({}))
    assert raised.value.result_message == (
        "One or more input exceptions have occurred.; "
        '"sku" is required. Enter and try again.; "name" is required. Enter and try again.'
    )


async def test_4xx_without_magento_body_keeps_the_start_of_its_text(
    shop: dict[str, AsyncRoute],
) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["POST /V1/html"].handler(operation({}))
    assert raised.value.code == 403
    assert raised.value.message == HTML_PAGE[:MESSAGE_LIMIT]
    assert len(raised.value.message) == 1000


async def test_redirect_is_not_followed_and_not_retriable(shop: dict[str, AsyncRoute]) -> None:
    with pytest.raises(NotRetriableError) as raised:
        await shop["POST /V1/redirect"].handler(operation({}))
    assert (raised.value.code, raised.value.message) == (302, "HTTP 302 Found")


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_retriable_statuses(shop: dict[str, AsyncRoute], status: int) -> None:
    with pytest.raises(RetriableError) as raised:
        await shop["POST /V1/status/:code"].handler(operation({"code": status}))
    assert raised.value.code == status
    assert raised.value.result_message == "Backend busy: maintenance"


@pytest.mark.parametrize(("status", "retriable"), [(502, True), (404, False), (409, False)])
async def test_empty_error_bodies_name_the_status(
    shop: dict[str, AsyncRoute], status: int, retriable: bool
) -> None:
    with pytest.raises(RetriableError if retriable else NotRetriableError) as raised:
        await shop["POST /V1/bare/:code"].handler(operation({"code": status}))
    assert raised.value.code == status
    assert raised.value.message.startswith(f"HTTP {status} ")


async def test_timeout_is_retriable_and_does_not_wait_for_the_answer(
    load: Load, tmp_path: Path, fake: FakeMagento
) -> None:
    path = upstreams_file(
        tmp_path,
        f"""
[[upstream]]
name = "sluggish"
base_url = "{fake.base_url}"
timeout_seconds = 0.25
[[upstream.route]]
method = "POST"
path = "/V1/held/slow"
service = "Vendor\\\\Slow\\\\Api\\\\SlowInterface::execute"
""",
    )
    (route,) = load(path)
    try:
        with pytest.raises(RetriableError) as raised:
            await route.handler(operation({}))
        # Given up while the upstream still holds the request.
        assert fake.in_flight == 1
    finally:
        fake.permits.release()
    assert raised.value.code == 0
    assert raised.value.result_message == 'Upstream "sluggish" did not answer within 0.25 seconds.'


async def test_connection_refused_is_retriable(
    load: Load, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    routes = routes_for(load, tmp_path, f"http://127.0.0.1:{closed_port()}/rest/default")
    with pytest.raises(RetriableError) as raised:
        await routes["POST /V1/echo"].handler(operation({}))
    assert raised.value.code == 0
    # The kind of failure only: the socket's own text stays in the log.
    assert raised.value.result_message == 'Upstream "shop" could not be reached: ConnectError'
    assert "ConnectError(" in caplog.text


async def test_concurrency_is_limited_per_upstream_across_its_routes(
    load: Load, tmp_path: Path, fake: FakeMagento
) -> None:
    def upstream(name: str, concurrency: int) -> str:
        return f"""
[[upstream]]
name = "{name}"
base_url = "{fake.base_url}"
concurrency = {concurrency}
[[upstream.route]]
method = "POST"
path = "/V1/counted/{name}/a"
service = "Vendor\\\\Count\\\\Api\\\\{name}Interface::first"
[[upstream.route]]
method = "POST"
path = "/V1/counted/{name}/b"
service = "Vendor\\\\Count\\\\Api\\\\{name}Interface::second"
"""

    routes = load(upstreams_file(tmp_path, upstream("narrow", 3) + upstream("wide", 8)))
    narrow, wide = routes[:2], routes[2:]
    # Two routes of one upstream share its limit.
    await asyncio.gather(*(route.handler(operation({})) for route in narrow * 6))
    assert fake.most_in_flight == 3
    assert len(fake.requests) == 12

    fake.reset()
    await asyncio.gather(*(route.handler(operation({})) for route in wide * 6))
    assert fake.most_in_flight == 8


async def test_waiting_for_a_slot_does_not_count_against_the_timeout(
    load: Load, tmp_path: Path, fake: FakeMagento
) -> None:
    timeout = 3.0
    text = f"""
[[upstream]]
name = "single"
base_url = "{fake.base_url}"
concurrency = 1
timeout_seconds = {timeout}
[[upstream.route]]
method = "POST"
path = "/V1/held/single"
service = "Vendor\\\\Count\\\\Api\\\\SingleInterface::execute"
"""
    (route,) = load(upstreams_file(tmp_path, text))
    calls = [asyncio.create_task(route.handler(operation({}))) for _ in range(2)]
    # Each request is held for most of the timeout: the second waits as long for its turn
    # (more than the timeout in all), and is not given up.
    for arrived in (1, 2):
        await eventually(lambda arrived=arrived: len(fake.requests) == arrived)
        await asyncio.sleep(timeout * 0.6)
        fake.permits.release()
    assert await asyncio.gather(*calls) == [{}] * 2
    assert fake.most_in_flight == 1


def test_one_route_serves_successive_event_loops(tmp_path: Path, fake: FakeMagento) -> None:
    route = load_upstreams(upstreams_file(tmp_path, minimal(base_url=fake.base_url) + TEXT))[0]

    async def use() -> Any:
        try:
            return await route.handler(operation({}))
        finally:
            await close_routes_of([route])

    for _ in range(2):
        assert asyncio.run(use()) == "plain answer"
    assert len(fake.requests) == 2


def test_routes_carry_the_files_settings(shop: dict[str, AsyncRoute]) -> None:
    product = shop["PUT /V1/products/:sku"]
    assert product.resource == "Magento_Catalog::products"
    assert product.max_attempts == 4
    assert product.topic_name() == "async.magento.catalog.api.productrepositoryinterface.save.put"
    # Items whose path parameters cannot fill the path are refused at submission.
    assert product.validate is not None
    assert product.validate({"sku": "bag"}) is None
    refused = product.validate({"sku": "%2E."})
    assert refused is not None and refused.parameters == {"fieldName": "sku", "value": "%2E."}
    # Without a resource, only callers with every right may submit.
    assert shop["POST /V1/echo"].resource == ALL_RESOURCES


TEXT = """
[[upstream.route]]
method = "POST"
path = "/V1/text"
service = "Vendor\\\\Text\\\\Api\\\\TextInterface::get"
"""
MINIMAL_ROUTE = """
[[upstream.route]]
method = "POST"
path = "/V1/things"
service = "Vendor\\\\Things\\\\Api\\\\ThingInterface::save"
"""


def minimal(
    name: str = "shop", base_url: str = "https://shop.example.com/rest", **keys: str
) -> str:
    settings = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return f'[[upstream]]\nname = "{name}"\nbase_url = "{base_url}"\n{settings}'


def test_defaults(tmp_path: Path) -> None:
    (route,) = load_upstreams(upstreams_file(tmp_path, minimal() + MINIMAL_ROUTE))
    assert (route.method, route.path, route.max_attempts) == ("POST", "/V1/things", 5)


def test_lowercase_method_is_accepted(tmp_path: Path) -> None:
    text = minimal() + MINIMAL_ROUTE.replace('"POST"', '"put"')
    (route,) = load_upstreams(upstreams_file(tmp_path, text))
    assert route.method == "PUT"


def test_file_without_upstreams_has_no_routes(tmp_path: Path) -> None:
    assert load_upstreams(upstreams_file(tmp_path, "")) == []


ROUTE = MINIMAL_ROUTE
UPSTREAM = minimal()
THINGS_TOPIC = "async.vendor.things.api.thinginterface.save.post"
MISTAKES = [
    (minimal(retries="3") + ROUTE, "upstream[0].retries: Extra inputs are not permitted"),
    (UPSTREAM + ROUTE.replace("method", "verb"), "upstream[0].route[0].method: Field required"),
    (UPSTREAM + ROUTE.replace("method", "verb"), "upstream[0].route[0].verb: Extra inputs"),
    (UPSTREAM + ROUTE.replace("method", "upstream = 1\nmethod"), "upstream[0].route[0].upstream"),
    (UPSTREAM, "upstream[0].route: Field required"),
    ('[[upstream]]\nbase_url = "https://x.example"\n' + ROUTE, "upstream[0].name: Field required"),
    (minimal(timeout_seconds='"30"') + ROUTE, "upstream[0].timeout_seconds: Input should be a"),
    (minimal(timeout_seconds="0") + ROUTE, "upstream[0].timeout_seconds: Input should be greater"),
    (minimal(max_attempts="2.5") + ROUTE, "upstream[0].max_attempts: Input should be a valid int"),
    (minimal(concurrency="0") + ROUTE, "upstream[0].concurrency: Input should be greater"),
    (minimal(headers='{ "X Key" = "1" }') + ROUTE, "upstream[0].headers: Value error, 'X Key'"),
    (minimal(headers='{ X-Key = "a\\nb" }') + ROUTE, "upstream[0].headers: Value error, 'X-Key'"),
    (
        minimal(headers="{ X-Key = 1 }") + ROUTE,
        "upstream[0].headers.X-Key: Input should be a valid",
    ),
    (UPSTREAM + ROUTE.replace('"POST"', '"GET"'), "upstream[0].route[0].method: Input should be"),
    (UPSTREAM + ROUTE.replace("/V1/things", "V1/things"), "upstream[0].route[0].path: Value error"),
    (UPSTREAM + ROUTE.replace("::save", ""), "upstream[0].route[0].service: Value error"),
    ('upstream = "x"', "upstream: Input should be a valid list"),
    (minimal(base_url="ftp://x.example") + ROUTE, "upstream[0].base_url: Value error"),
    (minimal(base_url="https://x.example/?a=1") + ROUTE, "upstream[0].base_url: Value error"),
    (
        UPSTREAM + ROUTE * 2,
        "upstream[0].route[1]: same route POST /V1/things as upstream[0].route[0]",
    ),
    (
        minimal("a") + ROUTE + minimal("b") + ROUTE,
        "upstream[1].route[0]: same route POST /V1/things as upstream[0].route[0]",
    ),
    (
        UPSTREAM + ROUTE + ROUTE.replace("/V1/things", "/V1/other"),
        f"upstream[0].route[1]: same topic {THINGS_TOPIC} as upstream[0].route[0]",
    ),
    (
        UPSTREAM + ROUTE + ROUTE.replace("/V1/things", "/V1/:things").replace("save", "put"),
        "upstream[0].route[1]: same topic async.V1.things.POST as upstream[0].route[0]",
    ),
    (UPSTREAM + ROUTE + UPSTREAM + ROUTE, 'upstream[1].name: "shop" is already the name of'),
    ("[[upstream]\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "problem"), MISTAKES)
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = upstreams_file(tmp_path, text)
    with pytest.raises(HandlerConfigError) as raised:
        load_upstreams(path)
    assert f"{path}: {problem}" in str(raised.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(HandlerConfigError) as raised:
        load_upstreams(missing)
    assert str(raised.value).startswith(f"{missing}: cannot read the upstreams file: ")
