"""Request bodies decoded and checked as Magento's Web API does, through HTTP: Content-Type,
JSON and XML, single items refused as a whole, path parameters over the body, and the item
stored as PHP would serialize it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.backends import Backend
from tests.servers import RunningServer, server_on
from tests.test_submission import wait_until_final

SINGLE = "/rest/default/async/V1/customers"
BULK = "/rest/default/async/bulk/V1/customers"
TOKEN = "/rest/V1/integration/admin/token"
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}
EVERY_OPERATION = "/rest/V1/bulk?searchCriteria="


@pytest.fixture(scope="module")
def api(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server without a worker: accepted operations stay open, with their serialized_data
    (a completed operation's is cleared, as in Magento), shown as stored: secrets unmasked."""
    with server_on(
        backend,
        tmp_path_factory.mktemp("decoding"),
        "--no-worker",
        HANDLER_MODULES='["tests.handler_fixtures.products"]',
        REDACT_KEYS="[]",
    ) as running:
        yield running


def operation_count(server: RunningServer) -> int:
    with server.admin_client() as admin:
        return admin.get(EVERY_OPERATION).json()["total_count"]


def stored(server: RunningServer, response: httpx.Response) -> list[dict[str, Any]]:
    """The operations of an accepted request."""
    assert response.status_code == 202, response.text
    with server.admin_client() as admin:
        status = admin.get(f"/rest/V1/bulk/{response.json()['bulk_uuid']}/detailed-status")
    return status.json()["operations_list"]


def meta_information(operation: dict[str, Any]) -> str:
    """The item as stored: the JSON inside the operation's serialized_data."""
    return json.loads(operation["serialized_data"])["meta_information"]


# Content-Type (Framework/Webapi/Rest/Request.php::getContentType, DeserializerFactory::get)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, {"message": "Content-Type header is empty."}),
        (
            {"Content-Type": "text/plain"},
            {
                "message": "Server cannot understand Content-Type HTTP header media type %1",
                "parameters": ["text/plain"],
            },
        ),
        (
            {"Content-Type": "application/json; charset=ISO-8859-1"},
            {"message": "UTF-8 is the only supported charset."},
        ),
        (
            {"Content-Type": "application/json; boundary=x"},
            {"message": "Content-Type header is invalid."},
        ),
    ],
)
@pytest.mark.parametrize("path", [SINGLE, BULK, TOKEN])
def test_a_body_needs_a_content_type_magento_understands(
    api: RunningServer, path: str, headers: dict[str, str], expected: dict[str, Any]
) -> None:
    before = operation_count(api)
    with api.client() as client:
        response = client.post(path, content=b'{"username": "admin"}', headers=headers)
    assert (response.status_code, response.json()) == (400, expected)
    assert operation_count(api) == before


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=UTF-8", "application/json;charset=utf-8"]
)
def test_a_utf8_charset_is_accepted(api: RunningServer, content_type: str) -> None:
    body = {"customer": {"email": "charset@example.com"}}
    with api.client() as client:
        response = client.post(
            SINGLE, content=json.dumps(body).encode(), headers={"Content-Type": content_type}
        )
    assert response.status_code == 202, response.text


def test_requests_without_a_body_may_carry_any_content_type(api: RunningServer) -> None:
    with api.admin_client() as admin:
        search = admin.get(EVERY_OPERATION, headers={"Content-Type": "text/plain"})
        assert search.status_code == 200
    with api.client() as client:
        # No body: no parameters, so the customer is missing, whatever the header says.
        for headers in ({}, {"Content-Type": "text/plain"}, JSON):
            response = client.post(SINGLE, headers=headers)
            assert response.status_code == 400
            assert response.json()["parameters"] == {"fieldName": "customer"}
        empty_bulk = client.post(BULK, headers={"Content-Type": "text/plain"})
    assert empty_bulk.status_code == 202
    assert empty_bulk.json()["request_items"] == []


