"""HTTP upstreams: routes whose operations are forwarded, one request each, to another REST API
(typically a Magento store's synchronous one), configured in a TOML file.

The upstream's answer decides the operation's status: 2xx completes it with the body as
result; 408, 429, 5xx, timeouts and connection errors raise RetriableError (the worker tries
again, with backoff, up to `max_attempts` deliveries); any other answer raises
NotRetriableError with the upstream's message. The format is in docs/handlers.md.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bulkops.auth.context import ALL_RESOURCES
from bulkops.errors import InputError, Parameters, WebapiError, render
from bulkops.handlers.base import (
    AsyncRoute,
    HandlerConfigError,
    NotRetriableError,
    OperationInput,
    RetriableError,
    Validator,
)

log = logging.getLogger("bulkops.upstream")

MESSAGE_LIMIT = 1000
"""Characters of a non-Magento error body kept as the operation's message."""
RETRIABLE_STATUSES = frozenset({408, 429})
_SERVICE = re.compile(r"^[A-Za-z_][\w\\]*::\w+$")
_PATH = re.compile(r"^(/(\w[\w.-]*|:\w+))+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class _Strict(BaseModel):
    # Unknown keys and loose types are mistakes in a configuration file, not input to coerce.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class UpstreamRouteConfig(_Strict):
    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: str
    service: str
    resource: str = ALL_RESOURCES
    """Only callers with every right (admins) by default: the upstream's own credentials are
    used for whatever is submitted."""
    independent: bool = False
    """A bulk's items go to the upstream in parallel, in any order (default: request order)."""
    ordering_key: str | None = None
    """Only items with the same value at this dotted path keep their request order."""

    @model_validator(mode="after")
    def _one_ordering(self) -> UpstreamRouteConfig:
        if self.independent and self.ordering_key is not None:
            raise ValueError("independent and ordering_key exclude each other")
        return self

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _PATH.match(value):
            raise ValueError("must be a route path such as /V1/products/:sku")
        return value

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        if not _SERVICE.match(value):
            raise ValueError(
                "must be a service method such as Vendor\\Module\\Api\\SomeInterface::save"
            )
        return value


class UpstreamConfig(_Strict):
    name: str = Field(min_length=1)
    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    concurrency: int = Field(default=8, ge=1)
    route: list[UpstreamRouteConfig] = Field(min_length=1)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        # Checked here, not at the first request, where every operation would fail.
        for name, text in value.items():
            if not _HEADER_NAME.match(name) or not (text.isascii() and text.isprintable()):
                raise ValueError(f"{name!r} is not a valid HTTP header name and ASCII value")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an http:// or https:// URL without a query string")
        return value.rstrip("/")


class UpstreamsFile(_Strict):
    upstream: list[UpstreamConfig] = Field(default_factory=list)


class Upstream:
    """One upstream: its connections and its limit of requests in flight, shared by its
    routes."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore

    async def send(self, method: str, url: str, payload: Any) -> Any:
        """The upstream's answer to one request, or the error that says what to do next."""
        client, slots = self._connections()
        async with slots:
            try:
                # A deadline for the whole exchange, not each read: a slow trickle times out.
                async with asyncio.timeout(self.config.timeout_seconds):
                    response = await client.request(method, url, json=payload)
            except TimeoutError:
                raise RetriableError(
                    'Upstream "%upstream" did not answer within %seconds seconds.',
                    parameters={
                        "upstream": self.config.name,
                        "seconds": f"{self.config.timeout_seconds:g}",
                    },
                ) from None
            except httpx.TransportError as error:
                # The client learns the kind of failure; its text (addresses, certificate
                # names) is for the log.
                log.warning("upstream %s could not be reached: %r", self.config.name, error)
                raise RetriableError(
                    'Upstream "%upstream" could not be reached: %reason',
                    parameters={"upstream": self.config.name, "reason": type(error).__name__},
                ) from error
        return outcome(response)

    async def aclose(self) -> None:
        """Close the connections kept open for the next requests."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _connections(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # Clients and semaphores belong to the event loop they are used in; a process that
        # runs a new loop (a restarted worker, tests) gets new ones.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            limit = self.config.concurrency
            self._client = httpx.AsyncClient(
                headers={"Accept": "application/json", **self.config.headers},
                timeout=None,  # the deadline is set around each request
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            )
            self._slots = asyncio.Semaphore(limit)
            self._loop = loop
        return self._client, self._slots


class UpstreamHandler:
    """The handler of one upstream route: forwards each operation to the upstream."""

    def __init__(self, upstream: Upstream, route: UpstreamRouteConfig) -> None:
        self.upstream = upstream
        self.route = route

    async def __call__(self, operation: OperationInput) -> Any:
        url = self.upstream.config.base_url + fill_path(self.route.path, operation.payload)
        return await self.upstream.send(self.route.method, url, operation.payload)


def fill_path(path: str, payload: Any) -> str:
    """`/V1/products/:sku` with `sku` taken from the payload, percent-encoded as one segment
    (`/`, `?`, `#` and `%` included). `.` and `..` are refused, encoded or not: the upstream
    (or the client before it) would resolve them and reach another path."""
    segments = []
    for segment in path.split("/"):
        if segment.startswith(":"):
            name = segment[1:]
            value = payload.get(name) if isinstance(payload, dict) else None
            if value is None or value == "":
                raise NotRetriableError(
                    '"%fieldName" is required. Enter and try again.', parameters={"fieldName": name}
                )
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise NotRetriableError(
                    '"%fieldName" must be a string or a number to be part of the URL.',
                    parameters={"fieldName": name},
                )
            if _is_dot_segment(str(value)):
                raise NotRetriableError(
                    # Magento's InputException::INVALID_FIELD_VALUE.
                    'Invalid value of "%value" provided for the %fieldName field.',
                    parameters={"fieldName": name, "value": str(value)},
                )
            segment = quote(str(value), safe="")
        segments.append(segment)
    return "/".join(segments)


def _is_dot_segment(value: str) -> bool:
    """`.` or `..` once every layer of percent-encoding is removed (`%2E%2E`, `%252e.`): a
    server that decodes the path more than once still finds no dot segment."""
    while True:
        if value in (".", ".."):
            return True
        decoded = unquote(value)
        if decoded == value:
            return False
        value = decoded


def path_validator(path: str) -> Validator:
    """Refuses at submission an item whose path parameters cannot fill the route's path, with
    the error its operation would otherwise fail with."""

    def validate(item: Any) -> WebapiError | None:
        try:
            fill_path(path, item)
        except NotRetriableError as error:
            return InputError(error.message, error.parameters)
        return None

    return validate


def outcome(response: httpx.Response) -> Any:
    """A 2xx answer's body (JSON, else text, None when empty), or the error for any other."""
    if response.is_success:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text
    message, parameters = error_message(response)
    status = response.status_code
    if status in RETRIABLE_STATUSES or status >= 500:
        raise RetriableError(message, code=status, parameters=parameters)
    raise NotRetriableError(message, code=status, parameters=parameters)


def error_message(response: httpx.Response) -> tuple[str, Parameters | None]:
    """Magento's `{"message", "parameters"}` as sent (the worker fills the placeholders), the
    individual `errors` of an aggregate appended; otherwise the body's text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message: str = body["message"]
        parameters = body.get("parameters")
        errors = body.get("errors")
        if isinstance(errors, list):
            details = [
                render(error["message"], error.get("parameters"))
                for error in errors
                if isinstance(error, dict) and isinstance(error.get("message"), str)
            ]
            message = "; ".join([message, *details])
        return message, parameters if isinstance(parameters, dict | list) else None
    text = response.text.strip()
    if not text:
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip(), None
    return text[:MESSAGE_LIMIT], None


def load_upstreams(path: Path) -> list[AsyncRoute]:
    """The routes of an upstreams file, checked strictly: any mistake raises
    HandlerConfigError naming the file and the key."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as error:
        raise HandlerConfigError(f"{path}: cannot read the upstreams file: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise HandlerConfigError(f"{path}: not valid TOML: {error}") from error
    try:
        upstreams = UpstreamsFile.model_validate(document).upstream
    except ValidationError as error:
        problems = "\n".join(
            f"{path}: {_key(problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        raise HandlerConfigError(problems) from None
    routes: dict[str, AsyncRoute] = {}
    for index, config in enumerate(upstreams):
        upstream = Upstream(config)
        for route_index, route in enumerate(config.route):
            routes[f"upstream[{index}].route[{route_index}]"] = AsyncRoute(
                method=route.method,
                path=route.path,
                service=route.service,
                handler=UpstreamHandler(upstream, route),
                resource=route.resource,
                validate=path_validator(route.path),
                max_attempts=config.max_attempts,
                independent=route.independent,
                ordering_key=route.ordering_key,
            )
    _check_unique(path, [config.name for config in upstreams], routes)
    return list(routes.values())


def _check_unique(path: Path, names: list[str], routes: dict[str, AsyncRoute]) -> None:
    for index, name in enumerate(names):
        if name in names[:index]:
            raise HandlerConfigError(
                f'{path}: upstream[{index}].name: "{name}" is already the name of '
                f"upstream[{names.index(name)}]"
            )
    # Two routes with one method and path, or one topic, could not be told apart.
    claimed: dict[str, str] = {}
    for key, route in routes.items():
        for claim in (
            f"route {route.method} {route.path}",
            f"topic {route.topic_name('service')}",
            f"topic {route.topic_name('route')}",
        ):
            if claim in claimed:
                raise HandlerConfigError(f"{path}: {key}: same {claim} as {claimed[claim]}")
            claimed[claim] = key


def _key(location: tuple[int | str, ...]) -> str:
    """`upstream[0].route[1].method`."""
    key = ""
    for part in location:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key.lstrip(".") or "(top level)"
