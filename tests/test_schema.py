"""The schema endpoints through HTTP: Magento's Swagger 2.0 documents (`/schema`,
`/async/schema`, `/async/bulk/schema`), the OpenAPI 3.1 document, validated, and a client
generated from it calling the running server.

Magento's shapes follow Webapi\\Model\\Rest\\Swagger\\Generator and WebapiAsync's
Plugin\\ServiceMetadata and AsynchronousSchemaRequestProcessor (the 202
`asynchronous-operations-data-async-response-interface` response, `basePath` up to
`/schema`, `?services=all` or a list of service names).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from bulkops.api.schema.swagger import CALLBACK_PARAMETER, RETENTION_PARAMETER
from tests.servers import RunningServer, start_server

ECHO_MODULE = "tests.handler_fixtures.echo"
UPSTREAMS = """
[[upstream]]
name = "shop"
base_url = "http://127.0.0.1:9/rest/default"
[[upstream.route]]
method = "PUT"
path = "/V1/products/:sku"
service = "Magento\\\\Catalog\\\\Api\\\\ProductRepositoryInterface::save"
"""
SYNC_OPERATIONS = {
    ("get", "/V1/bulk"): "asynchronousOperationsOperationRepositoryV1GetListGet",
    (
        "get",
        "/V1/bulk/{bulkUuid}/status",
    ): "asynchronousOperationsBulkStatusV1GetBulkShortStatusGet",
    (
        "get",
        "/V1/bulk/{bulkUuid}/detailed-status",
    ): "asynchronousOperationsBulkStatusV1GetBulkDetailedStatusGet",
    (
        "get",
        "/V1/bulk/{bulkUuid}/operation-status/{status}",
    ): "asynchronousOperationsBulkStatusV1GetOperationsCountByBulkIdAndStatusGet",
    ("post", "/V1/bulk/{bulkUuid}/retry"): "bulkopsAsynchronousOperationsBulkRetryV1RetryPost",
    (
        "get",
        "/V1/bulk/{bulkUuid}/failed",
    ): "bulkopsAsynchronousOperationsFailedItemsV1ExportGet",
    (
        "post",
        "/V1/bulk/{bulkUuid}/resubmit",
    ): "bulkopsAsynchronousOperationsBulkResubmitV1ResubmitPost",
    (
        "get",
        "/V1/bulk/facets",
    ): "bulkopsAsynchronousOperationsOperationFacetsV1GetFacetsGet",
    ("post", "/V1/bulk/retry"): "bulkopsAsynchronousOperationsBulkRetryV1RetryBySearchPost",
    (
        "delete",
        "/V1/bulk/{bulkUuid}",
    ): "bulkopsAsynchronousOperationsBulkManagementV1DeleteBulkDelete",
    ("get", "/V1/bulk/changes"): "bulkopsAsynchronousOperationsChangeFeedV1GetChangesGet",
    (
        "get",
        "/V1/bulk/{bulkUuid}/events",
    ): "bulkopsAsynchronousOperationsBulkEventsV1GetEventsGet",
    (
        "get",
        "/V1/bulk/{bulkUuid}/webhooks",
    ): "bulkopsAsynchronousOperationsBulkWebhooksV1GetDeliveriesGet",
    (
        "post",
        "/V1/integration/admin/token",
    ): "integrationAdminTokenServiceV1CreateAdminAccessTokenPost",
    (
        "post",
        "/V1/integration/admin/token/revoke",
    ): "integrationAdminTokenServiceV1RevokeAdminAccessTokenPost",
    (
        "post",
        "/V1/integration/integration/token/revoke",
    ): "bulkopsIntegrationIntegrationTokenServiceV1RevokeIntegrationAccessTokenPost",
    ("post", "/V1/integration/token/revoke"): "bulkopsIntegrationTokenServiceV1RevokeTokenPost",
    ("get", "/V1/store/websites"): "storeWebsiteRepositoryV1GetListGet",
    ("get", "/V1/store/storeViews"): "storeStoreRepositoryV1GetListGet",
    ("get", "/V1/store/storeGroups"): "storeGroupRepositoryV1GetListGet",
    ("get", "/V1/store/storeConfigs"): "storeStoreConfigManagerV1GetStoreConfigsGet",
}
ASYNC_OPERATIONS = {
    ("post", "/V1/customers"): "customerAccountManagementV1CreateAccountPost",
    ("post", "/V1/echo/{name}"): "vendorEchoV1EchoPost",
    ("put", "/V1/products/{sku}"): "catalogProductRepositoryV1SavePut",
}
BULK_OPERATIONS = {
    ("post", "/V1/customers"): "customerAccountManagementV1CreateAccountPost",
    ("post", "/V1/echo/byName"): "vendorEchoV1EchoPost",
    ("put", "/V1/products/bySku"): "catalogProductRepositoryV1SavePut",
}
ASYNC_RESPONSE_REF = "#/definitions/asynchronous-operations-data-async-response-interface"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A server with every kind of asynchronous route: the demo customers route, a Python
    handler module's route and an HTTP upstream route."""
    upstreams = tmp_path / "upstreams.toml"
    upstreams.write_text(UPSTREAMS)
    running = start_server(
        tmp_path / "server",
        DATABASE_URL=database_url,
        HANDLER_MODULES=json.dumps([ECHO_MODULE]),
        UPSTREAMS_FILE=str(upstreams),
    )
    yield running
    running.stop()


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """Each operation's id by method and path (a path item holds other fields too: servers)."""
    return {
        (method, path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def get_json(server: RunningServer, path: str, admin: bool = True) -> dict[str, Any]:
    with server.admin_client() if admin else server.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_swagger_documents_describe_every_route_served(server: RunningServer) -> None:
    for path, expected in [
        ("/rest/default/schema?services=all", SYNC_OPERATIONS),
        ("/rest/default/async/schema?services=all", ASYNC_OPERATIONS),
        ("/rest/default/async/bulk/schema?services=all", BULK_OPERATIONS),
    ]:
        document = get_json(server, path)
        validate(document)
        assert document["swagger"] == "2.0"
        assert operations(document) == expected, path


def test_synchronous_operations_as_magento_describes_them(server: RunningServer) -> None:
    document = get_json(server, "/rest/default/schema")
    assert document["securityDefinitions"] == {
        "api_key": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": document["securityDefinitions"]["api_key"]["description"],
        }
    }
    search = document["paths"]["/V1/bulk"]["get"]
    assert search["tags"] == ["asynchronousOperationsOperationRepositoryV1"]
    # A complex query parameter is listed field by field, as Magento's generator does.
    names = [parameter["name"] for parameter in search["parameters"]]
    assert names[0] == "searchCriteria[filterGroups][][filters][][field]"
    assert "searchCriteria[pageSize]" in names
    assert search["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/asynchronous-operations-data-operation-search-results-interface"
    }
    assert search["responses"]["401"]["description"] == "401 Unauthorized"
    assert search["responses"]["default"]["schema"] == {"$ref": "#/definitions/error-response"}
    count = document["paths"]["/V1/bulk/{bulkUuid}/operation-status/{status}"]["get"]
    assert [(p["name"], p["in"], p["type"]) for p in count["parameters"]] == [
        ("bulkUuid", "path", "string"),
        ("status", "path", "integer"),
    ]
    token = document["paths"]["/V1/integration/admin/token"]["post"]
    body = token["parameters"][0]
    assert body["name"] == "integrationAdminTokenServiceV1CreateAdminAccessTokenPostBody"
    assert body["in"] == "body"
    assert body["schema"]["required"] == ["username", "password"]
    # Anonymous: no token sent, no 401 for a missing right.
    assert token["security"] == []
    assert "401" in token["responses"]  # wrong credentials
    definitions = document["definitions"]
    assert definitions["asynchronous-operations-data-operation-interface"]["properties"][
        "result_message"
    ] == {"type": "string", "description": "Result message", "x-nullable": True}
    # Magento's synchronous routes make no bulk; bulkops' resubmission does.
    resubmit = document["paths"]["/V1/bulk/{bulkUuid}/resubmit"]["post"]
    assert resubmit["responses"]["202"]["schema"] == {
        "$ref": "#/definitions/asynchronous-operations-data-async-response-interface"
    }
    export = document["paths"]["/V1/bulk/{bulkUuid}/failed"]["get"]
    assert export["produces"] == ["application/x-ndjson", "text/csv; charset=utf-8"]


def test_asynchronous_operations_answer_202(server: RunningServer) -> None:
    single = get_json(server, "/rest/default/async/schema")
    bulk = get_json(server, "/rest/default/async/bulk/schema")
    for document in (single, bulk):
        for item in document["paths"].values():
            for operation in item.values():
                responses = operation["responses"]
                assert responses["202"] == {
                    "description": "202 Accepted.",
                    "schema": {"$ref": ASYNC_RESPONSE_REF},
                }
                assert "200" not in responses
        assert "asynchronous-operations-data-async-response-interface" in document["definitions"]
    echo = single["paths"]["/V1/echo/{name}"]["post"]
    assert echo["parameters"] == [
        {"name": "name", "in": "path", "type": "string", "required": True},
        {
            "name": "vendorEchoV1EchoPostBody",
            "in": "body",
            "schema": {"type": "object", "additionalProperties": True},
        },
        RETENTION_PARAMETER,
        CALLBACK_PARAMETER,
    ]
    # The demo route has Magento's createAccount signature.
    customers = single["paths"]["/V1/customers"]["post"]["parameters"][0]["schema"]
    assert customers["required"] == ["customer"]
    assert customers["properties"]["customer"] == {
        "$ref": "#/definitions/customer-data-customer-interface"
    }
    # A bulk request is an array of items, each with the path's parameters.
    products = bulk["paths"]["/V1/products/bySku"]["put"]["parameters"]
    assert products == [
        {
            "name": "catalogProductRepositoryV1SavePutBody",
            "in": "body",
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": True,
                    "properties": {"sku": {"type": "string"}},
                    "required": ["sku"],
                },
            },
        },
        RETENTION_PARAMETER,
        CALLBACK_PARAMETER,
    ]


