"""Every route bulkops serves, described as Magento describes a service method: its
interface, method, ACL resource, parameters and result."""

from __future__ import annotations

from dataclasses import dataclass, field

from bulkops.api.schema import definitions as d
from bulkops.api.schema.naming import path_parameters, route_version, service_name
from bulkops.auth.context import ADMIN_USERS, ANONYMOUS, BULK_OPERATIONS, INTEGRATIONS, STORES
from bulkops.handlers.base import AsyncRoute
from bulkops.handlers.registry import HandlerRegistry
from bulkops.store.facets import FACETS

Schema = d.Schema


@dataclass(frozen=True)
class Parameter:
    name: str
    schema: Schema
    required: bool = True


@dataclass(frozen=True)
class ServiceMethod:
    http_method: str
    path: str
    """Magento's route path, parameters written `:name`."""
    interface: str
    method: str
    description: str
    resource: str
    path_types: dict[str, Schema] = field(default_factory=dict)
    """Types of the path parameters that are not strings."""
    query: tuple[Parameter, ...] = ()
    body: Schema | None = None
    """The request body (an object of the method's parameters), None for no body."""
    result: Schema | None = None
    errors: tuple[int, ...] = ()
    """HTTP statuses of the errors the method declares (400, 404...)."""
    bulk_path: str | None = None
    """Set for asynchronous routes: the path of the bulk variant (`/bySku/`)."""
    result_status: int = 200
    """The status of a success: 202 for a synchronous route that makes a bulk."""
    result_types: tuple[str, ...] = ()
    """The media types of a success that is not JSON (errors still are)."""

    @property
    def service(self) -> str:
        return service_name(self.interface, route_version(self.path))

    @property
    def asynchronous(self) -> bool:
        return self.bulk_path is not None

    @property
    def path_parameters(self) -> list[Parameter]:
        return [
            Parameter(name, self.path_types.get(name, {"type": "string"}))
            for name in path_parameters(self.path)
        ]


def _search_criteria_query() -> tuple[Parameter, ...]:
    """`searchCriteria` as Magento's generator lists a complex query parameter: one name per
    scalar field, `[]` where a list is (Generator::getQueryParamNames)."""
    filters = "searchCriteria[filterGroups][][filters][]"
    fields = [
        (f"{filters}[field]", "string", "Field"),
        (f"{filters}[value]", "string", "Value"),
        (f"{filters}[conditionType]", "string", "Condition type"),
        ("searchCriteria[sortOrders][][field]", "string", "Sorting field."),
        ("searchCriteria[sortOrders][][direction]", "string", "Sorting direction."),
        ("searchCriteria[pageSize]", "integer", "Page size."),
        ("searchCriteria[currentPage]", "integer", "Current page."),
    ]
    return tuple(
        Parameter(name, {"type": kind, "description": text}, required=False)
        for name, kind, text in fields
    )


