"""The worker's delivery of completion webhooks: claims the deliveries that are due, sends
each signed (`bulkops.services.webhook_signing`) to the checked address of its URL
(`bulkops.services.webhook_targets`), and records each attempt: delivered on a 2xx answer,
else tried again with exponential backoff until its attempts or age run out, then failed.

At least once: a worker that dies between sending and recording leaves its claim to run out,
and the delivery is sent again, with the same `webhook-id` for the receiver to drop it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx

from bulkops.services.webhook_signing import secret_key, signed_headers
from bulkops.services.webhook_targets import RefusedTarget, resolve_target
from bulkops.settings import Settings
from bulkops.store.database import Database, is_unavailable
from bulkops.store.lifecycle import utc_now
from bulkops.store.rows import AnyRow
from bulkops.store.webhooks import Attempt, RetryPolicy, claim_due, next_attempt, record_attempts

log = logging.getLogger("bulkops.webhooks")

BATCH = 20
"""Deliveries claimed and sent at once."""

BACKOFF_CAP = timedelta(hours=1)


class WebhookSender:
    def __init__(
        self,
        database: Database,
        key: bytes,
        policy: RetryPolicy,
        timeout_seconds: float,
        poll_seconds: float,
        allowed_hosts: Sequence[str],
        allow_private: bool,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.key = key
        self.policy = policy
        self.timeout = timeout_seconds
        self.poll_seconds = poll_seconds
        self.allowed_hosts = allowed_hosts
        self.allow_private = allow_private
        self.clock = clock
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Longer than a batch's attempts can take: each one times out before.
        self.claim = timedelta(seconds=timeout_seconds * 3 + 60)

    @classmethod
    def from_settings(cls, settings: Settings, database: Database) -> WebhookSender | None:
        """None without a secret: no bulk can have a callback URL then."""
        if settings.webhook_secret is None:
            return None
        policy = RetryPolicy(
            base=timedelta(seconds=settings.webhook_backoff_seconds),
            cap=BACKOFF_CAP,
            max_attempts=settings.webhook_max_attempts,
            max_age=timedelta(hours=settings.webhook_max_age_hours),
        )
        return cls(
            database,
            secret_key(settings.webhook_secret.get_secret_value()),
            policy,
            settings.webhook_timeout_seconds,
            settings.webhook_poll_seconds,
            settings.webhook_allowed_hosts,
            settings.webhook_allow_private_addresses,
        )

    async def run_forever(self) -> None:
        """Send whatever is due, again at once while there was some, else after a pause."""
        while True:
            try:
                sent = await self.send_due()
                self.database.outage.ended()
            except Exception as error:
                if is_unavailable(error):
                    self.database.outage.failed(error, "cannot send webhooks")
                else:
                    log.exception("cannot send webhooks")
                sent = 0
            if not sent:
                await asyncio.sleep(self.poll_seconds)

    async def send_due(self) -> int:
        """Claim up to a batch of due deliveries, attempt each, record the outcomes; answers
        how many were attempted."""
        now = self.clock()
        async with self.database.write() as connection:
            due = await claim_due(connection, self.owner, BATCH, now, now + self.claim)
        if not due:
            return 0
        async with httpx.AsyncClient(
            timeout=self.timeout, follow_redirects=False, trust_env=False
        ) as client:
            attempts = await asyncio.gather(*(self._attempt(client, row) for row in due))
        async with self.database.write() as connection:
            await record_attempts(connection, self.owner, attempts)
        return len(due)

    async def _attempt(self, client: httpx.AsyncClient, row: AnyRow) -> Attempt:
        status_code: int | None = None
        error: str | None = None
        try:
            target = await resolve_target(row.url, self.allowed_hosts, self.allow_private)
            body = row.payload.encode()
            headers = signed_headers(self.key, row.event_id, _unix_seconds(self.clock()), body)
            # Streamed and never read: the answer's body, however large, is not wanted.
            async with client.stream(
                "POST",
                target.url,
                content=body,
                headers=headers | {"Host": target.host_header, "Content-Type": "application/json"},
                extensions={"sni_hostname": target.server_name},
            ) as response:
                status_code = response.status_code
            if not response.is_success:
                error = f"answered {status_code}"
        except RefusedTarget as refused:
            error = f"refused: {refused}"
        except httpx.HTTPError as failed:
            error = f"{type(failed).__name__}: {failed}" if str(failed) else type(failed).__name__
        now = self.clock()
        if error is None:
            return Attempt(row.id, now, status_code, None, delivered=True, retry_at=None)
        retry_at = next_attempt(row.attempts + 1, row.created_at, now, self.policy)
        log.warning("webhook %s to %s: %s", row.event_id, row.url, error)
        return Attempt(row.id, now, status_code, error, delivered=False, retry_at=retry_at)


def _unix_seconds(moment: datetime) -> int:
    """The `webhook-timestamp` of a naive UTC time."""
    return int(moment.replace(tzinfo=UTC).timestamp())