@pytest.mark.parametrize(
    ("path", "base_path"),
    [
        ("/rest/schema", "/rest"),
        ("/rest/all/schema/", "/rest/all"),
        ("/rest/default/async/schema", "/rest/default/async"),
        ("/rest/async/bulk/schema?services=all", "/rest/async/bulk"),
    ],
)
def test_base_path_host_and_scheme_follow_the_request(
    server: RunningServer, path: str, base_path: str
) -> None:
    document = get_json(server, path)
    assert document["basePath"] == base_path
    assert document["host"] == server.base_url.removeprefix("http://")
    assert document["schemes"] == ["http"]


def test_services_parameter_chooses_the_services(server: RunningServer) -> None:
    document = get_json(
        server, "/rest/default/schema?services=storeStoreRepositoryV1,storeWebsiteRepositoryV1"
    )
    assert [tag["name"] for tag in document["tags"]] == [
        "storeWebsiteRepositoryV1",
        "storeStoreRepositoryV1",
    ]
    assert set(document["paths"]) == {"/V1/store/websites", "/V1/store/storeViews"}
    assert set(document["definitions"]) >= {
        "store-data-website-interface",
        "store-data-store-interface",
        "error-response",
    }
    assert "store-data-group-interface" not in document["definitions"]
    with server.admin_client() as client:
        malformed = client.get("/rest/default/schema?services=stores")
        empty = client.get("/rest/default/schema?services=")
        unknown = client.get("/rest/default/async/schema?services=storeStoreRepositoryV1")
    for response in (malformed, empty):
        assert response.status_code == 400
        assert response.json() == {
            "message": "Incorrect format of request URI or Requested services are missing."
        }
    # Served, but not asynchronously.
    assert unknown.status_code == 400
    assert unknown.json() == {
        "message": 'Requested service is not available: "%service"',
        "parameters": {"service": "storeStoreRepositoryV1"},
    }


