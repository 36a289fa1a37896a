"""How answers are rendered, on a real server: the format the Accept header asks for (JSON or
Magento's XML, 406 when none fits), `fields=` partial responses, streamed searches in both, the
store routes' ACL and `storeCodes`, and Magento's 500."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from bulkops.api.fields import parse
from bulkops.api.xml import element_name
from bulkops.auth.context import BULK_OPERATIONS, STORES
from bulkops.status import OperationStatus, UserType
from bulkops.store.bulks import NewBulk, NewOperation
from tests.backends import Backend
from tests.servers import RunningServer, server_on
from tests.storage import insert_bulks
from tests.test_auth import create_integration
from tests.test_search_api import BULK_A, BULK_B, _bulk, eq_filter

BULK_C = "cccccccc-0000-4000-8000-000000000003"
START = datetime(2024, 3, 1, 10, 15, 2)
SPECIAL_MESSAGE = 'Sku "x" <a> & b\r\n\u00e9\u20ac'
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
XML_HEAD = '<?xml version="1.0"?>\n'
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
STORE_PATHS = ["websites", "storeViews", "storeGroups", "storeConfigs"]
A_SEARCH = f"/rest/V1/bulk?{eq_filter('bulk_uuid', BULK_A)}"
NOTHING = f"/rest/V1/bulk?{eq_filter('bulk_uuid', 'none')}"
CUSTOMERS_TOPIC = "async.magento.customer.api.accountmanagementinterface.createaccount.post"


def _special_bulk() -> NewBulk:
    return NewBulk(
        uuid=BULK_C,
        description="special",
        user_id=1,
        user_type=int(UserType.ADMIN),
        start_time=START,
        operations=[
            NewOperation(
                operation_key=0,
                topic_name="async.V1.products.POST",
                serialized_data='{"sku":"a&b"}',
                status=OperationStatus.NOT_RETRIABLY_FAILED,
                result_message=SPECIAL_MESSAGE,
                error_code=0,
            )
        ],
    )


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module (the tests only read, or write what no other reads): bulk A
    (25 operations), B (5) and C (one with markup and non-ASCII text in its message)."""
    with server_on(
        backend,
        tmp_path_factory.mktemp("responses"),
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        HANDLER_MODULES='["tests.handler_fixtures.faulty"]',
    ) as running:
        url = running.database_url
        statuses = [OperationStatus.COMPLETE] * 20 + [OperationStatus.NOT_RETRIABLY_FAILED] * 5
        insert_bulks(
            url,
            [
                _bulk(BULK_A, START, statuses),
                _bulk(BULK_B, START, [OperationStatus.OPEN] * 5),
                _special_bulk(),
            ],
        )
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.admin_client() as client:
        yield client


def get(client: httpx.Client, path: str, accept: str | None = None) -> httpx.Response:
    return client.get(path, headers={"Accept": accept} if accept else {})


def xml_of(response: httpx.Response) -> ElementTree.Element:
    assert response.headers["content-type"] == XML_TYPE
    assert response.text.startswith(XML_HEAD)
    return ElementTree.fromstring(response.content)


def as_data(element: ElementTree.Element) -> Any:
    """An XML answer read back: children named `item` are a list, others an object, text a
    string (so JSON data compares after `as_text`)."""
    children = list(element)
    if not children:
        return element.text or ""
    if all(child.tag == "item" for child in children):
        return [as_data(child) for child in children]
    return {child.tag: as_data(child) for child in children}


def as_text(data: Any) -> Any:
    """JSON data as Magento's XML writes it: scalars as text, empty arrays as empty text."""
    if isinstance(data, dict | list) and not data:
        return ""
    if isinstance(data, dict):
        return {key: as_text(value) for key, value in data.items()}
    if isinstance(data, list):
        return [as_text(value) for value in data]
    if isinstance(data, bool):
        return "true" if data else "false"
    return "" if data is None else str(data)


