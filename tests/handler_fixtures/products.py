"""Routes with a path parameter, answering their payload: PUT with a declared signature
(Magento's product save) and without one, and DELETE."""

from __future__ import annotations

from typing import Any

from bulkops.handlers import OperationInput, registry
from bulkops.services.signature import ObjectType, Parameter

PRODUCT = ObjectType(
    "Magento\\Catalog\\Api\\Data\\ProductInterface",
    {"sku": "string", "name": "string", "price": "float"},
)


@registry.route(
    "PUT",
    "/V1/products/:sku",
    service="Magento\\Catalog\\Api\\ProductRepositoryInterface::save",
    signature=(Parameter("product", PRODUCT),),
)
async def save_product(operation: OperationInput) -> Any:
    return operation.payload


@registry.route("PUT", "/V1/tests/things/:thingId", service="Tests\\Api\\ThingInterface::save")
async def save_thing(operation: OperationInput) -> Any:
    return operation.payload


@registry.route(
    "DELETE",
    "/V1/products/:sku",
    service="Magento\\Catalog\\Api\\ProductRepositoryInterface::deleteById",
)
async def delete_product(operation: OperationInput) -> Any:
    return operation.payload
