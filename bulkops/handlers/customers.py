"""The demo `POST /V1/customers` route: Magento's customer sign-up, on a table of its own, so
that the documentation's example (a duplicate email failing with status 3) runs end to end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bulkops.auth.context import ANONYMOUS
from bulkops.errors import InputError, WebapiError
from bulkops.handlers.base import AsyncRoute, NotRetriableError, OperationInput
from bulkops.services.signature import ObjectType, Parameter, convert
from bulkops.settings import Settings, StoreView
from bulkops.store.database import Database, inserted_id
from bulkops.store.tables import demo_customer

METHOD = "POST"
PATH = "/V1/customers"
SERVICE = "Magento\\Customer\\Api\\AccountManagementInterface::createAccount"
DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."
TEXT_LENGTH = 255
"""Longest email or name the table holds (Magento's customer_entity has the same limit)."""
NAMES = ("firstname", "lastname")


CUSTOMER = ObjectType(
    "Magento\\Customer\\Api\\Data\\CustomerInterface",
    {
        "id": "int",
        "group_id": "int",
        "email": "string",
        "firstname": "string",
        "lastname": "string",
        "middlename": "string",
        "prefix": "string",
        "suffix": "string",
        "dob": "string",
        "taxvat": "string",
        "gender": "int",
        "store_id": "int",
        "website_id": "int",
    },
)
SIGNATURE = (
    Parameter("customer", CUSTOMER),
    Parameter("password", "string", required=False),
    Parameter("redirectUrl", "string", required=False, default=""),
)
"""AccountManagementInterface::createAccount($customer, $password = null, $redirectUrl = '')."""


def validate(parameters: dict[str, Any]) -> WebapiError | None:
    """What Magento's customer validation refuses before anything is created."""
    customer = parameters["customer"]
    email = customer.get("email")
    if not email:
        return InputError("The customer email is missing. Enter and try again.")
    if "@" not in email or len(email) > TEXT_LENGTH:
        return InputError('"%fieldName" is not a valid email address.', {"fieldName": "Email"})
    for name in NAMES:
        if len(customer.get(name) or "") > TEXT_LENGTH:
            return InputError(
                '"%fieldName" is longer than %max characters.',
                {"fieldName": name, "max": TEXT_LENGTH},
            )
    return None


def store_view(settings: Settings, store_code: str) -> StoreView:
    """The view an operation was submitted to; `all` (the admin store) and the default code
    of `/rest/V1/...` mean the first configured view."""
    for view in settings.store_views:
        if view.code == store_code:
            return view
    return settings.store_views[0]


async def _customer(connection: AsyncConnection, view: StoreView, email: str) -> Row[Any] | None:
    query = select(demo_customer).where(
        demo_customer.c.website_id == view.website_id, demo_customer.c.email == email
    )
    return (await connection.execute(query)).first()


async def _created_by(
    database: Database, view: StoreView, email: str, operation: OperationInput
) -> Row[Any] | None:
    """The customer with that email, if this operation created it."""
    async with database.read() as connection:
        found = await _customer(connection, view, email)
    return found if found is not None and found.operation_id == operation.operation_id else None


def _account(view: StoreView, customer: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """Magento's CustomerInterface as createAccount answers it, from the customer's row;
    null names are left out, as Magento's output leaves out null fields."""
    created_at = customer["created_at"].strftime("%Y-%m-%d %H:%M:%S")
    names = {name: customer[name] for name in NAMES}
    return {
        "id": customer["id"],
        "group_id": 1,
        "created_at": created_at,
        "updated_at": created_at,
        "created_in": view.name,
        "email": customer["email"],
        **{name: value for name, value in names.items() if value is not None},
        "store_id": view.id,
        "website_id": view.website_id,
        "addresses": [],
        "disable_auto_group_change": 0,
        "extension_attributes": {"is_subscribed": False},
    }


def customers_route(settings: Settings, database: Database) -> AsyncRoute:
    async def create_account(operation: OperationInput) -> dict[str, Any]:
        customer = convert(SIGNATURE, operation.payload)["customer"]
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
                        website_id=view.website_id,
                        email=email,
                        created_at=now,
                        operation_id=operation.operation_id,
                        **names,
                    )
                )
        except IntegrityError as error:
            # The unique (website_id, email) index, also when another worker won a race.
            # The customer may be this operation's own, created by a delivery that did not
            # live to record it: then the operation is done.
            if (created := await _created_by(database, view, email, operation)) is None:
                raise NotRetriableError(DUPLICATE_EMAIL) from error
            return _account(view, created._mapping)
        customer_id = inserted_id(inserted)
        return _account(view, {"id": customer_id, "email": email, "created_at": now, **names})

    # Anonymous, as Magento's sign-up; the caller's rights do not matter to this demo.
    return AsyncRoute(
        METHOD,
        PATH,
        SERVICE,
        create_account,
        resource=ANONYMOUS,
        validate=validate,
        signature=SIGNATURE,
    )