# Content negotiation


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, JSON_TYPE),
        ("*/*", JSON_TYPE),
        ("application/json", JSON_TYPE),
        ("application/*", JSON_TYPE),
        ("application/xml", XML_TYPE),
        ("text/xml", XML_TYPE),
        ("application/xhtml+xml", XML_TYPE),
        ("text/*", XML_TYPE),
        # RendererFactory: the browser's first acceptable type is application/xhtml+xml.
        (BROWSER, XML_TYPE),
        ("application/json;q=0.5, application/xml", XML_TYPE),
        ("image/png, */*;q=0.1", JSON_TYPE),
    ],
)
def test_accept_chooses_the_renderer_as_magento(
    admin: httpx.Client, accept: str | None, content_type: str
) -> None:
    response = get(admin, "/rest/V1/store/storeViews", accept)
    assert (response.status_code, response.headers["content-type"]) == (200, content_type)


@pytest.mark.parametrize(
    ("accept", "named"),
    [
        ("text/html", "text/html"),
        ("image/png;q=0.5, text/html", "text/html"),
        ("application/pdf, image/*", "application/pdf"),
    ],
)
def test_an_accept_no_renderer_satisfies_is_a_406_before_anything_runs(
    admin: httpx.Client, accept: str, named: str
) -> None:
    before = customer_operations(admin)
    response = admin.post(
        "/rest/async/bulk/V1/customers",
        json=[{"customer": {"email": "n@example.com", "firstname": "N", "lastname": "A"}}],
        headers={"Accept": accept},
    )
    assert response.status_code == 406
    assert response.headers["content-type"] == JSON_TYPE
    assert response.json() == {
        "message": "Server cannot match any of the given Accept HTTP header media type(s) from "
        f'the request: "{named}" with media types from the config of response renderer.'
    }
    assert customer_operations(admin) == before


def customer_operations(admin: httpx.Client) -> int:
    topic = eq_filter("topic_name", CUSTOMERS_TOPIC)
    return admin.get(f"/rest/V1/bulk?{topic}&searchCriteria[pageSize]=1").json()["total_count"]


# XML


def test_a_page_in_xml_is_magentos_rendering(admin: httpx.Client) -> None:
    path = f"{A_SEARCH}&searchCriteria[pageSize]=1"
    first = get(admin, path).json()["items"][0]
    response = get(admin, path, "application/xml")
    assert response.status_code == 200
    assert response.text == (
        f"{XML_HEAD}<response>\n"
        "  <items>\n"
        "    <item>\n"
        "      <extension_attributes>\n"
        "        <start_time>2024-03-01 10:15:02</start_time>\n"
        "      </extension_attributes>\n"
        f"      <id>{first['id']}</id>\n"
        f"      <bulk_uuid>{BULK_A}</bulk_uuid>\n"
        "      <topic_name>async.V1.products.POST</topic_name>\n"
        '      <serialized_data>{"sku":"sku-0"}</serialized_data>\n'
        "      <result_serialized_data></result_serialized_data>\n"
        "      <status>1</status>\n"
        "      <result_message>message 0</result_message>\n"
        "      <error_code></error_code>\n"
        "    </item>\n"
        "  </items>\n"
        "  <search_criteria>\n"
        "    <filter_groups>\n"
        "      <item>\n"
        "        <filters>\n"
        "          <item>\n"
        "            <field>bulk_uuid</field>\n"
        f"            <value>{BULK_A}</value>\n"
        "            <condition_type>eq</condition_type>\n"
        "          </item>\n"
        "        </filters>\n"
        "      </item>\n"
        "    </filter_groups>\n"
        "    <page_size>1</page_size>\n"
        "  </search_criteria>\n"
        "  <total_count>25</total_count>\n"
        "</response>\n"
    )