def test_a_schema_lists_only_what_the_caller_may_use(server: RunningServer) -> None:
    anonymous = get_json(server, "/rest/default/schema", admin=False)
    assert operations(anonymous) == {
        ("post", "/V1/integration/admin/token"): (
            "integrationAdminTokenServiceV1CreateAdminAccessTokenPost"
        )
    }
    anonymous_async = get_json(server, "/rest/default/async/schema", admin=False)
    assert operations(anonymous_async) == {
        ("post", "/V1/customers"): "customerAccountManagementV1CreateAccountPost"
    }
    with server.client() as client:
        refused = client.get("/rest/default/schema?services=asynchronousOperationsBulkStatusV1")
    assert refused.status_code == 401
    assert refused.json() == {
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": "asynchronousOperationsBulkStatusV1"},
    }


def test_openapi_document_holds_every_variant(server: RunningServer) -> None:
    document = get_json(server, "/rest/default/openapi.json")
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": f"{server.base_url}/rest/default"}]
    expected = (
        set(SYNC_OPERATIONS.values())
        | {f"{name}Async" for name in ASYNC_OPERATIONS.values()}
        | {f"{name}AsyncBulk" for name in BULK_OPERATIONS.values()}
        | {"metricsGet"}
    )
    found = operations(document)
    assert set(found.values()) == expected
    assert len(found) == len(expected)
    assert ("post", "/async/V1/echo/{name}") in found
    assert ("put", "/async/bulk/V1/products/bySku") in found
    search = document["paths"]["/V1/bulk"]["get"]
    assert search["parameters"][0] == {
        "name": "searchCriteria[filterGroups][0][filters][0][field]",
        "in": "query",
        "required": False,
        "description": "Field",
        "schema": {"type": "string"},
    }
    schemas = document["components"]["schemas"]
    item_status = schemas["asynchronous-operations-data-item-status-interface"]["properties"]
    assert item_status["data_hash"]["type"] == ["string", "null"]
    assert document["components"]["securitySchemes"]["api_key"]["scheme"] == "bearer"
    assert document["paths"]["/V1/integration/admin/token"]["post"]["security"] == []
    # The change feed's cursor may be past the retention; the events are a stream.
    feed = document["paths"]["/V1/bulk/changes"]["get"]
    assert [p["name"] for p in feed["parameters"]] == ["after", "limit", "wait"]
    assert {"200", "400", "401", "410"} <= feed["responses"].keys()
    events = document["paths"]["/V1/bulk/{bulkUuid}/events"]["get"]["responses"]
    assert list(events["200"]["content"]) == ["text/event-stream"]
    assert list(events["404"]["content"]) == ["application/json"]


