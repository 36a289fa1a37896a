"""Admin users, integrations and their access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ScalarSelect,
    and_,
    case,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.status import UserType
from bulkops.store.database import inserted_id
from bulkops.store.tables import access_token, admin_user, integration, oauth_consumer
from bulkops.store.types import int64_value


async def count_admins(connection: AsyncConnection) -> int:
    return (await connection.execute(select(func.count()).select_from(admin_user))).scalar_one()


async def insert_admin(
    connection: AsyncConnection, username: str, password_hash: str, now: datetime
) -> None:
    await connection.execute(
        insert(admin_user).values(
            username=username,
            password_hash=password_hash,
            is_active=True,
            failures_count=0,
            lock_expires=None,
            created_at=now,
        )
    )


async def list_admins(connection: AsyncConnection) -> Sequence[RowMapping]:
    """Every admin user, by username: id, username, is_active, failures_count, lock_expires,
    created_at."""
    query = select(
        admin_user.c.id,
        admin_user.c.username,
        admin_user.c.is_active,
        admin_user.c.failures_count,
        admin_user.c.lock_expires,
        admin_user.c.created_at,
    ).order_by(admin_user.c.username)
    return (await connection.execute(query)).mappings().all()


async def reset_admin(connection: AsyncConnection, username: str, password_hash: str) -> bool:
    """New password; the user is active and unlocked again. False if there is no such user."""
    result = await connection.execute(
        update(admin_user)
        .where(admin_user.c.username == username)
        .values(password_hash=password_hash, is_active=True, failures_count=0, lock_expires=None)
    )
    return result.rowcount > 0


async def start_sign_in(
    connection: AsyncConnection,
    username: str,
    now: datetime,
    max_failures: int,
    failures_expire: datetime,
) -> RowMapping | None:
    """Counts the attempt as a failure before the password is checked, so that parallel
    guesses cannot all get past the lock; a success then clears the count. The user's id,
    password hash and is_active, or None for an unknown or locked user.

    As Magento, each failure moves `lock_expires` to `failures_expire`; the count starts again
    once it has passed, and `max_failures` before then lock the user until it passes."""
    counting = and_(admin_user.c.lock_expires.is_not(None), admin_user.c.lock_expires > now)
    locked = and_(counting, admin_user.c.failures_count >= max_failures)
    result = await connection.execute(
        update(admin_user)
        .where(admin_user.c.username == username, not_(locked))
        .values(
            # SET follows table order, this before lock_expires: MySQL assigns left to right,
            # so the CASE still reads the old lock_expires.
            failures_count=case((counting, admin_user.c.failures_count + 1), else_=literal(1)),
            lock_expires=failures_expire,
        )
    )
    if result.rowcount == 0:
        return None
    found = await connection.execute(
        select(admin_user.c.id, admin_user.c.password_hash, admin_user.c.is_active).where(
            admin_user.c.username == username
        )
    )
    return found.mappings().one()


async def clear_failures(connection: AsyncConnection, user_id: int) -> None:
    await connection.execute(
        update(admin_user)
        .where(admin_user.c.id == user_id)
        .values(failures_count=0, lock_expires=None)
    )


async def insert_integration(
    connection: AsyncConnection, name: str, resources_json: str, all_bulks: bool, now: datetime
) -> int:
    result = await connection.execute(
        insert(integration).values(
            name=name,
            resources=resources_json,
            is_active=True,
            all_bulks=all_bulks,
            created_at=now,
        )
    )
    return inserted_id(result)


async def list_integrations(connection: AsyncConnection) -> Sequence[RowMapping]:
    """Every integration, by name: id, name, resources (JSON), is_active, all_bulks,
    created_at, and whether its OAuth access token is revoked (`token_revoked`)."""
    query = (
        select(
            integration.c.id,
            integration.c.name,
            integration.c.resources,
            integration.c.is_active,
            integration.c.all_bulks,
            integration.c.created_at,
            access_token.c.revoked.label("token_revoked"),
        )
        .select_from(integration)
        .outerjoin(oauth_consumer, oauth_consumer.c.integration_id == integration.c.id)
        .outerjoin(access_token, access_token.c.id == oauth_consumer.c.access_token_id)
        .order_by(integration.c.name)
    )
    return (await connection.execute(query)).mappings().all()


async def insert_token(
    connection: AsyncConnection,
    hashed: str,
    user_type: UserType,
    user_id: int,
    now: datetime,
    expires_at: datetime | None,
) -> int:
    result = await connection.execute(
        insert(access_token).values(
            token_hash=hashed,
            user_type=int(user_type),
            user_id=user_id,
            created_at=now,
            expires_at=expires_at,
            revoked=False,
        )
    )
    return inserted_id(result)


async def find_token_owner(
    connection: AsyncConnection, hashed: str, now: datetime
) -> RowMapping | None:
    """The owner of a live token, by its unique hash, in one query: user_type, user_id,
    resources and all_bulks (integrations only), expires_at. None when the token is unknown,
    expired or revoked, or its owner is inactive."""
    query = (
        select(
            access_token.c.user_type,
            access_token.c.user_id,
            access_token.c.expires_at,
            integration.c.resources,
            integration.c.all_bulks,
        )
        .select_from(
            access_token.outerjoin(
                admin_user,
                and_(
                    access_token.c.user_type == int(UserType.ADMIN),
                    admin_user.c.id == access_token.c.user_id,
                ),
            ).outerjoin(
                integration,
                and_(
                    access_token.c.user_type == int(UserType.INTEGRATION),
                    integration.c.id == access_token.c.user_id,
                ),
            )
        )
        .where(
            access_token.c.token_hash == hashed,
            not_(access_token.c.revoked),
            or_(access_token.c.expires_at.is_(None), access_token.c.expires_at > now),
            # Each join matches only tokens of its user type, so one of these is null.
            or_(admin_user.c.is_active, integration.c.is_active),
        )
    )
    return (await connection.execute(query)).mappings().first()


async def admin_password_hash(connection: AsyncConnection, username: str) -> str | None:
    found = await connection.execute(
        select(admin_user.c.password_hash).where(admin_user.c.username == username)
    )
    return found.scalar_one_or_none()


async def find_admin_id(connection: AsyncConnection, username: str) -> int | None:
    query = select(admin_user.c.id).where(admin_user.c.username == username)
    found = await connection.execute(query)
    return found.scalar_one_or_none()


async def find_integration_id(connection: AsyncConnection, name: str) -> int | None:
    found = await connection.execute(select(integration.c.id).where(integration.c.name == name))
    return found.scalar_one_or_none()


async def user_exists(connection: AsyncConnection, user_type: UserType, user_id: int) -> bool:
    table = admin_user if user_type == UserType.ADMIN else integration
    found = await connection.execute(select(table.c.id).where(table.c.id == int64_value(user_id)))
    return found.first() is not None


async def set_integration_scope(
    connection: AsyncConnection, integration_id: int, all_bulks: bool
) -> None:
    await connection.execute(
        update(integration).where(integration.c.id == integration_id).values(all_bulks=all_bulks)
    )


async def set_integration_webhook(
    connection: AsyncConnection, integration_id: int, url: str | None
) -> None:
    await connection.execute(
        update(integration).where(integration.c.id == integration_id).values(webhook_url=url)
    )


def integration_webhook(integration_id: int) -> ScalarSelect[str]:
    """The integration's callback URL, read by the statement it is part of."""
    query = select(integration.c.webhook_url).where(integration.c.id == int64_value(integration_id))
    return query.scalar_subquery()


async def token_user_type(connection: AsyncConnection, hashed: str) -> int | None:
    query = select(access_token.c.user_type).where(access_token.c.token_hash == hashed)
    return (await connection.execute(query)).scalar_one_or_none()


async def revoke_token(connection: AsyncConnection, hashed: str) -> bool:
    """Revokes the token with this hash (again, if it was); False for an unknown token."""
    result = await connection.execute(
        update(access_token).where(access_token.c.token_hash == hashed).values(revoked=True)
    )
    return result.rowcount > 0


async def revoke_user_tokens(connection: AsyncConnection, user_type: UserType, user_id: int) -> int:
    """Revokes every live token of the user; answers how many were live."""
    result = await connection.execute(
        update(access_token)
        .where(
            access_token.c.user_type == int(user_type),
            access_token.c.user_id == user_id,
            not_(access_token.c.revoked),
        )
        .values(revoked=True)
    )
    return result.rowcount