def test_xml_escapes_markup_and_writes_non_ascii_as_references(admin: httpx.Client) -> None:
    response = get(admin, f"/rest/V1/bulk/{BULK_C}/detailed-status", "text/xml")
    assert '<serialized_data>{"sku":"a&amp;b"}</serialized_data>' in response.text
    assert (
        '<result_message>Sku "x" &lt;a&gt; &amp; b&#13;\n&#xE9;&#x20AC;</result_message>'
        in response.text
    )
    assert response.content.isascii()
    assert xml_of(response).find("operations_list/item/result_message").text == SPECIAL_MESSAGE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    [
        f"{A_SEARCH}&searchCriteria[pageSize]=30",
        f"/rest/V1/bulk/{BULK_A}/status",
        f"/rest/V1/bulk/{BULK_A}/detailed-status",
        "/rest/V1/store/storeConfigs",
        "/rest/default/V1/store/websites",
    ],
)
def test_xml_carries_the_json_answer(admin: httpx.Client, path: str) -> None:
    data = get(admin, path).json()
    assert as_data(xml_of(get(admin, path, "application/xml"))) == as_text(data)


def test_a_scalar_answer_is_the_root_text(admin: httpx.Client) -> None:
    response = get(admin, f"/rest/V1/bulk/{BULK_A}/operation-status/3", "application/xml")
    assert response.text == f"{XML_HEAD}<response>5</response>\n"


def test_a_streamed_search_in_xml_is_the_page_streamed(admin: httpx.Client) -> None:
    paged = as_data(xml_of(get(admin, f"{A_SEARCH}&searchCriteria[pageSize]=100", "text/xml")))
    streamed = get(admin, A_SEARCH, "text/xml")
    assert streamed.headers.get("content-length") is None
    read = as_data(xml_of(streamed))
    del paged["search_criteria"]["page_size"]
    assert read == paged
    assert len(read["items"]) == 25
    nothing = get(admin, NOTHING, "text/xml")
    assert "  <items/>\n" in nothing.text
    assert as_data(xml_of(nothing))["total_count"] == "0"


def test_booleans_and_answers_to_posts_are_rendered_too(
    server: RunningServer, admin: httpx.Client
) -> None:
    accepted = admin.post(
        "/rest/async/bulk/V1/customers",
        json=[{"customer": {"email": "x@example.com", "firstname": "X", "lastname": "Y"}}],
        headers={"Accept": "application/xml"},
    )
    assert accepted.status_code == 202
    answer = as_data(xml_of(accepted))
    assert answer["errors"] == "false"
    assert answer["request_items"][0]["status"] == "accepted"
    with server.client(headers={"Accept": "application/xml"}) as client:
        token = client.post(
            "/rest/V1/integration/admin/token",
            json={"username": server.admin_username, "password": server.admin_password},
        )
    assert re.fullmatch(rf"{re.escape(XML_HEAD)}<response>[a-z0-9]{{32}}</response>\n", token.text)


def test_errors_are_rendered_in_the_negotiated_format(server: RunningServer) -> None:
    with server.client(headers={"Accept": "application/xml"}) as client:
        unauthorized = client.get("/rest/V1/store/websites")
        both_required = client.post("/rest/V1/integration/admin/token", json={})
        no_route = client.get("/rest/V1/nowhere")
    assert unauthorized.status_code == 401
    assert unauthorized.text == (
        f"{XML_HEAD}<response>\n"
        "  <message>The consumer isn't authorized to access %resources.</message>\n"
        "  <parameters>\n"
        "    <resources>Magento_Backend::store</resources>\n"
        "  </parameters>\n"
        "</response>\n"
    )
    assert both_required.status_code == 400
    assert as_data(xml_of(both_required)) == {
        "message": "One or more input exceptions have occurred.",
        "errors": [
            {
                "message": '"%fieldName" is required. Enter and try again.',
                "parameters": {"fieldName": name},
            }
            for name in ("username", "password")
        ],
    }
    assert no_route.status_code == 404
    assert as_data(xml_of(no_route)) == {"message": "Request does not match any route."}


