"""Swagger definitions of the data Magento's interfaces carry, named as Magento names them
(`Magento\\AsynchronousOperations\\Api\\Data\\OperationInterface` is
`asynchronous-operations-data-operation-interface`), with the fields bulkops sends.

`x-nullable` marks fields that may be null (Swagger 2.0 cannot say it); the OpenAPI 3.1
document turns it into a `null` type.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

ASYNC_RESPONSE = "asynchronous-operations-data-async-response-interface"
ERROR_RESPONSE = "error-response"


def ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


def array_of(items: Schema, description: str | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    return schema


def scalar(kind: str, description: str, nullable: bool = False) -> Schema:
    schema: Schema = {"type": kind, "description": description}
    if nullable:
        schema["x-nullable"] = True
    return schema


def string(description: str, nullable: bool = False) -> Schema:
    return scalar("string", description, nullable)


def integer(description: str, nullable: bool = False) -> Schema:
    return scalar("integer", description, nullable)


def obj(description: str, properties: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = required
    return schema


FREE_OBJECT: Schema = {"type": "object", "additionalProperties": True}
"""A body or result with no declared signature (routes registered in bulkops)."""

# Magento's own error definitions (Webapi\Model\Rest\Swagger\Generator::getDefinitions).
ERRORS: dict[str, Schema] = {
    ERROR_RESPONSE: {
        "type": "object",
        "properties": {
            "message": {"type": "string", "description": "Error message"},
            "errors": ref("error-errors"),
            "code": {"type": "integer", "description": "Error code"},
            "parameters": ref("error-parameters"),
            "trace": {"type": "string", "description": "Stack trace"},
        },
        "required": ["message"],
    },
    "error-errors": {
        "type": "array",
        "description": "Errors list",
        "items": ref("error-errors-item"),
    },
    "error-errors-item": {
        "type": "object",
        "description": "Error details",
        "properties": {
            "message": {"type": "string", "description": "Error message"},
            "parameters": ref("error-parameters"),
        },
    },
    "error-parameters": {
        "type": "array",
        "description": "Error parameters list",
        "items": ref("error-parameters-item"),
    },
    "error-parameters-item": {
        "type": "object",
        "description": "Error parameters item",
        "properties": {
            "resources": {"type": "string", "description": "ACL resource"},
            "fieldName": {"type": "string", "description": "Missing or invalid field name"},
            "fieldValue": {"type": "string", "description": "Incorrect field value"},
        },
    },
}

_OPERATION_FIELDS: dict[str, Schema] = {
    "id": integer("Id"),
    "bulk_uuid": string("Bulk uuid"),
    "topic_name": string("Queue Topic"),
    "serialized_data": string("Data Needed for Processing of Operation", nullable=True),
    "result_serialized_data": string("Result data", nullable=True),
    "status": integer("Operation status"),
    "result_message": string("Result message", nullable=True),
    "error_code": integer("Error code", nullable=True),
}
_BULK_FIELDS: dict[str, Schema] = {
    "user_type": integer("User type", nullable=True),
    "bulk_id": string("Bulk uuid"),
    "description": string("Bulk description", nullable=True),
    "start_time": string("Bulk scheduled time", nullable=True),
    "user_id": integer("User id", nullable=True),
    "operation_count": integer("Total number of operations scheduled in scope of this bulk"),
}
_BULK_REQUIRED = ["operations_list", "bulk_id", "operation_count"]

DATA: dict[str, Schema] = {
    "asynchronous-operations-data-operation-search-results-interface": obj(
        "Bulk operation search result interface.",
        {
            "items": array_of(ref("asynchronous-operations-data-operation-interface"), "Items"),
            "search_criteria": ref("framework-search-criteria-interface"),
            "total_count": integer("Total count."),
            "next_cursor": string(
                "The next page's cursor, null after the last page; only in answers to a "
                "search with a cursor (bulkops).",
                nullable=True,
            ),
        },
        ["items", "search_criteria", "total_count"],
    ),
    "bulkops-data-facet-search-results-interface": obj(
        "Operations matching search criteria, counted by the values of the facets asked.",
        {
            "facets": array_of(string("Facet"), "The facets, in the order asked"),
            "counts": array_of(
                ref("bulkops-data-facet-count-interface"),
                "A count per combination of the facets' values that occurs",
            ),
            "total_count": integer("Operations matched."),
            "search_criteria": ref("framework-search-criteria-interface"),
        },
        ["facets", "counts", "total_count", "search_criteria"],
    ),
    "bulkops-data-facet-count-interface": obj(
        "The operations with these values of the facets asked (only those asked are sent).",
        {
            "status": integer("Operation status"),
            "topic_name": string("Queue Topic"),
            "error_code": integer("Error code", nullable=True),
            "user_type": integer("User type", nullable=True),
            "count": integer("Operations with these values"),
        },
        ["count"],
    ),
    "asynchronous-operations-data-operation-interface": obj(
        "Class OperationInterface",
        {
            "extension_attributes": ref(
                "asynchronous-operations-data-operation-extension-interface"
            ),
            **_OPERATION_FIELDS,
        },
        ["id", "topic_name", "status"],
    ),
    "asynchronous-operations-data-operation-extension-interface": obj(
        "ExtensionInterface class for @see "
        "\\Magento\\AsynchronousOperations\\Api\\Data\\OperationInterface",
        {"start_time": string("The bulk's start time", nullable=True)},
        [],
    ),
    "asynchronous-operations-data-summary-operation-status-interface": obj(
        "Getter Class OperationStatusInterface",
        {
            "id": integer("Id"),
            "status": integer("Operation status"),
            "result_message": string("Result message", nullable=True),
            "error_code": integer("Error code", nullable=True),
        },
        ["id", "status"],
    ),
    "asynchronous-operations-data-bulk-operations-status-interface": obj(
        "Interface BulkStatusInterface",
        {
            "operations_list": array_of(
                ref("asynchronous-operations-data-summary-operation-status-interface"),
                "Operations list.",
            ),
            **_BULK_FIELDS,
        },
        _BULK_REQUIRED,
    ),
    "asynchronous-operations-data-detailed-bulk-operations-status-interface": obj(
        "Interface BulkStatusInterface",
        {
            "operations_list": array_of(
                ref("asynchronous-operations-data-operation-interface"), "Operations list."
            ),
            **_BULK_FIELDS,
        },
        _BULK_REQUIRED,
    ),
    ASYNC_RESPONSE: obj(
        "Interface AsyncResponseInterface Temporary data object to give response from webapi "
        "async router",
        {
            "bulk_uuid": string("Bulk uuid."),
            "request_items": array_of(
                ref("asynchronous-operations-data-item-status-interface"),
                "List of request items.",
            ),
            "errors": {"type": "boolean", "description": "True when any item was rejected."},
        },
        ["bulk_uuid", "request_items", "errors"],
    ),
    "asynchronous-operations-data-item-status-interface": obj(
        "ItemStatusInterface interface Temporary object with status of requested item.",
        {
            "id": integer("Entity Id."),
            "data_hash": string("Hash of the entity's data", nullable=True),
            "status": string("Status: accepted or rejected"),
            "error_message": string("Error information", nullable=True),
            "error_code": integer("Error code", nullable=True),
        },
        ["id", "status"],
    ),
    "framework-search-criteria-interface": obj(
        "Search criteria interface.",
        {
            "filter_groups": array_of(
                ref("framework-search-filter-group"), "A list of filter groups."
            ),
            "sort_orders": array_of(ref("framework-sort-order"), "Sort order."),
            "page_size": integer("Page size."),
            "current_page": integer("Current page."),
        },
        ["filter_groups"],
    ),
    "framework-search-filter-group": obj(
        "Groups two or more filters together using a logical OR",
        {"filters": array_of(ref("framework-filter"), "A list of filters in this group")},
        [],
    ),
    "framework-filter": obj(
        "Filter which can be used by any methods from service layer.",
        {
            "field": string("Field"),
            "value": string("Value"),
            "condition_type": string("Condition type"),
        },
        ["field", "value"],
    ),
    "framework-sort-order": obj(
        "Data object for sort order.",
        {"field": string("Sorting field."), "direction": string("Sorting direction.")},
        ["field", "direction"],
    ),
    "bulkops-webhook-delivery-interface": obj(
        "A completion webhook of a bulk and its delivery",
        {
            "id": string("The event's id, its webhook-id header: the same in every attempt"),
            "type": string("Event type: bulk.completed"),
            "url": string("Where it is sent"),
            "state": {
                "type": "string",
                "enum": ["pending", "delivered", "failed"],
                "description": "pending (to be attempted), delivered, or failed for good",
            },
            "attempts": integer("Attempts made"),
            "created_at": string("When the bulk completed"),
            "last_attempt_at": string("When it was last attempted", nullable=True),
            "last_status_code": integer("The receiver's last HTTP status", nullable=True),
            "last_error": string("Why the last attempt failed", nullable=True),
            "next_attempt_at": string(
                "When it is attempted next (pending ones only)", nullable=True
            ),
            "delivered_at": string("When it was delivered", nullable=True),
        },
        [
            "id",
            "type",
            "url",
            "state",
            "attempts",
            "created_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "delivered_at",
        ],
    ),
    "store-data-website-interface": obj(
        "Website interface",
        {
            "id": integer("Website id"),
            "code": string("Website code"),
            "name": string("Website name"),
            "default_group_id": integer("Default group id"),
        },
        ["id", "code", "name", "default_group_id"],
    ),
    "store-data-group-interface": obj(
        "Group interface",
        {
            "id": integer("Id"),
            "website_id": integer("Website id"),
            "root_category_id": integer("Root category id"),
            "default_store_id": integer("Default store id"),
            "name": string("Group name"),
            "code": string("Group code."),
        },
        ["id", "website_id", "root_category_id", "default_store_id", "name", "code"],
    ),
    "store-data-store-interface": obj(
        "Store interface",
        {
            "id": integer("Store id"),
            "code": string("Store code"),
            "name": string("Store name"),
            "website_id": integer("Website id"),
            "store_group_id": integer("Group id"),
            "is_active": integer("Store is active"),
        },
        ["id", "code", "name", "website_id", "store_group_id", "is_active"],
    ),
    "store-data-store-config-interface": obj(
        "StoreConfig interface",
        {
            "id": integer("Store id"),
            "code": string("Store code"),
            "website_id": integer("Website id of the store"),
            "locale": string("Store locale"),
            "base_currency_code": string("Base currency code"),
            "default_display_currency_code": string("Default display currency code"),
            "timezone": string("Timezone of the store"),
            "weight_unit": string("The unit of weight"),
            "base_url": string("Base URL for the store"),
            "base_link_url": string("Base link URL for the store"),
            "base_static_url": string("Base static URL for the store"),
            "base_media_url": string("Base media URL for the store"),
            "secure_base_url": string("Secure base URL for the store"),
            "secure_base_link_url": string("Secure base link URL for the store"),
            "secure_base_static_url": string("Secure base static URL for the store"),
            "secure_base_media_url": string("Secure base media URL for the store"),
        },
        [
            "id",
            "code",
            "website_id",
            "locale",
            "base_currency_code",
            "default_display_currency_code",
            "timezone",
            "weight_unit",
            "base_url",
            "base_link_url",
            "base_static_url",
            "base_media_url",
            "secure_base_url",
            "secure_base_link_url",
            "secure_base_static_url",
            "secure_base_media_url",
        ],
    ),
    "bulkops-change-feed-page-interface": obj(
        "Changes past the cursor, in feed order, and the cursor to read from next.",
        {
            "items": array_of(ref("bulkops-change-interface"), "Changes"),
            "next_cursor": string("Cursor of the next read (`after`)"),
        },
        ["items", "next_cursor"],
    ),
    "bulkops-change-interface": obj(
        "A change of an operation's status, or a bulk deleted.",
        {
            "change": {
                "type": "string",
                "enum": ["status", "bulk_deleted"],
                "description": "What changed",
            },
            "bulk_uuid": string("Bulk uuid"),
            "operation_id": integer("Operation id (null: the bulk deleted)", nullable=True),
            "status": integer("New operation status (null: the bulk deleted)", nullable=True),
            "changed_at": string("Time of the change"),
        },
        ["change", "bulk_uuid", "operation_id", "status", "changed_at"],
    ),
    "customer-data-customer-interface": obj(
        "Customer interface.",
        {
            "id": integer("Customer id"),
            "group_id": integer("Group id"),
            "created_at": string("Created at time"),
            "updated_at": string("Updated at time"),
            "created_in": string("Created in area"),
            "dob": string("Date of birth"),
            "email": string("Email address"),
            "firstname": string("First name"),
            "lastname": string("Last name"),
            "middlename": string("Middle name"),
            "prefix": string("Prefix"),
            "suffix": string("Suffix"),
            "gender": integer("Gender"),
            "store_id": integer("Store id"),
            "taxvat": string("Tax Vat"),
            "website_id": integer("Website id"),
            "disable_auto_group_change": integer("Disable auto group change flag."),
            "extension_attributes": dict(FREE_OBJECT),
        },
        ["email", "firstname", "lastname"],
    ),
}