# Single items fail as a whole; bulk items one by one


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {},
            {
                "message": '"%fieldName" is required. Enter and try again.',
                "parameters": {"fieldName": "customer"},
            },
        ),
        (
            {"customer": {"email": "a@example.com"}, "password": ["x"]},
            {
                "message": 'The "array" value\'s type is invalid. The "string" type was '
                "expected. Verify and try again."
            },
        ),
        (
            {"customer": {"email": "a@example.com", "gender": "male"}},
            {
                "message": 'Error occurred during "gender" processing. The "male" value\'s type '
                'is invalid. The "int" type was expected. Verify and try again.'
            },
        ),
        (
            {"customer": {"email": "no-at-sign"}},
            {
                "message": '"%fieldName" is not a valid email address.',
                "parameters": {"fieldName": "Email"},
            },
        ),
    ],
)
def test_an_invalid_single_item_is_a_400_and_stores_nothing(
    api: RunningServer, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = operation_count(api)
    with api.client() as client:
        response = client.post(SINGLE, json=body)
    assert (response.status_code, response.json()) == (400, expected)
    assert operation_count(api) == before


def test_invalid_bulk_items_are_rejected_one_by_one_with_the_rendered_message(
    api: RunningServer,
) -> None:
    items = [{"password": "x"}, {"customer": {"email": "bulk-valid@example.com", "gender": "2"}}]
    with api.client() as client:
        response = client.post(BULK, json=items)
    rejected, accepted = response.json()["request_items"]
    assert rejected["error_message"] == '"customer" is required. Enter and try again.'
    assert accepted["status"] == "accepted"
    assert [operation["status"] for operation in stored(api, response)] == [5, 4]


def test_scalars_are_converted_for_the_handler(server: RunningServer) -> None:
    item = {"customer": {"email": "numbers@example.com", "firstname": 7, "website_id": "1.0"}}
    with server.client() as client:
        response = client.post(SINGLE, json=item)
    assert response.status_code == 202, response.text
    with server.admin_client() as admin:
        (done,) = wait_until_final(admin, response.json()["bulk_uuid"])
    assert done["status"] == 1, done
    assert json.loads(done["result_serialized_data"])["firstname"] == "7"


# Path parameters (Webapi/Controller/Rest/ParamsOverrider::overrideRequestBodyIdWithPathParam)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        # The product's type has `sku`: the path's value goes into the product.
        (
            "/V1/products/abc",
            {"product": {"sku": "x", "name": "Bag"}},
            {"product": {"sku": "abc", "name": "Bag"}, "sku": "abc"},
        ),
        (
            "/V1/products/abc",
            {"product": {"name": "Bag"}},
            {"product": {"name": "Bag", "sku": "abc"}, "sku": "abc"},
        ),
        # Scalars at the top are replaced where they are.
        (
            "/V1/tests/things/t1",
            {"thingId": "x", "name": "n"},
            {"thingId": "t1", "name": "n"},
        ),
        # `me` is the caller's own entity: the body keeps its value.
        (
            "/V1/products/me",
            {"product": {"sku": "x"}},
            {"product": {"sku": "x"}, "sku": "me"},
        ),
        # No signature: the object's own property (camelCase or snake_case) is replaced...
        (
            "/V1/tests/things/t1",
            {"thing": {"thing_id": "x"}},
            {"thing": {"thing_id": "t1"}, "thingId": "t1"},
        ),
        # ...and one it does not have is set at the top.
        (
            "/V1/tests/things/t1",
            {"thing": {"name": "n"}},
            {"thing": {"name": "n"}, "thing_id": "t1", "thingId": "t1"},
        ),
    ],
)
def test_path_parameters_win_over_the_body(
    api: RunningServer, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    with api.client() as client:
        response = client.put(f"/rest/default/async{path}", json=body)
    (accepted,) = stored(api, response)
    # The handler gets this item as its payload.
    assert json.loads(meta_information(accepted)) == expected


def test_a_single_delete_reads_no_body(api: RunningServer) -> None:
    """Rest\\Request::getRequestData reads the body of POST and PUT only."""
    with api.client() as client:
        response = client.request(
            "DELETE",
            "/rest/default/async/V1/products/abc",
            content=b"not read",
            headers={"Content-Type": "text/plain"},
        )
    (accepted,) = stored(api, response)
    assert json.loads(meta_information(accepted)) == {"sku": "abc"}


# serialized_data as PHP's json_decode(..., true) + json_encode write it


def test_the_item_is_stored_as_php_would_serialize_it(api: RunningServer) -> None:
    raw = (
        b'[{"customer": {"email": "first@example.com", "email": "php@example.com",'
        b' "first_name": "Kept", "firstName": "Dropped", "FIRST_NAME": "Dropped",'
        b' "extension_attributes": {}, "custom": {"0": "a", "1": "b"}, "keyed": {"1": "a"},'
        b' "weight": 1.0, "big": 1e20, "small": 0.00001, "path": "a/b", "name": "\\u00e9"}}]'
    )
    with api.client() as client:
        response = client.post(BULK, content=raw, headers=JSON)
    (done,) = stored(api, response)
    expected = (
        '{"customer":{"email":"php@example.com","first_name":"Kept",'
        '"extension_attributes":[],"custom":["a","b"],"keyed":{"1":"a"},'
        '"weight":1,"big":1.0e+20,"small":1.0e-5,"path":"a\\/b","name":"\\u00e9"}}'
    )
    assert meta_information(done) == expected
    serialized = (
        '{"entity_id":null,"entity_link":"","meta_information":'
        + json.dumps(expected).replace("/", "\\/")
        + "}"
    )
    assert done["serialized_data"] == serialized


def test_floats_python_and_php_write_alike_are_stored_as_php_writes_them(
    api: RunningServer,
) -> None:
    """Fractions without exponents, which the fast encoder writes, beside floats PHP writes
    otherwise than Python, in the same items."""
    raw = (
        b'[{"product": {"price": 10.5, "sum": 0.30000000000000004, "tiny": 0.0001,'
        b' "minus": -2.25, "long": 1000000000000000.5, "url": "http://x/y"}},'
        b' {"product": {"price": 10.5, "whole": 2.0, "huge": 1.5e16, "zero": -0.0}}]'
    )
    with api.client() as client:
        response = client.post(BULK, content=raw, headers=JSON)
    first, second = stored(api, response)
    assert meta_information(first) == (
        '{"product":{"price":10.5,"sum":0.30000000000000004,"tiny":0.0001,"minus":-2.25,'
        '"long":1000000000000000.5,"url":"http:\\/\\/x\\/y"}}'
    )
    assert meta_information(second) == (
        '{"product":{"price":10.5,"whole":2,"huge":15000000000000000,"zero":-0}}'
    )


def test_an_empty_object_item_is_an_empty_array(api: RunningServer) -> None:
    with api.client() as client:
        response = client.post(BULK, json=[{}])
    (done,) = stored(api, response)
    assert meta_information(done) == "[]"
    assert response.json()["request_items"][0]["status"] == "rejected"


# XML bodies (Deserializer/Xml.php, Framework/Xml/Parser.php::xmlToArray)


def test_xml_signs_in(api: RunningServer) -> None:
    body = (
        f"<?xml version='1.0'?><request><username>{api.admin_username}</username>"
        f"<password>{api.admin_password}</password></request>"
    )
    with api.client() as client:
        response = client.post(TOKEN, content=body, headers={"Content-Type": "text/xml"})
    assert response.status_code == 200, response.text


def test_xml_bulk_items_are_item_elements(api: RunningServer) -> None:
    body = (
        "<request>"
        "<item><customer><email>xml-one@example.com</email>"
        "<firstname><![CDATA[<Ann>]]></firstname></customer></item>"
        "<item><customer><email>xml-two@example.com</email><lastname/></customer>"
        "<password>Password1</password></item>"
        "<item><customer/></item>"
        "</request>"
    )
    with api.client() as client:
        response = client.post(BULK, content=body, headers=XML)
    first, second, third = stored(api, response)
    assert json.loads(meta_information(first)) == {
        "customer": {"email": "xml-one@example.com", "firstname": "<Ann>"}
    }
    assert json.loads(meta_information(second)) == {
        "customer": {"email": "xml-two@example.com", "lastname": None},
        "password": "Password1",
    }
    assert [first["status"], second["status"], third["status"]] == [4, 4, 5]
    assert third["result_message"] == '"customer" is required. Enter and try again.'


def test_xml_single_item_with_attributes_and_repeated_elements(api: RunningServer) -> None:
    body = (
        "<request><customer><email>xml-single@example.com</email>"
        "<addresses><street>1</street><street>2</street></addresses>"
        '<note lang="en">hi</note></customer></request>'
    )
    with api.client() as client:
        response = client.post(SINGLE, content=body, headers={"Content-Type": "application/xml"})
    (done,) = stored(api, response)
    assert json.loads(meta_information(done)) == {
        "customer": {
            "email": "xml-single@example.com",
            "addresses": {"street": ["1", "2"]},
            "note": {"_value": "hi", "_attribute": {"lang": "en"}},
        }
    }


@pytest.mark.parametrize(
    "body",
    [
        b"<request><customer>",
        b"not xml",
        # No entities: neither declared nor external.
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><request><a>&x;</a></request>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<request><a>&x;</a></request>",
        b"<request>" + b"<a>" * 300 + b"</a>" * 300 + b"</request>",
    ],
)
@pytest.mark.parametrize("path", [SINGLE, BULK, TOKEN])
def test_malformed_xml_is_a_decoding_error(api: RunningServer, path: str, body: bytes) -> None:
    with api.client() as client:
        response = client.post(path, content=body, headers=XML)
    assert (response.status_code, response.json()) == (400, {"message": "Decoding error."})


def test_an_xml_bulk_without_item_elements_is_a_400(api: RunningServer) -> None:
    with api.client() as client:
        response = client.post(BULK, content=b"<request><a>1</a></request>", headers=XML)
    assert response.status_code == 400
    assert response.json()["message"].startswith("A bulk request's body must be")