def test_characters_xml_cannot_hold_are_replaced_and_the_document_stays_well_formed(
    server: RunningServer,
) -> None:
    """A query parameter with control characters is refused, and the error names it: in XML
    those characters (which no XML 1.0 document can hold) are U+FFFD."""
    with server.client(headers={"Accept": "application/xml"}) as client:
        refused = client.get("/rest/V1/bulk", params={"x\x00\x01": "1"})
    assert refused.status_code == 400
    text = "".join(xml_of(refused).itertext())
    assert "\ufffd" in text and "\x01" not in text


def test_element_names_are_prepared_as_magento_prepares_keys() -> None:
    # No answer of the API has such keys; Renderer\Xml::_prepareKey's rules, directly.
    assert element_name("store code") == "store_code"
    assert element_name("a:b") == "a_b"
    assert element_name("_x(y)!_") == "xy"
    assert element_name("1st") == "item_1st"
    assert element_name(".5") == "item_5"
    assert element_name("\u00e9t\u00e9") == "t"


# fields=


@pytest.mark.parametrize(
    ("text", "selection"),
    [
        ("items[id,status],total_count", {"items": {"id": 1, "status": 1}, "total_count": 1}),
        ("a[b[c,d]],e", {"a": {"b": {"c": 1, "d": 1}}, "e": 1}),
        # FieldsFilter::parse's state machine, quirks included: a bracket after a comma nests
        # under the last name read; a stray `]` nests under PHP's null key, "".
        ("a,[b]", {"a": {"b": 1}}),
        ("a]", {"": {"a": 1}}),
        ("a[b", None),
        ("a.b", None),
        ("", None),
    ],
)
def test_fields_are_parsed_as_magento_parses_them(text: str, selection: Any) -> None:
    assert parse(text) == selection


def test_fields_filters_a_page(admin: httpx.Client) -> None:
    page = get(admin, f"{A_SEARCH}&searchCriteria[pageSize]=2&fields=items[id,status],total_count")
    ids = [
        item["id"] for item in get(admin, f"{A_SEARCH}&searchCriteria[pageSize]=2").json()["items"]
    ]
    assert page.json() == {
        "items": [{"id": ids[0], "status": 1}, {"id": ids[1], "status": 1}],
        "total_count": 25,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("total_count", {"total_count": 25}),
        ("total_count,nope", {"total_count": 25}),
        ("items[status,nope]", {"items": [{"status": 1}] * 20 + [{"status": 3}] * 5}),
        (
            "items[extension_attributes[start_time]],search_criteria[filter_groups[filters[field]]]",
            {
                "items": [{"extension_attributes": {"start_time": "2024-03-01 10:15:02"}}] * 25,
                "search_criteria": {"filter_groups": [{"filters": [{"field": "bulk_uuid"}]}]},
            },
        ),
        # An object the filter empties is PHP's empty array.
        ("items[nope],total_count", {"items": [[]] * 25, "total_count": 25}),
        ("nope", []),
        # Malformed (an unclosed bracket, a character outside [\w\[\],]): Magento answers [].
        ("items[id", []),
        ("items[id status]", []),
    ],
)
def test_fields_filters_a_streamed_search_as_a_page(
    admin: httpx.Client, fields: str, expected: Any
) -> None:
    streamed = get(admin, f"{A_SEARCH}&fields={fields}")
    paged = get(admin, f"{A_SEARCH}&searchCriteria[pageSize]=25&fields={fields}")
    assert streamed.json() == expected
    assert paged.json() == expected


def test_an_empty_list_under_a_selection_is_null_as_in_magento(admin: httpx.Client) -> None:
    for path in (NOTHING, f"{NOTHING}&searchCriteria[pageSize]=5"):
        assert get(admin, f"{path}&fields=items[id],total_count").json() == {
            "items": None,
            "total_count": 0,
        }
        assert get(admin, f"{path}&fields=items,total_count").json() == {
            "items": [],
            "total_count": 0,
        }
        assert "  <items></items>\n" in get(admin, f"{path}&fields=items[id]", "text/xml").text


def test_fields_in_xml_and_streamed(admin: httpx.Client) -> None:
    response = get(admin, f"{A_SEARCH}&fields=items[id]", "application/xml")
    assert response.headers.get("content-length") is None
    assert set(as_data(xml_of(response))) == {"items"}
    assert all(set(item) == {"id"} for item in as_data(xml_of(response))["items"])


