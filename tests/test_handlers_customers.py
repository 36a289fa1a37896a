"""The demo customers route: validation, and its handler on a real SQLite database."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from sqlalchemy import select

from bulkops.handlers import HandlerRegistry
from bulkops.handlers.base import AsyncRoute, NotRetriableError, OperationInput
from bulkops.handlers.customers import DUPLICATE_EMAIL, SERVICE, customers_route
from bulkops.services.submission import reason as rendered
from bulkops.services.submission import rejection
from bulkops.settings import Settings, StoreView, Website
from bulkops.status import OperationStatus
from bulkops.store.database import Database
from bulkops.store.lifecycle import start_operations, utc_now
from bulkops.store.tables import demo_customer
from tests.test_worker import BULK_UUID, add_bulk, make_worker, operations, process_all

TWO_WEBSITES = Settings(
    websites=[Website(id=1, code="base", name="Main"), Website(id=2, code="fr", name="France")],
    store_views=[
        StoreView(id=1, code="default", name="Default Store View", website_id=1),
        StoreView(id=3, code="fr_view", name="Vue française", website_id=2),
    ],
)


OPERATION_IDS = itertools.count(1)


def operation(email: str, store_code: str = "default", **customer: Any) -> OperationInput:
    """A new operation (its own id) creating a customer."""
    return OperationInput(
        payload={"customer": {"email": email, **customer}, "password": "Password1"},
        bulk_uuid="c43ed402-3dd3-4100-92e2-dc5852d3009b",
        operation_id=next(OPERATION_IDS),
        operation_key=0,
        store_code=store_code,
        user_type=4,
        user_id=None,
    )


@pytest.fixture
def route(database: Database) -> AsyncRoute:
    return customers_route(TWO_WEBSITES, database)


def test_route_is_magentos_anonymous_sign_up() -> None:
    route = customers_route(Settings(), Database("sqlite:///:memory:"))
    assert (route.method, route.path, route.resource) == ("POST", "/V1/customers", "anonymous")
    assert (
        route.topic_name()
        == "async.magento.customer.api.accountmanagementinterface.createaccount.post"
    )
    assert route.topic_name("route") == "async.V1.customers.POST"


async def test_first_account_is_created_and_answered_as_magento(
    route: AsyncRoute, database: Database
) -> None:
    result = await route.handler(operation("MShaw@Example.com", firstname="Melanie", lastname="S"))

    assert list(result) == [
        "id",
        "group_id",
        "created_at",
        "updated_at",
        "created_in",
        "email",
        "firstname",
        "lastname",
        "store_id",
        "website_id",
        "addresses",
        "disable_auto_group_change",
        "extension_attributes",
    ]
    assert result["id"] == 1 and result["group_id"] == 1
    assert result["email"] == "mshaw@example.com"
    assert (result["firstname"], result["lastname"]) == ("Melanie", "S")
    assert (result["store_id"], result["website_id"]) == (1, 1)
    assert result["created_in"] == "Default Store View"
    assert result["created_at"] == result["updated_at"]
    assert len(result["created_at"]) == len("2018-07-11 20:07:14")
    assert result["addresses"] == [] and result["disable_auto_group_change"] == 0
    assert result["extension_attributes"] == {"is_subscribed": False}
    async with database.read() as connection:
        rows = (await connection.execute(select(demo_customer))).mappings().all()
    assert [(row["id"], row["website_id"], row["email"]) for row in rows] == [
        (1, 1, "mshaw@example.com")
    ]


async def test_missing_names_are_left_out_of_the_answer(route: AsyncRoute) -> None:
    result = await route.handler(operation("nameless@example.com"))
    assert "firstname" not in result and "lastname" not in result


async def test_same_email_in_the_same_website_fails_not_retriably(route: AsyncRoute) -> None:
    await route.handler(operation("bmartin@example.com"))
    with pytest.raises(NotRetriableError) as raised:
        # Emails compare case-insensitively, as on Magento's MySQL.
        await route.handler(operation("BMartin@example.com"))
    assert raised.value.message == DUPLICATE_EMAIL
    assert DUPLICATE_EMAIL == (
        "A customer with the same email address already exists in an associated website."
    )
    assert raised.value.code == 0
    assert raised.value.result_message == DUPLICATE_EMAIL


async def test_an_operation_delivered_again_completes_with_the_customer_it_created(
    route: AsyncRoute, database: Database
) -> None:
    first = operation("redelivered@example.com", firstname="Ann")
    created = await route.handler(first)
    # The first delivery's result was never recorded (its worker died): the same operation
    # runs again.
    assert await route.handler(first) == created
    with pytest.raises(NotRetriableError) as raised:
        await route.handler(operation("Redelivered@example.com"))
    assert raised.value.message == DUPLICATE_EMAIL
    async with database.read() as connection:
        rows = (await connection.execute(select(demo_customer))).all()
    assert [(row.email, row.operation_id) for row in rows] == [
        ("redelivered@example.com", first.operation_id)
    ]


async def test_a_crashed_delivery_is_completed_by_the_worker(database: Database) -> None:
    """Through the worker: an operation whose customer a delivery created before the process
    died is still open; its next delivery completes it."""
    route = customers_route(Settings(), database)
    routes = HandlerRegistry()
    routes.add(route)
    item = {"customer": {"email": "crash@example.com"}, "password": "Password1"}
    await add_bulk(database, [item, item], topic=route.topic_name())
    async with database.write() as connection:
        first, _ = await start_operations(
            connection, [row.id for row in await operations(database)], utc_now()
        )
    died_after = await route.handler(
        OperationInput(item, BULK_UUID, first.id, 0, "default", None, None)
    )

    rows = await process_all(make_worker(database, routes), database)

    assert [(row.status, row.result_message) for row in rows] == [
        (OperationStatus.COMPLETE, f"Service execution success {SERVICE}"),
        (OperationStatus.NOT_RETRIABLY_FAILED, DUPLICATE_EMAIL),
    ]
    assert json.loads(rows[0].result_serialized_data)["id"] == died_after["id"]


async def test_same_email_in_another_website_is_a_new_customer(route: AsyncRoute) -> None:
    first = await route.handler(operation("tgomez@example.com"))
    second = await route.handler(operation("tgomez@example.com", store_code="fr_view"))
    assert second["id"] != first["id"]
    assert (second["website_id"], second["store_id"]) == (2, 3)
    assert second["created_in"] == "Vue française"


async def test_all_store_code_means_the_default_views_website(route: AsyncRoute) -> None:
    created = await route.handler(operation("admin-made@example.com", store_code="all"))
    assert (created["website_id"], created["store_id"]) == (1, 1)
    with pytest.raises(NotRetriableError):
        await route.handler(operation("admin-made@example.com", store_code="default"))


async def test_racing_workers_end_with_one_customer_and_the_rest_failed(
    database: Database,
) -> None:
    # Each worker process has its own engine; here, several on one database file.
    others = [Database(database.url.render_as_string()) for _ in range(3)]
    routes = [customers_route(TWO_WEBSITES, db) for db in [database, *others]]
    try:
        outcomes = await asyncio.gather(
            *(routes[n % len(routes)].handler(operation("race@example.com")) for n in range(12)),
            return_exceptions=True,
        )
    finally:
        for other in others:
            await other.dispose()

    created = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    failed = [outcome for outcome in outcomes if isinstance(outcome, NotRetriableError)]
    assert len(created) == 1
    assert len(failed) == 11
    assert {error.message for error in failed} == {DUPLICATE_EMAIL}


REQUIRED = '"customer" is required. Enter and try again.'
MISSING_EMAIL = "The customer email is missing. Enter and try again."


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ([], REQUIRED),
        ({"password": "x"}, REQUIRED),
        ({"customer": None}, REQUIRED),
        # Anything but an object makes an empty customer, as Magento's input processing does.
        ({"customer": "bmartin@example.com"}, MISSING_EMAIL),
        ({"customer": {}}, MISSING_EMAIL),
        ({"customer": {"email": ""}}, MISSING_EMAIL),
        ({"customer": {"email": "no-at-sign"}}, '"Email" is not a valid email address.'),
        ({"customer": {"email": 42}}, '"Email" is not a valid email address.'),
        (
            {"customer": {"email": "a@example.com", "firstname": ["A"]}},
            'Error occurred during "firstname" processing. The "array" value\'s type is '
            'invalid. The "string" type was expected. Verify and try again.',
        ),
        (
            {"customer": {"email": "a@example.com", "group_id": "one"}},
            'Error occurred during "group_id" processing. The "one" value\'s type is invalid. '
            'The "int" type was expected. Verify and try again.',
        ),
        (
            {"customer": {"email": "a@example.com"}, "password": {"x": 1}},
            'The "array" value\'s type is invalid. The "string" type was expected. Verify and '
            "try again.",
        ),
        (
            {"customer": {"email": "a@example.com", "lastname": "x" * 256}},
            '"lastname" is longer than 255 characters.',
        ),
    ],
)
def test_invalid_items_are_rejected_with_magentos_messages(item: Any, reason: str) -> None:
    route = customers_route(Settings(), Database("sqlite:///:memory:"))
    error = rejection(route, item)
    assert error is not None
    assert rendered(error) == reason


@pytest.mark.parametrize(
    "item",
    [
        {"customer": {"email": "a@example.com"}},
        {
            "customer": {"email": "a@example.com", "firstname": "A", "lastname": None},
            "password": "Password1",
            "redirectUrl": "",
        },
        # Scalars are converted as Magento does: a number for a name is its text.
        {"customer": {"email": "a@example.com", "firstname": 7, "group_id": "1.0"}},
    ],
)
def test_valid_items_are_accepted(item: Any) -> None:
    route = customers_route(Settings(), Database("sqlite:///:memory:"))
    assert rejection(route, item) is None


async def test_the_handler_converts_as_the_validation_did(route: AsyncRoute) -> None:
    result = await route.handler(operation("seven@example.com", firstname=7))
    assert result["firstname"] == "7"
