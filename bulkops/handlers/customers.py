"""The demo `POST /V1/customers` route: Magento's customer sign-up, on a table of its own, so
that the documentation's example (a duplicate email failing with status 3) runs end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bulkops.auth.context import ANONYMOUS
from bulkops.handlers.base import AsyncRoute, NotRetriableError, OperationInput, Validator
from bulkops.settings import Settings, StoreView
from bulkops.store.database import Database
from bulkops.store.tables import demo_customer

METHOD = "POST"
PATH = "/V1/customers"
SERVICE = "Magento\\Customer\\Api\\AccountManagementInterface::createAccount"
DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."
TEXT_LENGTH = 255
"""Longest email or name the table holds (Magento's customer_entity has the same limit)."""
NAMES = ("firstname", "lastname")


def validator(topic: str) -> Validator:
    """Rejects an item that is not `{"customer": {"email": "...@...", ...}, ...}`; Magento's
    messages, with their placeholders filled."""

    def validate(item: Any) -> str | None:
        customer = item.get("customer") if isinstance(item, dict) else None
        if not isinstance(customer, dict):
            return (
                'Data item corresponding to "customer" must be specified in the message with '
                f'topic "{topic}".'
            )
        email = customer.get("email")
        if email is None or email == "":
            return "The customer email is missing. Enter and try again."
        if not isinstance(email, str) or "@" not in email or len(email) > TEXT_LENGTH:
            return '"Email" is not a valid email address.'
        for name in NAMES:
            value = customer.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                return (
                    f'Error occurred during "{name}" processing. The "{json.dumps(value)}" '
                    'value\'s type is invalid. The "string" type was expected. Verify and try '
                    "again."
                )
            if len(value) > TEXT_LENGTH:
                return f'"{name}" is longer than {TEXT_LENGTH} characters.'
        return None

    return validate


def store_view(settings: Settings, store_code: str) -> StoreView:
    """The view an operation was submitted to; `all` (the admin store) and the default code
    of `/rest/V1/...` mean the first configured view."""
    for view in settings.store_views:
        if view.code == store_code:
            return view
    return settings.store_views[0]


def customers_route(settings: Settings, database: Database) -> AsyncRoute:
    async def create_account(operation: OperationInput) -> dict[str, Any]:
        customer = operation.payload["customer"]
        view = store_view(settings, operation.store_code)
        # Magento's MySQL collation makes emails unique case-insensitively; storing them
        # lowercased lets the unique index say the same on every backend.
        email = customer["email"].lower()
        names = {name: customer.get(name) for name in NAMES}
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        try:
            async with database.write() as connection:
                inserted = await connection.execute(
                    insert(demo_customer).values(
                        website_id=view.website_id, email=email, created_at=now, **names
                    )
                )
        except IntegrityError as error:
            # The unique (website_id, email) index, also when another worker won a race.
            raise NotRetriableError(DUPLICATE_EMAIL) from error
        created_at = now.strftime("%Y-%m-%d %H:%M:%S")
        # Magento's CustomerInterface as createAccount answers it; null names are left out,
        # as Magento's output leaves out null fields.
        return {
            "id": inserted.inserted_primary_key[0],
            "group_id": 1,
            "created_at": created_at,
            "updated_at": created_at,
            "created_in": view.name,
            "email": email,
            **{name: value for name, value in names.items() if value is not None},
            "store_id": view.id,
            "website_id": view.website_id,
            "addresses": [],
            "disable_auto_group_change": 0,
            "extension_attributes": {"is_subscribed": False},
        }

    # Anonymous, as Magento's sign-up; the caller's rights do not matter to this demo.
    route = AsyncRoute(METHOD, PATH, SERVICE, create_account, resource=ANONYMOUS)
    # The rejection message names the topic, which depends on the configured style.
    return replace(route, validate=validator(route.topic_name(settings.topic_style)))