def test_fields_filters_every_get_and_nothing_else(admin: httpx.Client) -> None:
    status = get(admin, f"/rest/V1/bulk/{BULK_B}/status?fields=bulk_id,operations_list[status]")
    assert status.json() == {"operations_list": [{"status": 4}] * 5, "bulk_id": BULK_B}
    views = get(admin, "/rest/V1/store/storeViews?fields=code")
    assert views.json() == [{"code": "admin"}, {"code": "default"}]
    # A scalar answer is not an array: Magento does not filter it.
    count = get(admin, f"/rest/V1/bulk/{BULK_A}/operation-status/1?fields=x")
    assert count.json() == 20
    # Errors are never filtered; "" and "0" ask for no filter (PHP's false).
    missing = get(admin, "/rest/V1/bulk/nope/status?fields=message")
    assert missing.json() == {
        "message": "Bulk uuid %bulkUuid not exist",
        "parameters": {"bulkUuid": "nope"},
    }
    for falsy in ("", "0"):
        assert len(get(admin, f"/rest/V1/store/websites?fields={falsy}").json()[0]) == 4
    assert get(admin, "/rest/V1/store/websites?fields[]=code").json() == []


# Store routes


def test_store_routes_are_guarded_by_magento_backend_store(server: RunningServer) -> None:
    stores_only = create_integration(server, "responses-stores", STORES)
    bulk_only = create_integration(server, "responses-bulk", BULK_OPERATIONS)
    assert STORES == "Magento_Backend::store"
    for path in STORE_PATHS:
        with server.client() as guest:
            refused = guest.get(f"/rest/V1/store/{path}")
        assert (refused.status_code, refused.json()) == (
            401,
            {
                "message": "The consumer isn't authorized to access %resources.",
                "parameters": {"resources": "Magento_Backend::store"},
            },
        )
        with server.client(headers={"Authorization": f"Bearer {bulk_only}"}) as client:
            assert client.get(f"/rest/V1/store/{path}").status_code == 401
        with server.client(headers={"Authorization": f"Bearer {stores_only}"}) as client:
            assert client.get(f"/rest/V1/store/{path}").status_code == 200


def test_store_configs_by_store_codes(admin: httpx.Client) -> None:
    every = get(admin, "/rest/V1/store/storeConfigs").json()
    assert [config["code"] for config in every] == ["default"]
    assert get(admin, "/rest/V1/store/storeConfigs?storeCodes[]=default").json() == every
    assert get(admin, "/rest/V1/store/storeConfigs?storeCodes[0]=nope").json() == []
    assert (
        get(admin, "/rest/V1/store/storeConfigs?storeCodes[]=nope&storeCodes[]=default").json()
        == every
    )
    scalar = get(admin, "/rest/V1/store/storeConfigs?storeCodes=default")
    assert scalar.status_code == 400
    assert scalar.json() == {
        "message": 'Error occurred during "storeCodes" processing. The "default" value\'s type '
        'is invalid. The "string[]" type was expected. Verify and try again.'
    }


# 500


def test_an_unexpected_error_is_magentos_500_with_its_report_id(
    server: RunningServer, admin: httpx.Client
) -> None:
    report = (
        r"Internal Error\. Details are available in Magento log file\. "
        r"Report ID: (webapi-[0-9a-f]{13})"
    )
    response = admin.post("/rest/async/V1/tests/faulty", json={"x": 1})
    assert response.status_code == 500
    assert set(response.json()) == {"message"}
    found = re.fullmatch(report, response.json()["message"])
    assert found is not None
    assert found.group(1) in server.log()
    in_xml = admin.post(
        "/rest/async/V1/tests/faulty", json={"x": 1}, headers={"Accept": "text/xml"}
    )
    assert in_xml.status_code == 500
    assert re.fullmatch(report, as_data(xml_of(in_xml))["message"])
