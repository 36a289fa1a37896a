"""Integrations' OAuth 1.0a consumers and the nonces of their signed requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.store.tables import access_token, integration, oauth_consumer, oauth_nonce


async def insert_consumer(
    connection: AsyncConnection,
    integration_id: int,
    consumer_key: str,
    sealed_consumer_secret: str,
    access_token_id: int,
    sealed_access_token: str,
    sealed_access_token_secret: str,
    now: datetime,
) -> None:
    await connection.execute(
        insert(oauth_consumer).values(
            integration_id=integration_id,
            consumer_key=consumer_key,
            consumer_secret=sealed_consumer_secret,
            access_token_id=access_token_id,
            access_token=sealed_access_token,
            access_token_secret=sealed_access_token_secret,
            created_at=now,
        )
    )


_CONSUMER = (
    select(
        oauth_consumer.c.id,
        oauth_consumer.c.consumer_key,
        oauth_consumer.c.consumer_secret,
        oauth_consumer.c.access_token,
        oauth_consumer.c.access_token_secret,
        access_token.c.token_hash,
        access_token.c.revoked,
        integration.c.id.label("integration_id"),
        integration.c.resources,
        integration.c.is_active,
        integration.c.all_bulks,
    )
    .select_from(oauth_consumer)
    .join(integration, integration.c.id == oauth_consumer.c.integration_id)
    .join(access_token, access_token.c.id == oauth_consumer.c.access_token_id)
)


async def find_consumer(connection: AsyncConnection, consumer_key: str) -> RowMapping | None:
    """The consumer with its (sealed) secrets, its access token's hash and revocation, and its
    integration's id, resources, is_active and all_bulks; one indexed query."""
    query = _CONSUMER.where(oauth_consumer.c.consumer_key == consumer_key)
    return (await connection.execute(query)).mappings().first()


async def find_integration_consumer(connection: AsyncConnection, name: str) -> RowMapping | None:
    query = _CONSUMER.where(integration.c.name == name)
    return (await connection.execute(query)).mappings().first()


async def token_exists(connection: AsyncConnection, hashed: str) -> bool:
    query = select(access_token.c.id).where(access_token.c.token_hash == hashed)
    return (await connection.execute(query)).first() is not None


async def insert_nonce(
    connection: AsyncConnection, consumer_id: int, nonce: str, timestamp: int
) -> None:
    """Raises IntegrityError when the consumer used the nonce already."""
    await connection.execute(
        insert(oauth_nonce).values(consumer_id=consumer_id, nonce=nonce, timestamp=timestamp)
    )


async def delete_nonces_before(connection: AsyncConnection, timestamp: int) -> int:
    query = delete(oauth_nonce).where(oauth_nonce.c.timestamp < timestamp)
    result = await connection.execute(query)
    return result.rowcount


async def replace_access_token(
    connection: AsyncConnection,
    integration_id: int,
    access_token_id: int,
    sealed_access_token: str,
    sealed_access_token_secret: str,
) -> None:
    """The integration's consumer signs with this access token from now on."""
    await connection.execute(
        update(oauth_consumer)
        .where(oauth_consumer.c.integration_id == integration_id)
        .values(
            access_token_id=access_token_id,
            access_token=sealed_access_token,
            access_token_secret=sealed_access_token_secret,
        )
    )