def _body(properties: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_OPERATIONS = "Magento\\AsynchronousOperations\\Api\\"
_BULK_UUID = {"bulkUuid": {"type": "string"}}

# The routes served synchronously (webapi.xml of Magento_AsynchronousOperations,
# Magento_Integration and Magento_Store, and bulkops' retry, delete and webhook log).
SYNC_METHODS: tuple[ServiceMethod, ...] = (
    ServiceMethod(
        "GET",
        "/V1/bulk",
        _OPERATIONS + "OperationRepositoryInterface",
        "getList",
        "Lists the bulk operation items that match specified search criteria.",
        BULK_OPERATIONS,
        query=(
            *_search_criteria_query(),
            Parameter(
                "cursor",
                {
                    "type": "string",
                    "description": "Keyset paging (bulkops): empty for the first page, then "
                    "the next_cursor of the last answer; needs pageSize, takes no currentPage.",
                },
                required=False,
            ),
        ),
        result=d.ref("asynchronous-operations-data-operation-search-results-interface"),
        errors=(400,),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/status",
        _OPERATIONS + "BulkStatusInterface",
        "getBulkShortStatus",
        "Get Bulk summary data with list of operations items short data.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        result=d.ref("asynchronous-operations-data-bulk-operations-status-interface"),
        errors=(404,),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/detailed-status",
        _OPERATIONS + "BulkStatusInterface",
        "getBulkDetailedStatus",
        "Get Bulk summary data with list of operations items full data.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        result=d.ref("asynchronous-operations-data-detailed-bulk-operations-status-interface"),
        errors=(404,),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/operation-status/:status",
        _OPERATIONS + "BulkStatusInterface",
        "getOperationsCountByBulkIdAndStatus",
        "Get operations count by bulk uuid and status.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID | {"status": {"type": "integer"}},
        result={"type": "integer"},
        errors=(400,),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/changes",
        "Bulkops\\AsynchronousOperations\\Api\\ChangeFeedInterface",
        "getChanges",
        "Changes of operations' statuses (made final, reopened by a retry) and bulks deleted, "
        "past the cursor, in feed order, with the cursor to read from next: following it, "
        "every change is read once. A cursor older than the oldest change kept is a 410.",
        BULK_OPERATIONS,
        query=(
            Parameter(
                "after",
                {"type": "string", "description": "next_cursor of an earlier answer."},
                required=False,
            ),
            Parameter(
                "limit",
                {"type": "integer", "description": "Changes per answer, 1 to 1000 (100)."},
                required=False,
            ),
            Parameter(
                "wait",
                {"type": "integer", "description": "Seconds to wait for a change (long poll)."},
                required=False,
            ),
        ),
        result=d.ref("bulkops-change-feed-page-interface"),
        errors=(400, 410),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/events",
        "Bulkops\\AsynchronousOperations\\Api\\BulkEventsInterface",
        "getEvents",
        "Server-sent events of the bulk's operations counted by status: `progress` at once "
        "and at each change, `finished` (then the stream ends) once no accepted operation is "
        "open, `deleted` if the bulk is deleted meanwhile.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        result={"type": "string", "description": "text/event-stream"},
        errors=(404,),
        result_types=("text/event-stream",),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/facets",
        "Bulkops\\AsynchronousOperations\\Api\\OperationFacetsInterface",
        "getFacets",
        "Count the operations that match specified search criteria by the values of one or "
        "more facets (status, topic_name, error_code, user_type), crossed. Sort orders and "
        "paging play no part.",
        BULK_OPERATIONS,
        query=(
            Parameter(
                "facets[]",
                {
                    "type": "string",
                    "enum": list(FACETS),
                    "description": "A facet to count by; repeated for several, crossed.",
                },
            ),
            *_search_criteria_query(),
        ),
        result=d.ref("bulkops-data-facet-search-results-interface"),
        errors=(400,),
    ),
    ServiceMethod(
        "POST",
        "/V1/bulk/retry",
        "Bulkops\\AsynchronousOperations\\Api\\BulkRetryInterface",
        "retryBySearch",
        "Queue again every failed operation (status 2 and 3) that matches specified search "
        "criteria, across bulks; the caller also needs the resource of every queued "
        "operation's route. Answers how many were queued, or with dry_run how many would be.",
        BULK_OPERATIONS,
        query=(
            Parameter(
                "dry_run",
                {"type": "boolean", "description": "Count the operations, change nothing."},
                required=False,
            ),
            *_search_criteria_query(),
        ),
        result={"type": "integer"},
        errors=(400,),
    ),
    ServiceMethod(
        "POST",
        "/V1/bulk/:bulkUuid/retry",
        "Bulkops\\AsynchronousOperations\\Api\\BulkRetryInterface",
        "retry",
        "Queue a bulk's failed operations again (status 2 and 3, the only ones that may be "
        "retried); the caller also needs the resource of every queued operation's route. "
        "Answers how many were queued.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        body=_body(
            {
                "statuses": d.array_of({"type": "integer"}, "Statuses to retry"),
                "error_codes": d.array_of({"type": "integer"}, "Error codes to retry"),
            },
            [],
        ),
        result={"type": "integer"},
        errors=(400, 404),
    ),
    ServiceMethod(
        "DELETE",
        "/V1/bulk/:bulkUuid",
        "Bulkops\\AsynchronousOperations\\Api\\BulkManagementInterface",
        "deleteBulk",
        "Delete a bulk with its operations; the caller also needs the resource of every "
        "operation's route. A bulk with open operations (queued or in progress) is refused "
        "unless force is true: its queued operations are then never run.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        query=(
            Parameter(
                "force",
                {"type": "boolean", "description": "Delete even with open operations."},
                required=False,
            ),
        ),
        result={"type": "boolean"},
        errors=(400, 404),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/failed",
        "Bulkops\\AsynchronousOperations\\Api\\FailedItemsInterface",
        "export",
        "A bulk's failed operations (status 2 and 3), with the items they were submitted "
        "with (secrets masked), streamed as JSON lines (format=jsonl, the default) or CSV "
        "(format=csv); resubmitted_to says where an item was resubmitted.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        query=(
            Parameter(
                "format",
                {"type": "string", "enum": ["jsonl", "csv"], "description": "jsonl or csv"},
                required=False,
            ),
        ),
        result={"type": "string", "description": "One line per failed operation"},
        result_types=("application/x-ndjson", "text/csv; charset=utf-8"),
        errors=(400, 404),
    ),
    ServiceMethod(
        "POST",
        "/V1/bulk/:bulkUuid/resubmit",
        "Bulkops\\AsynchronousOperations\\Api\\BulkResubmitInterface",
        "resubmit",
        "Corrected items for a bulk's failed operations (status 2 and 3), by operation key, "
        "submitted as one new bulk; each item is accepted or rejected as a submission to "
        "its operation's route, whose resource the caller needs too. The old operations "
        "whose items were accepted link to their new ones.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        body=d.array_of(
            _body(
                {"operation_key": {"type": "integer"}, "item": d.FREE_OBJECT},
                ["operation_key", "item"],
            ),
            "Corrected items",
        ),
        result=d.ref(d.ASYNC_RESPONSE),
        result_status=202,
        errors=(400, 404),
    ),
    ServiceMethod(
        "GET",
        "/V1/bulk/:bulkUuid/webhooks",
        "Bulkops\\AsynchronousOperations\\Api\\BulkWebhooksInterface",
        "getDeliveries",
        "The delivery log of the bulk's completion webhooks (one per completion: a retried "
        "bulk completes again), with their attempts, last answer and state.",
        BULK_OPERATIONS,
        path_types=_BULK_UUID,
        result=d.array_of(d.ref("bulkops-webhook-delivery-interface")),
        errors=(404,),
    ),
    ServiceMethod(
        "POST",
        "/V1/integration/admin/token",
        "Magento\\Integration\\Api\\AdminTokenServiceInterface",
        "createAdminAccessToken",
        "Create access token for admin given the admin credentials.",
        ANONYMOUS,
        body=_body(
            {"username": {"type": "string"}, "password": {"type": "string"}},
            ["username", "password"],
        ),
        result={"type": "string", "description": "Token created"},
        errors=(400, 401),
    ),
    ServiceMethod(
        "POST",
        "/V1/integration/admin/token/revoke",
        "Magento\\Integration\\Api\\AdminTokenServiceInterface",
        "revokeAdminAccessToken",
        "Revoke token by admin id.",
        ADMIN_USERS,
        body=_body({"adminId": {"type": "integer"}}, ["adminId"]),
        result={"type": "boolean"},
        errors=(400, 401, 404),
    ),
    ServiceMethod(
        "POST",
        "/V1/integration/integration/token/revoke",
        "Bulkops\\Integration\\Api\\IntegrationTokenServiceInterface",
        "revokeIntegrationAccessToken",
        "Revoke the access token of an integration, by its id.",
        INTEGRATIONS,
        body=_body({"integrationId": {"type": "integer"}}, ["integrationId"]),
        result={"type": "boolean"},
        errors=(400, 401, 404),
    ),
    ServiceMethod(
        "POST",
        "/V1/integration/token/revoke",
        "Bulkops\\Integration\\Api\\TokenServiceInterface",
        "revokeToken",
        "Revoke one token; an admin's needs Magento_User::acl_users, an integration's "
        "Magento_Integration::integrations.",
        ADMIN_USERS,
        body=_body({"token": {"type": "string"}}, ["token"]),
        result={"type": "boolean"},
        errors=(400, 401, 404),
    ),
    ServiceMethod(
        "GET",
        "/V1/store/websites",
        "Magento\\Store\\Api\\WebsiteRepositoryInterface",
        "getList",
        "Retrieve list of all websites",
        STORES,
        result=d.array_of(d.ref("store-data-website-interface")),
    ),
    ServiceMethod(
        "GET",
        "/V1/store/storeViews",
        "Magento\\Store\\Api\\StoreRepositoryInterface",
        "getList",
        "Retrieve list of all stores",
        STORES,
        result=d.array_of(d.ref("store-data-store-interface")),
    ),
    ServiceMethod(
        "GET",
        "/V1/store/storeGroups",
        "Magento\\Store\\Api\\GroupRepositoryInterface",
        "getList",
        "Retrieve list of all groups",
        STORES,
        result=d.array_of(d.ref("store-data-group-interface")),
    ),
    ServiceMethod(
        "GET",
        "/V1/store/storeConfigs",
        "Magento\\Store\\Api\\StoreConfigManagerInterface",
        "getStoreConfigs",
        "Get store configs",
        STORES,
        result=d.array_of(d.ref("store-data-store-config-interface")),
    ),
)

# Signatures of Magento services that asynchronous routes commonly take, by service method:
# the description and the body Magento documents for them.
KNOWN_SIGNATURES: dict[str, tuple[str, Schema]] = {
    "Magento\\Customer\\Api\\AccountManagementInterface::createAccount": (
        "Create customer account. Perform necessary business operations like sending email.",
        _body(
            {
                "customer": d.ref("customer-data-customer-interface"),
                "password": {"type": "string"},
                "redirectUrl": {"type": "string"},
            },
            ["customer"],
        ),
    ),
}


def async_method(route: AsyncRoute) -> ServiceMethod:
    """A registered route: its body as the service's known signature, else a free object."""
    interface, _, method = route.service.partition("::")
    description, body = KNOWN_SIGNATURES.get(
        route.service, (f"{route.service}, processed by a bulkops handler.", d.FREE_OBJECT)
    )
    return ServiceMethod(
        route.method,
        route.path,
        interface,
        method,
        description,
        route.resource,
        body=body,
        result=d.ref(d.ASYNC_RESPONSE),
        bulk_path=route.bulk_path,
    )


def async_methods(routes: HandlerRegistry) -> list[ServiceMethod]:
    return [async_method(route) for route in routes.routes()]