def _generate_client(document: dict[str, Any], directory: Path, package: str) -> Any:
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(document))
    # The generator formats its output with ruff, found on PATH.
    environment = dict(
        os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(directory / package),
            "--meta",
            "none",
        ],
        check=True,
        env=environment,
        capture_output=True,
    )
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(directory))


@pytest.fixture
def generated_client(server: RunningServer, tmp_path: Path) -> Iterator[str]:
    """The package of a client generated from the server's OpenAPI document."""
    package = "bulkops_generated_client"
    document = get_json(server, "/rest/default/openapi.json")
    _generate_client(document, tmp_path, package)
    yield package
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        del sys.modules[name]


def test_generated_client_submits_and_searches(
    server: RunningServer, generated_client: str
) -> None:
    def load(name: str) -> Any:
        return importlib.import_module(f"{generated_client}.{name}")

    client_module = load("client")
    models = load("models")
    submit = load(
        "api.customer_account_management_v1.customer_account_management_v1_create_account_post_async_bulk"
    )
    search = load(
        "api.asynchronous_operations_operation_repository_v1.asynchronous_operations_operation_repository_v1_get_list_get"
    )
    client = client_module.AuthenticatedClient(
        base_url=f"{server.base_url}/rest/default", token=server.admin_token()
    )
    with client:
        accepted = submit.sync(
            client=client,
            body=[
                models.CustomerAccountManagementV1CreateAccountPostAsyncBulkBodyItem(
                    customer=models.CustomerDataCustomerInterface(
                        email=f"client{n}@example.com", firstname="Generated", lastname="Client"
                    )
                )
                for n in range(2)
            ],
        )
        assert isinstance(accepted, models.AsynchronousOperationsDataAsyncResponseInterface)
        assert [item.status for item in accepted.request_items] == ["accepted", "accepted"]
        found = search.sync(
            client=client,
            search_criteriafilter_groups_0_filters_0_field="bulk_uuid",
            search_criteriafilter_groups_0_filters_0_value=accepted.bulk_uuid,
            search_criteriasort_orders_0_field="id",
            search_criteriasort_orders_0_direction="DESC",
            search_criteriapage_size=10,
        )
        assert isinstance(found, models.AsynchronousOperationsDataOperationSearchResultsInterface)
        assert found.total_count == 2
        assert {item.bulk_uuid for item in found.items} == {accepted.bulk_uuid}
        assert found.items[0].id > found.items[1].id
        assert found.search_criteria.page_size == 10
        # Errors are parsed as Magento sends them.
        refused = search.sync(
            client=client,
            search_criteriafilter_groups_0_filters_0_field="no_such_field",
            search_criteriafilter_groups_0_filters_0_value="1",
        )
        assert isinstance(refused, models.ErrorResponse)
        assert refused.message
