"""Every knob of the service, read from environment variables prefixed `BULKOPS_`."""

from __future__ import annotations

import re
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

import limits
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bulkops.criteria import PageLimits
from bulkops.services.webhook_signing import secret_key


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


DEFAULT_REDACT_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "authorization",
    "cc_number",
    "cc_cid",
    "cvv",
)
"""Words of key names whose values are secret: passwords (Magento's `password`, `newPassword`,
`currentPassword`, `password_confirmation`), tokens (`resetToken`, `access_token`), secrets
(`client_secret`), API keys and credentials, and Magento's payment card fields."""

# Characters a stored payload writes as they are (php_json escapes `"`, `\`, `/`, control
# and non-ASCII characters): only words of these can be found in the stored text.
_PLAIN_WORD = re.compile(r"^[\x20-\x7e]+$")


AMQP_SCHEMES = ("amqp://", "amqps://")

# Segments of letters, digits, `-`, `_` and `.`; no trailing slash.
_CONSOLE_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")


def _loopback() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class ConfigurationError(Exception):
    """A setting's value cannot work; the message names it and says what to fix."""


class Settings(BaseSettings):
    # Each setting's docstring is its description: README's table of settings is made of them
    # (`python -m bulkops.settings_doc`).
    model_config = SettingsConfigDict(
        env_prefix="BULKOPS_", env_nested_delimiter="__", use_attribute_docstrings=True
    )

    database_url: str = "sqlite+aiosqlite:///var/bulkops.sqlite3"
    """SQLAlchemy URL; `sqlite:///`, `postgresql://`, `mysql://` and `mariadb://` get their
    async driver (aiosqlite, asyncpg, aiomysql)."""
    database_pool_size: int = Field(default=10, ge=1)
    """Connections each process keeps open to PostgreSQL or MySQL/MariaDB."""
    database_pool_max_overflow: int = Field(default=10, ge=0)
    """Connections opened beyond the pool size under load, and closed once returned."""
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a request waits for a free connection before it gets a 503."""
    database_pool_recycle_seconds: float = 3600.0
    """Connections older than this are replaced (before a server's idle timeout closes them);
    -1 never."""
    database_pool_pre_ping: bool = True
    """Check each connection as it leaves the pool, so a restarted server costs no failed
    request."""
    statement_timeout_seconds: float = Field(default=10.0, ge=0)
    """Longest a statement of a read (a search's count or page, a bulk's status) may run before
    the database stops it and the request gets a 503; for a streamed search (no page size, or
    a large one), each fetch of its rows. 0: no limit. Writes and migrations have none."""
    search_stream_timeout_seconds: float = Field(default=600.0, ge=0)
    """MariaDB and MySQL: longest a streamed search may last as a whole (there one statement
    sends every row as the client reads them). 0: no limit."""
    sqlite_busy_timeout_seconds: float = Field(default=30.0, ge=0)
    """SQLite: how long a statement waits for another connection's write lock before it fails
    (`PRAGMA busy_timeout`): a request then gets a 503, a worker gives its operation back."""
    sqlite_max_page_count: int | None = Field(default=None, ge=1)
    """SQLite: the most pages (4 KiB each) the database may hold (`PRAGMA max_page_count`), a
    size limit short of the disk's. Past it, as on a full disk, submissions get a 507 and the
    worker leaves results unrecorded until space is freed. Unset: SQLite's own limit."""
    host: str = "127.0.0.1"
    """Interface `bulkops serve` listens on (`0.0.0.0`: every one)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """Port `bulkops serve` listens on."""

    admin_username: str | None = None
    """With `BULKOPS_ADMIN_PASSWORD`, creates or updates this admin user at start."""
    admin_password: SecretStr | None = None
    """The password of `BULKOPS_ADMIN_USERNAME`; a changed one revokes that admin's tokens. Without
    either, the first start (with no admin user yet) creates `admin` and prints its password."""

    admin_token_lifetime_hours: float = 4.0
    """How long an admin token from `/V1/integration/admin/token` is accepted."""
    token_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a process trusts a token it resolved before asking the database again: a
    revoked token or a deactivated user is refused at most this late. 0 turns the cache off."""
    token_cache_size: int = Field(default=10_000, ge=1)
    """Tokens a process keeps resolved at most (the least recently used go first)."""
    integration_as_bearer: bool = True
    """Integration access tokens also work as Bearer tokens (Magento 2.4.4+'s
    `oauth/consumer/enable_integration_as_bearer`); false: integrations must sign (OAuth 1.0a)."""
    oauth_secrets_key: SecretStr | None = None
    """Encrypts stored OAuth consumer and token secrets; unset, they are stored in clear."""
    oauth_timestamp_window_seconds: int = Field(default=600, ge=1)
    """Signed requests are refused when their timestamp is this far from now (Magento's
    TIME_DEVIATION); their nonces are kept twice as long."""
    oauth_nonce_cleanup_probability: int = Field(default=100, ge=1)
    """One signed request in this many deletes expired nonces (Magento's
    `oauth/cleanup/cleanup_probability`)."""
    redact_keys: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT_KEYS))
    """Payloads in responses show `****` as the value of every key whose name contains one
    of these words, without regard to case, at any depth; `[]` shows payloads as stored
    (as Magento does). While any is set, searches cannot filter or sort on payloads."""
    payload_encryption_keys: list[SecretStr] = Field(default_factory=list)
    """Stored payloads are encrypted with the first key (any string); every key decrypts,
    so a new key goes first and old ones stay until `bulkops payloads reseal` has run. Empty:
    payloads are stored in clear (earlier encrypted ones then cannot be read)."""
    login_max_failures: int = 6
    """Failed admin logins in a row after which the admin user is locked."""
    login_lock_minutes: float = 30.0
    """How long a locked admin user cannot log in."""

    input_limit_enabled: bool = False
    """Magento's Web API input limits: a default and a maximum search page size."""
    default_page_size: int = 20
    """With input limits enabled: the page size of a search that sends none (`pageSize=0` is
    still every match)."""
    maximum_page_size: int = 300
    """With input limits enabled: the largest page size a search may ask for (a 400 beyond)."""

    operation_id: Literal["id", "operation_key"] = "id"
    """What an operation's `id` is in responses: its global id, or (Magento 2.4) its index
    in the request, for clients that match `request_items[].id` with `operations_list[].id`."""

    crypt_key: SecretStr | None = None
    """Magento's `crypt/key` as written in `app/etc/env.php` (several keys: the newest, last,
    is used): `data_hash` is then the same as Magento's. Unset or blank: a key generated at
    first start and kept in the database."""

    topic_style: Literal["service", "route"] = "service"
    """Topic names from the service contract (Magento 2.3.1+) or from the route (2.3.0)."""
    handler_modules: list[str] = Field(default_factory=list)
    """Python modules to import at start; they register handlers on `bulkops.handlers.registry`."""
    upstreams_file: Path | None = None
    """A TOML file of HTTP upstream routes (see docs/handlers.md)."""
    demo_customers: bool = True
    """The demo route `POST /async/V1/customers` (and its bulk form, `/async/bulk/V1/customers`),
    which replays the example of Magento's documentation on a table of its own."""

    max_request_items: int = 5000
    """Items one bulk request may carry (a 400 beyond)."""
    max_request_bytes: int = 64 * 1024 * 1024
    """Largest request body accepted (a 413 beyond)."""
    anonymous_max_request_bytes: int = Field(default=64 * 1024, ge=1)
    """Largest request body accepted from a caller without a valid token (anonymous routes
    such as the demo `POST /async/V1/customers`, and logins): a customer's creation takes a
    few KB."""

    rate_limit_per_caller: str = "6000/minute"
    """Requests one user or integration may make, whatever its token, in the `limits`
    notation (`100/second`, `6000/minute`, `1000 per hour`); empty: no limit."""
    rate_limit_per_address: str = "60/minute"
    """Requests without a valid token (anonymous routes, logins, refused credentials) one
    client address may make; empty: no limit."""
    rate_limit_storage_url: str = "memory://"
    """Where requests are counted: `memory://` (each process on its own) or
    `redis://host:port/db` (shared by every process and host that uses it)."""
    rate_limit_key_prefix: str = "bulkops"
    """Starts every counter's key: installations sharing one Redis keep apart."""

    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A connection's request line and headers must arrive within this time of its opening
    (or of the request's first byte, on a kept-alive connection); else it is closed."""
    body_timeout_seconds: float = Field(default=120.0, gt=0)
    """A request's body must arrive within this time of its headers; else the connection is
    closed."""
    idle_timeout_seconds: float = Field(default=5.0, gt=0)
    """A kept-alive connection with no new request for this long is closed."""
    trusted_hosts: list[str] = Field(default_factory=lambda: ["*"])
    """Host header values accepted (`api.example.com`, `*.example.com`); others get a 400.
    `*` accepts any, and then base URLs are not derived from the request's Host (see
    `BULKOPS_BASE_URL`)."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose X-Forwarded-For/-Proto headers are believed (comma-separated addresses
    or networks, `*` for any): the client's address and scheme come from them."""

    worker_concurrency: int = 4
    """Operations one worker process handles at once."""
    worker_batch_size: int = 200
    """Messages a worker leases at a time."""
    worker_poll_seconds: float = 0.2
    """How long an idle worker waits before looking for messages again."""
    lease_seconds: float = 300.0
    """How long a leased message stays invisible; a dead worker's messages return after it."""
    retry_backoff_seconds: float = 2.0
    """First delay before a retriable failure is delivered again; it doubles each attempt.
    An operation whose handler met the database unavailable is delivered again after it, not
    counted as an attempt."""
    max_deliveries: int = Field(default=5, ge=1)
    """Deliveries of an operation that may end without an outcome (its worker died while
    processing it) before the operation is abandoned: failed, status 2, `The operation was
    abandoned after %count deliveries.`"""
    open_operation_timeout_hours: float = 12.0
    """Operations started this long ago and still open are marked failed (`Unknown Error`)."""
    bulk_lifetime_days: float = 60.0
    """Bulks older than this are deleted with their operations; 0 keeps them forever. A bulk
    submitted with `X-Bulk-Retention-Days` keeps its own."""
    idempotency_retention_hours: float = Field(default=24.0, gt=0)
    """How long a submission's `Idempotency-Key` names it: within it, the same request with
    the key is answered as the first time; past it, the key is new again, and the
    maintenance deletes it."""
    change_retention_hours: float = Field(default=168.0, gt=0)
    """How long the change feed (`GET /V1/bulk/changes`) keeps a change; a cursor older than
    the oldest kept is answered 410."""
    change_wait_max_seconds: float = Field(default=30.0, ge=0)
    """The longest a change feed request with `wait=` waits for a change (longer waits are
    cut to it)."""
    change_poll_seconds: float = Field(default=0.5, gt=0)
    """How often a waiting change feed request, and each process's watcher of the bulks
    followed by server-sent events (`GET /V1/bulk/:uuid/events`), look for changes."""
    events_heartbeat_seconds: float = Field(default=15.0, gt=0)
    """Server-sent events: a comment is sent after this long without an event, so that
    proxies keep the connection and clients know it is alive."""
    webhook_secret: SecretStr | None = None
    """Signs completion webhooks as Standard Webhooks do: `whsec_` and the key in base64 (any
    other text is the key itself). Required for a submission to name a callback URL."""
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts a callback URL (`X-Bulk-Callback-Url`) may name (`hooks.example.com`,
    `*.example.com`, `*` for any); a URL with another is refused (400). None by default."""
    webhook_allow_private_addresses: bool = False
    """Deliver webhooks to loopback, private, link-local and other non-public addresses; off,
    such a delivery is refused whatever the host's name (checked on the address connected to)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    """A webhook's receiver must answer within this time, else the attempt failed."""
    webhook_backoff_seconds: float = Field(default=10.0, ge=0)
    """First delay before a failed webhook delivery is attempted again; it doubles each
    attempt, up to an hour."""
    webhook_max_attempts: int = Field(default=15, ge=1)
    """Attempts of a webhook delivery before it is marked failed (shown in its bulk's delivery
    log, never dropped)."""
    webhook_max_age_hours: float = Field(default=72.0, gt=0)
    """A webhook delivery still failing this long after its bulk completed is marked failed."""
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    """How long a worker with no webhook due waits before looking again."""
    maintenance_interval_seconds: float = 60.0
    """How often a worker runs the cleanup, marks operations open too long and deletes
    idempotency keys and the change feed's changes past their retention."""

    queue_url: str = "db"
    """`db`: the queue is a table of the database. `amqp://user:password@host:port/vhost`:
    RabbitMQ carries operations, and that table is the transactional outbox."""
    amqp_exchange: str = "magento"
    """amqp: the durable topic exchange operations are published to, by topic name."""
    amqp_queue: str = "async.operations.all"
    """amqp: the durable queue workers consume, bound to the exchange with `async.#`."""
    amqp_prefetch: int = Field(default=0, ge=0)
    """amqp: messages a worker holds unacknowledged at once; 0: `BULKOPS_WORKER_BATCH_SIZE`."""
    amqp_republish_after_seconds: float = 900.0
    """amqp: an open operation, never started, with no message in the outbox nor any waiting
    in the queue, unchanged this long, is presumed to have lost its message and is published
    again."""

    base_url: str = ""
    """Public base URL reported by `storeConfigs` and the schemas. Empty: the request's Host
    when `BULKOPS_TRUSTED_HOSTS` is set, else the address the connection came in on."""
    websites: list[Website] = Field(default_factory=_default_websites)
    """JSON list of the websites `/V1/store/websites` lists (Magento's admin website, id 0,
    comes first on its own), each with `id`, `code` and `name`."""
    store_views: list[StoreView] = Field(default_factory=_default_store_views)
    """JSON list of the store views (`id`, `code`, `name`, `website_id`): their codes are
    those accepted in `/rest/<code>/V1/...` (beside `all`), and the first view of each
    website is its default."""

    console_enabled: bool = True
    """Serve the operator console in the browser, for admin users: the Bulk Actions log,
    bulk details with retry, operation search, dashboard and access (docs/console.md)."""
    console_path: str = "/admin"
    """Where the console is served: a path of one or more segments, such as `/admin` or
    `/ops/console`, without a trailing slash."""

    metrics_enabled: bool = True
    """Serve Prometheus metrics at `/metrics` (README: Metrics) to the addresses of
    `BULKOPS_METRICS_ALLOWED_NETWORKS` and to holders of `BULKOPS_METRICS_TOKEN`."""
    metrics_allowed_networks: list[IPv4Network | IPv6Network] = Field(default_factory=_loopback)
    """JSON list of the addresses or networks (`10.0.0.0/8`) that may read `/metrics` without
    a token; `[]`: none (a token only). The client's address is the connection's, or the
    forwarded one from a proxy of `BULKOPS_FORWARDED_ALLOW_IPS`."""
    metrics_token: SecretStr | None = None
    """A bearer token (`Authorization: Bearer ...`) that may read `/metrics` from any address;
    unset: none."""
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a process reuses the database's figures of `/metrics` (queue depth, open
    operations) before reading them again: a tight scrape loop cannot load the database."""

    @field_validator("redact_keys")
    @classmethod
    def _plain_words(cls, words: list[str]) -> list[str]:
        for word in words:
            if not _PLAIN_WORD.match(word) or any(char in word for char in '"\\/'):
                raise ValueError(f"{word!r}: printable ASCII without quotes or slashes")
        return [word.lower() for word in words]

    @field_validator("queue_url")
    @classmethod
    def _queue(cls, url: str) -> str:
        if url != "db" and not url.startswith(AMQP_SCHEMES):
            raise ValueError("expected `db`, or an amqp:// or amqps:// URL")
        return url

    @field_validator("console_path")
    @classmethod
    def _console_path(cls, path: str) -> str:
        if not _CONSOLE_PATH.fullmatch(path) or path.startswith(("/rest/", "/swagger")):
            raise ValueError("expected a path such as /admin, outside /rest and /swagger")
        return path

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        try:
            # binascii.Error is a ValueError.
            key = secret_key(secret.get_secret_value()) if secret else None
        except ValueError:
            raise ValueError("expected `whsec_` and the key in base64") from None
        return secret if key else None

    @field_validator("rate_limit_per_caller", "rate_limit_per_address")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value.strip():
            limits.parse(value)  # its ValueError names what it could not read
        return value

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
